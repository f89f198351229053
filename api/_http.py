"""HTTP plumbing shared by the API functions: JSON in and out, errors, the caller.

Every answer is JSON. Errors have one shape, `{"error": {"code", "message", "field"?}}`,
and every failure maps to a 4xx here, except a genuine fault of ours or of a service we
depend on (500/503), which is logged with its trace and answered without one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from relay.errors import (
    JobNotFound,
    RelayError,
    SettingsError,
    SignalRError,
    StoreError,
    ValidationError,
)
from relay.identity import Caller, caller_from_headers
from relay.limits import LimitExceeded
from relay.services import get_services

__all__ = [
    "ApiError",
    "endpoint",
    "endpoint_with_client",
    "endpoint_with_output",
    "error",
    "json_response",
    "public_endpoint",
    "read_json",
]

log = logging.getLogger("relay.api")

MAX_BODY_BYTES = 256 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        headers={**_JSON_HEADERS, **(headers or {})},
    )


def error(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return json_response({"error": body}, status, headers)


def read_json(req: func.HttpRequest, *, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body, or an ApiError (413, 415, 400)."""
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise ApiError(413, "payload_too_large", f"the body is over {max_bytes} bytes")
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON", field="body") from None
    except RecursionError:  # "[[[[..." nested past the parser's stack: hostile, not a fault
        raise ApiError(400, "invalid_json", "the body is nested too deeply", field="body") from None
    where = _lone_surrogate(value)
    if where is not None:
        raise ApiError(400, "invalid_request", "contains a lone surrogate (\\ud800-\\udfff)",
                       field=where)  # fmt: skip
    return value


def _lone_surrogate(value: object) -> str | None:
    """Where a JSON escape such as "\\ud800" decoded to a lone surrogate, else None.

    Such a string cannot be encoded as UTF-8, so it would fail later (in a table write, a
    hash, a log line), far from the caller. Iterative: the document may be deeply nested.
    """
    stack: list[tuple[str, object]] = [("body", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _SURROGATE.search(key):
                    return path
                stack.append((key if path == "body" else f"{path}.{key}", sub))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", sub) for i, sub in enumerate(item))
    return None


def _map(exc: Exception) -> func.HttpResponse:
    if isinstance(exc, ApiError):
        return error(exc.status, exc.code, exc.message, field=exc.field, headers=exc.headers)
    if isinstance(exc, ValidationError):
        return error(400, exc.code, exc.reason, field=exc.field)
    if isinstance(exc, JobNotFound):
        return error(404, "not_found", "no such job")
    if isinstance(exc, LimitExceeded):
        retry = str(max(1, round(exc.retry_after or 1)))
        return error(429, exc.code, exc.message, headers={"Retry-After": retry})
    if isinstance(exc, SettingsError):
        log.error("settings invalid: %s", exc)
        return error(503, "not_configured", "the service is not configured")
    if isinstance(exc, StoreError | SignalRError):
        log.warning("dependency failed: %s", exc.code)
        return error(503, "unavailable", "a backing service is unavailable; try again")
    if isinstance(exc, RelayError):
        return error(409, exc.code, exc.message)
    log.exception("unhandled error")
    return error(500, "internal", "something went wrong on our side")


Handler = Callable[..., Awaitable[func.HttpResponse]]


async def _run(
    handler: Handler, req: func.HttpRequest, auth: bool, client: Any = None
) -> func.HttpResponse:
    try:
        services = await get_services()
        caller = caller_from_headers(req.headers, services.settings)
        if caller is None and auth:
            return error(401, "unauthenticated", "sign in first")
        args: tuple[Any, ...] = (req, caller or Caller(user_id=""), services)
        return await (handler(*args, client) if client is not None else handler(*args))
    except Exception as exc:  # every failure becomes a JSON answer
        return _map(exc)


# No functools.wraps below: the Functions worker matches parameter names to bindings,
# and `inspect.signature` would follow __wrapped__ to the handler's own parameters. So each
# wrapper spells out its binding parameters, and only takes the handler's name.
def _named(run: Handler, handler: Handler) -> None:
    run.__name__ = run.__qualname__ = handler.__name__


def _http_only(
    handler: Handler, auth: bool
) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    async def run(req: func.HttpRequest) -> func.HttpResponse:
        return await _run(handler, req, auth)

    _named(run, handler)
    return run


def endpoint(handler: Handler) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    """An authenticated API handler `(req, caller, services)`; errors become JSON."""
    return _http_only(handler, True)


def public_endpoint(
    handler: Handler,
) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    """Like `endpoint`, for routes open without sign-in (caller.user_id may be "")."""
    return _http_only(handler, False)


def endpoint_with_output(
    handler: Handler,
) -> Callable[[func.HttpRequest, func.Out[str]], Awaitable[func.HttpResponse]]:
    """An authenticated handler `(req, caller, services, outmsg)` with a queue output."""

    async def run(req: func.HttpRequest, outmsg: func.Out[str]) -> func.HttpResponse:
        return await _run(handler, req, True, outmsg)

    _named(run, handler)
    return run


def endpoint_with_client(
    handler: Handler,
) -> Callable[[func.HttpRequest, Any], Awaitable[func.HttpResponse]]:
    """An authenticated handler `(req, caller, services, client)` with the durable client."""

    async def run(req: func.HttpRequest, client: Any) -> func.HttpResponse:
        return await _run(handler, req, True, client)

    _named(run, handler)
    return run
