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

import httpx
import yarl

from .._aiohttp import ERRORS, LoopSession, client_timeout, map_error

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport())`: pooled keep-alive connections."""

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 15.0) -> None:
        self._pool = LoopSession(max_connections=max_connections, keepalive_s=keepalive_s)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._pool.get()
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
                timeout=client_timeout(request.extensions),
            ) as answer:
                content = await answer.read()
                raw_headers = list(answer.raw_headers)
                status = answer.status
        except ERRORS as exc:
            raise map_error(exc, request, httpx) from exc
        return httpx.Response(
            status,
            headers=raw_headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
