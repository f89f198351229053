"""An httpx2 transport that sends through aiohttp and streams the body: the LLM client's
default network path.

Why: profiling the local host at 200 concurrent jobs (local/host/profiler.py) put about a
fifth of its busy event-loop time into reading model streams through httpcore2's anyio
backend, half of that in two `epoll_ctl` system calls per received chunk (anyio's protocol
pauses reading after every `data_received` and resumes it on the next `receive`). aiohttp's
stream reader keeps the socket registered until its buffer passes 64 KiB, and parses
HTTP/1.1 in C. The openai SDK keeps its own API, request building, authentication and
status errors; only the bytes on the wire go through aiohttp (relay/signalr/_transport.py
does the same for SignalR sends, reading whole bodies).

The response body is streamed (`AsyncByteStream`), not read whole: deltas reach the batcher
as they arrive. Bodies pass through undecoded (`auto_decompress=False`; httpx2 decodes).
aiohttp errors become the httpx2 exceptions `_errors.map_llm_error` already classifies,
raised `from` the aiohttp error, both when sending and while the body is read. The session
is bound to the event loop that first uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx2
import yarl

from .._aiohttp import ERRORS, LoopSession, client_timeout, map_error

__all__ = ["AiohttpStreamTransport"]


class _Body(httpx2.AsyncByteStream):
    """The answer's body as it arrives; closing it releases (or drops) the connection."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._answer.content.iter_any():
                yield data
        except ERRORS as exc:
            raise map_error(exc, self._request, httpx2) from exc

    async def aclose(self) -> None:
        # Read to the end: the connection goes back to the pool; otherwise it is dropped
        # (its unread rest would be read as the next response).
        if self._answer.content.is_eof():
            self._answer.release()
        else:
            self._answer.close()


class AiohttpStreamTransport(httpx2.AsyncBaseTransport):
    """`httpx2.AsyncClient(transport=AiohttpStreamTransport())`: keep-alive connections."""

    def __init__(self, *, max_connections: int = 1000, keepalive_s: float = 15.0) -> None:
        self._pool = LoopSession(max_connections=max_connections, keepalive_s=keepalive_s)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._pool.get()
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            answer = await session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # as httpx2 encoded it
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=client_timeout(request.extensions),
            )
        except ERRORS as exc:
            raise map_error(exc, request, httpx2) from exc
        return httpx2.Response(
            answer.status,
            headers=list(answer.raw_headers),
            stream=_Body(answer, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
