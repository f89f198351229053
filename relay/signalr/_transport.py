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

`send_direct` sends a request that the caller has already laid out as httpx would (URL, the
header list), skipping httpx's request and URL building: about a third of a millisecond of
CPU per REST call, on the way from a recorded batch to the client (`_rest.RestCaller` uses
it when it owns the transport).
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import httpx
import yarl

from .._aiohttp import ERRORS, LoopSession, client_timeout, map_error

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport())`: pooled keep-alive connections."""

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 15.0) -> None:
        self._pool = LoopSession(max_connections=max_connections, keepalive_s=keepalive_s)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        # httpx computed Host, Content-Length etc.; aiohttp sends given headers as they are.
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        # The URL as httpx encoded it: the access token's audience is this exact URL.
        return await self._exchange(
            request.method,
            str(request.url),
            headers,
            body or None,
            client_timeout(request.extensions),
            request,
        )

    async def send_direct(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        timeouts: aiohttp.ClientTimeout,
    ) -> httpx.Response:
        """Send `method url` with exactly `headers` (already percent-encoded `url`); the answer
        read whole, as `handle_async_request` answers. Errors are mapped the same way."""
        return await self._exchange(method, url, headers, body, timeouts, None)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        timeouts: aiohttp.ClientTimeout,
        request: httpx.Request | None,
    ) -> httpx.Response:
        session = self._pool.get()
        try:
            async with session.request(
                method,
                yarl.URL(url, encoded=True),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=timeouts,
            ) as answer:
                content = await answer.read()
                raw_headers = list(answer.raw_headers)
                status = answer.status
        except ERRORS as exc:
            raise map_error(exc, request, httpx) from exc
        # As httpx builds it from a transport's answer: a Content-Encoding is decoded here.
        return httpx.Response(
            status,
            headers=raw_headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
