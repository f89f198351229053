"""The HTTP front of the host: an ASGI app that routes requests to HTTP-triggered functions.

Answers as the real host does where it matters to clients: no route (or a route without
the method) -> 404 with an empty body; an unhandled exception -> 500 with an empty body (the
trace goes to the log only); missing or wrong function key -> 401; body over the limit
(`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`, default 100 MB as the host) -> 413; URL over 4096
bytes -> 414 with a JSON error body; over `maxOutstandingRequests` -> 429. (Requests that
cannot be parsed never get here: http_protocol answers them, also with JSON.)

CORS is granted only to the origins of `Host.CORS` (default: the host's own origin).
Because the app trusts `x-ms-client-principal-*` identity headers in development, a request
from any other origin that carries them is refused with 403, whatever its method.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func
from azure.functions.http import HttpResponseConverter

from .index import FunctionSpec
from .invoker import InvocationResult
from .routing import Route, RouteTable

__all__ = ["HttpFront", "HttpLimits", "KeyRing"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Execute = Callable[[FunctionSpec, dict[str, Any], str], Awaitable[InvocationResult]]

MAX_URL_BYTES = 4096
IDENTITY_PREFIX = "x-ms-client-principal"
_HOME = (
    b"<!doctype html><title>Functions host</title><p>Your local Functions host is up and "
    b"running.</p>"
)


def _own_origins(host: str) -> set[str]:
    name, _, port = host.rpartition(":")
    if name not in _LOOPBACK_NAMES or not port.isdigit():
        return set()
    return {f"http://{loopback}:{port}" for loopback in _LOOPBACK_NAMES}


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int = 104_857_600
    max_outstanding: int = -1
    max_concurrent: int = -1


@dataclass(frozen=True)
class KeyRing:
    """Function keys: `function` level accepts either key, `admin` only the master key."""

    master: str | None = None
    function: str | None = None

    def allows(self, level: str, given: str | None) -> bool:
        if level == "anonymous":
            return True
        if not given:
            return False
        keys = [self.master] if level == "admin" else [self.master, self.function]
        return any(k and hmac.compare_digest(k.encode(), given.encode()) for k in keys)


class _TooLarge(Exception):
    pass


def _error(status: int, code: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, [(b"content-type", b"application/json")], body


class HttpFront:
    def __init__(
        self,
        routes: RouteTable[FunctionSpec],
        execute: Execute,
        *,
        origins: list[str],
        cors_credentials: bool = False,
        limits: HttpLimits = HttpLimits(),
        keys: KeyRing = KeyRing(),
        client_binding: Callable[[], str] | None = None,
    ) -> None:
        self._routes = routes
        self._execute = execute
        self.origins = [o.lower().rstrip("/") for o in origins]
        self._credentials = cors_credentials
        self._limits = limits
        self._keys = keys
        self._client_binding = client_binding
        self._outstanding = 0
        self._concurrency = (
            asyncio.Semaphore(limits.max_concurrent) if limits.max_concurrent > 0 else None
        )
        self.accepting = True

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.lower().rstrip("/")
        if "*" in self.origins or origin in self.origins:
            return True
        # The host's own origin (any port: tests run it on free ports) is same-origin. Only
        # loopback names count, so a DNS-rebound name cannot pass as the host itself.
        return host is not None and origin in _own_origins(host.lower())

    def _cors_headers(self, origin: str | None, host: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None or not self._origin_allowed(origin, host):
            return []
        wildcard = "*" in self.origins and not self._credentials
        out = [(b"access-control-allow-origin", b"*" if wildcard else origin.encode())]
        if not wildcard:
            out.append((b"vary", b"Origin"))
        if self._credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        limit = self._limits.max_outstanding
        if not self.accepting or (limit > 0 and self._outstanding >= limit):
            await _reply(send, 503 if not self.accepting else 429, [], b"")
            return
        self._outstanding += 1
        try:
            if self._concurrency is None:
                status, headers, body = await self._handle(scope, receive)
            else:
                async with self._concurrency:
                    status, headers, body = await self._handle(scope, receive)
        finally:
            self._outstanding -= 1
        await _reply(send, status, headers, body if scope["method"] != "HEAD" else b"")

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        headers: dict[str, str] = {}
        for k, v in raw_headers:
            key = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        method: str = scope["method"].upper()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        if len(raw_path) + len(query) + 1 > MAX_URL_BYTES:
            return _error(414, "uri_too_long", f"the URL is longer than {MAX_URL_BYTES} bytes")
        origin = headers.get("origin")
        cors = self._cors_headers(origin, headers.get("host"))
        cross_origin = origin is not None and not cors
        if method == "OPTIONS" and origin and "access-control-request-method" in headers:
            if not cors:
                return 204, [], b""
            grant = [
                (
                    b"access-control-allow-methods",
                    headers["access-control-request-method"].encode(),
                ),
                (b"access-control-max-age", b"600"),
            ]
            if "access-control-request-headers" in headers:
                grant.append(
                    (
                        b"access-control-allow-headers",
                        headers["access-control-request-headers"].encode(),
                    )
                )
            return 204, cors + grant, b""
        if cross_origin and any(h.startswith(IDENTITY_PREFIX) for h in headers):
            return _error(
                403,
                "cross_origin_identity",
                "identity headers are not accepted from another origin",
            )
        path = raw_path.decode("latin-1").split("?", 1)[0]
        found = self._routes.match(method, path)
        if found is None:
            if path in ("", "/") and method in ("GET", "HEAD"):
                return 200, [(b"content-type", b"text/html; charset=utf-8"), *cors], _HOME
            return 404, cors, b""
        route, values = found
        spec = route.target
        level = str(spec.trigger.get("authLevel", "function")).lower()
        params = _query(query)
        if not self._keys.allows(level, headers.get("x-functions-key") or params.get("code")):
            return 401, cors, b""
        try:
            body = await _read_body(receive, headers, self._limits.max_body_bytes)
        except _TooLarge:
            return 413, cors, b""
        request = func.HttpRequest(
            method, _url(scope, headers, path, query), headers=headers, params=params,
            route_params=values, body=body,
        )  # fmt: skip
        inputs: dict[str, Any] = {spec.trigger["name"]: request}
        for binding in spec.inputs():
            if binding["type"] == "durableClient" and self._client_binding is not None:
                inputs[binding["name"]] = self._client_binding()
        result = await self._execute(spec, inputs, _reason(route))
        if not result.ok:
            return 500, cors, b""
        status, out_headers, out_body = _response(spec, result)
        return status, out_headers + cors, out_body


def _reason(route: Route[FunctionSpec]) -> str:
    return "This function was programmatically called via the host APIs."


def _query(query: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        params[k] = f"{params[k]},{v}" if k in params else v  # as ASP.NET StringValues
    return params


def _url(scope: Scope, headers: Mapping[str, str], path: str, query: bytes) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    url = f"{scope.get('scheme', 'http')}://{host}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _response(
    spec: FunctionSpec, result: InvocationResult
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    outputs = [b for b in spec.outputs() if b["type"] == "http"]
    name = outputs[0]["name"] if outputs else "$return"
    value = result.value if name == "$return" else result.outputs.get(name)
    if value is None:
        return 204, [], b""
    if isinstance(value, bytes):
        return 200, [(b"content-type", b"application/octet-stream")], value
    try:
        datum = HttpResponseConverter.encode(value, expected_type=None)
    except NotImplementedError:
        return 500, [], b""
    if datum.type == "string":
        return 200, [(b"content-type", b"text/plain; charset=utf-8")], str(datum.value).encode()
    response = datum.value
    headers = [
        (k.encode("latin-1"), str(v.value).encode("latin-1"))
        for k, v in response["headers"].items()
    ]
    for cookie in response.get("cookies") or []:
        for morsel in cookie.values():
            headers.append((b"set-cookie", morsel.OutputString().encode("latin-1")))
    return int(response["status_code"].value), headers, response["body"].value or b""


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if not any(k == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    else:
        headers = [
            (k, str(len(body)).encode() if k == b"content-length" else v) for k, v in headers
        ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
