"""An httpx transport that sends through aiohttp: the SignalR client's default network path.

Why: every delta batch is one REST call, so the per-request CPU cost of the client bounds how
many jobs one worker process can stream. httpcore's pool (anyio backend, pure-Python HTTP/1.1)
spent about 2.5 ms of event-loop CPU per send under 50 concurrent jobs, much of it checking
every pooled connection for expiry on each request; aiohttp's connector and C parser cost a
fraction of that. The client keeps httpx's API (and tests keep `httpx.MockTransport`); only
the bytes on the wire go through aiohttp.

Bodies are passed through undecoded (`auto_decompress=False`): httpx decodes
`Content-Encoding` itself when it builds the response. aiohttp errors become the httpx
exceptions `_rest._map_foreign` already classifies (timeouts, network, protocol), re-raised
`from exc`. The session is bound to the event loop that first uses it; a transport used from
another loop gets its own session there.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport"]


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    spec = request.extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=spec.get("pool"),  # aiohttp's `connect` includes waiting for a pooled slot
        sock_connect=spec.get("connect"),
        sock_read=spec.get("read"),
    )


def _mapped(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception an aiohttp failure corresponds to."""
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return httpx.ConnectTimeout(str(exc) or "connect timed out", request=request)
        return httpx.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # malformed status line or headers
        return httpx.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return httpx.ReadError(str(exc) or type(exc).__name__, request=request)
    return httpx.TransportError(str(exc) or type(exc).__name__, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport())`: pooled keep-alive connections."""

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 15.0) -> None:
        if max_connections < 1 or keepalive_s <= 0:
            raise ValueError("max_connections must be >= 1 and keepalive_s positive")
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_s,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,  # no proxy or netrc lookups per request
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session_for_loop()
        body = await request.aread()
        # httpx computed Host, Content-Length etc.; aiohttp sends given headers as they are.
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            async with session.request(
                request.method,
                # As httpx encoded it: the access token's audience is this exact URL.
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            ) as answer:
                content = await answer.read()
                raw_headers = list(answer.raw_headers)
                status = answer.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _mapped(exc, request) from exc
        return httpx.Response(
            status,
            headers=raw_headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
