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

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx2
import yarl

__all__ = ["AiohttpStreamTransport"]

_ERRORS = (TimeoutError, aiohttp.ClientError, OSError)


def _timeout(request: httpx2.Request) -> aiohttp.ClientTimeout:
    spec = request.extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=spec.get("pool"),  # aiohttp's `connect` includes waiting for a pooled slot
        sock_connect=spec.get("connect"),
        sock_read=spec.get("read"),
    )


def _mapped(exc: BaseException, request: httpx2.Request) -> httpx2.TransportError:
    """The httpx2 exception an aiohttp failure corresponds to."""
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return httpx2.ConnectTimeout(str(exc) or "connect timed out", request=request)
        return httpx2.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx2.RemoteProtocolError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # malformed status line or headers
        return httpx2.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, OSError):
        return httpx2.ReadError(str(exc) or type(exc).__name__, request=request)
    return httpx2.TransportError(str(exc) or type(exc).__name__, request=request)


class _Body(httpx2.AsyncByteStream):
    """The answer's body as it arrives; closing it releases (or drops) the connection."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._answer.content.iter_any():
                yield data
        except _ERRORS as exc:
            raise _mapped(exc, self._request) from exc

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

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._session_for_loop()
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            answer = await session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # as httpx2 encoded it
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            )
        except _ERRORS as exc:
            raise _mapped(exc, request) from exc
        return httpx2.Response(
            answer.status,
            headers=list(answer.raw_headers),
            stream=_Body(answer, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
