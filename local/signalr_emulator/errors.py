"""Error bodies as the service documents them (`{code, message, target, details}`), and
the name rules of the REST API."""

from __future__ import annotations

import json
import re

from aiohttp import web

__all__ = ["ServiceError", "error_response", "read_body", "valid_group", "valid_hub"]

# The service's own patterns (hub: letter first; group: 1..1024 non-space characters).
_HUB = re.compile(r"^[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}$")
_GROUP = re.compile(r"^\S{1,1024}$")


def valid_hub(name: str) -> bool:
    return bool(_HUB.match(name))


def valid_group(name: str) -> bool:
    return bool(_GROUP.match(name))


class ServiceError(web.HTTPException):
    """An HTTP error with the service's JSON body; raised from handlers."""

    def __init__(self, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
        self.status_code = status
        super().__init__(text=json.dumps(body), content_type="application/json", headers=headers)
        self.error_body = body


def error_response(
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> ServiceError:
    body: dict[str, object] = {"code": code, "message": message, "target": target, "details": []}
    return ServiceError(status, body, headers or {})


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or a 413 error once it passes `limit` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise error_response(413, "PayloadTooLarge", f"The body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise error_response(413, "PayloadTooLarge", f"The body is larger than {limit} bytes")
        chunks.append(chunk)
