"""What the two aiohttp-backed transports share: the SignalR client's (httpx, bodies read
whole; relay/signalr/_transport.py) and the model client's (httpx2, the openai SDK's fork of
httpx, bodies streamed; relay/llm/_transport.py). The two packages have the same API but
distinct classes, so each transport keeps its own request and response types and passes its
package here for the exceptions.

- `client_timeout`: httpx's per-request timeout extension as an aiohttp timeout;
- `map_error`: an aiohttp failure as the httpx(2) exception its caller already classifies;
- `LoopSession`: one pooled keep-alive session per event loop, with no proxy/netrc lookups
  per request (`trust_env=False`) and bodies passed through undecoded (httpx decodes).
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import aiohttp

__all__ = ["ERRORS", "LoopSession", "client_timeout", "map_error"]

# What aiohttp raises while sending or reading: everything else is a bug, not the network.
ERRORS = (TimeoutError, aiohttp.ClientError, OSError)


def client_timeout(extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
    spec = extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=spec.get("pool"),  # aiohttp's `connect` includes waiting for a pooled slot
        sock_connect=spec.get("connect"),
        sock_read=spec.get("read"),
    )


def map_error(exc: BaseException, request: Any, httpx_module: ModuleType) -> Any:
    """The `httpx_module` TransportError an aiohttp failure corresponds to (raise it `from`)."""
    x = httpx_module
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return x.ConnectTimeout(str(exc) or "connect timed out", request=request)
        return x.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return x.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return x.RemoteProtocolError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # malformed status line or headers
        return x.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, OSError):
        return x.ReadError(str(exc) or type(exc).__name__, request=request)
    return x.TransportError(str(exc) or type(exc).__name__, request=request)


class LoopSession:
    """A pooled aiohttp session bound to the event loop that first uses it; a caller on
    another loop gets its own session there."""

    def __init__(self, *, max_connections: int, keepalive_s: float) -> None:
        if max_connections < 1 or keepalive_s <= 0:
            raise ValueError("max_connections must be >= 1 and keepalive_s positive")
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=self._keepalive_s, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,  # no proxy or netrc lookups per request
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
