"""relay/llm/_transport.py: httpx2 requests sent through aiohttp, bodies streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest
from aiohttp import web

from relay.llm._transport import AiohttpStreamTransport


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    release = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        res = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await res.prepare(request)
        await res.write(b"data: one\n\n")
        await release.wait()  # the second part only once the client has read the first
        await res.write(b"data: two\n\n")
        await res.write_eof()
        return res

    async def cut(request: web.Request) -> web.StreamResponse:
        res = web.StreamResponse(headers={"Content-Length": "1000"})
        await res.prepare(request)
        await res.write(b"partial")
        assert request.transport is not None
        request.transport.close()  # fewer bytes than announced
        return res

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {"body": body.decode(), "auth": request.headers.get("api-key")}, status=201
        )

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/cut", cut)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", release
    release.set()
    await runner.cleanup()


async def test_body_arrives_as_it_is_written(server: tuple[str, asyncio.Event]) -> None:
    base, release = server
    client = httpx2.AsyncClient(transport=AiohttpStreamTransport())
    async with client, client.stream("GET", base + "/stream") as res:
        assert res.status_code == 200
        assert res.headers["content-type"] == "text/event-stream"
        chunks = res.aiter_bytes()
        # The first event is readable while the server still holds the second back:
        # the body is streamed, not read whole.
        assert await anext(chunks) == b"data: one\n\n"
        release.set()
        rest = b"".join([c async for c in chunks])
        assert rest == b"data: two\n\n"


async def test_request_body_and_headers_are_sent_as_given(
    server: tuple[str, asyncio.Event],
) -> None:
    async with httpx2.AsyncClient(transport=AiohttpStreamTransport()) as client:
        res = await client.post(server[0] + "/echo", content=b"hello", headers={"api-key": "k"})
    assert res.status_code == 201
    assert res.json() == {"body": "hello", "auth": "k"}


async def test_a_cut_body_raises_an_httpx2_error(server: tuple[str, asyncio.Event]) -> None:
    client = httpx2.AsyncClient(transport=AiohttpStreamTransport())
    async with client, client.stream("GET", server[0] + "/cut") as res:
        with pytest.raises(httpx2.RemoteProtocolError):
            async for _ in res.aiter_bytes():
                pass


async def test_a_refused_connection_raises_connect_error(refused_port: int) -> None:
    async with httpx2.AsyncClient(transport=AiohttpStreamTransport()) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"http://127.0.0.1:{refused_port}/")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AiohttpStreamTransport(max_connections=0)
