"""Helpers shared by the hostile-input tests: raw requests and the error-shape check."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.stack import Response, Stack

__all__ = ["assert_json_error", "raw_request"]


def assert_json_error(res: Response, *statuses: int) -> dict[str, Any]:
    """A 4xx in `statuses` whose body is `{"error": {"code", "message", ...}}`."""
    assert res.status in statuses, (res.status, res.body)
    assert res.headers.get("content-type", "").startswith("application/json"), res.headers
    assert isinstance(res.body, dict), res.body
    err = res.body["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]
    return dict(err)


def raw_request(
    stack: Stack,
    method: str,
    target: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> Response:
    """Send `target` byte for byte (no client-side normalisation of `..` or encoding)."""
    parts = urlsplit(stack.base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        res = conn.getresponse()
        data = res.read()
        hdrs = {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()
    try:
        parsed: Any = json.loads(data) if data else None
    except ValueError:
        parsed = data
    return Response(res.status, hdrs, parsed)
