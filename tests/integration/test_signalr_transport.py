"""relay.signalr's aiohttp-backed httpx transport against a real local HTTP server."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from relay.errors import SignalRTransientError
from relay.signalr import SignalRClient
from relay.signalr._transport import AiohttpTransport

seen: list[dict[str, object]] = []


async def _echo(request: web.Request) -> web.StreamResponse:
    seen.append(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": dict(request.headers),
            "body": await request.read(),
            "peer": request.transport.get_extra_info("peername") if request.transport else None,
        }
    )
    if request.path == "/gzip":
        body = gzip.compress(b'{"ok":true}')
        return web.Response(body=body, headers={"Content-Encoding": "gzip"}, status=200)
    if request.path == "/slow":
        await asyncio.sleep(2)
    if request.path == "/cut":
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
    return web.json_response({"path": request.raw_path}, status=202, headers={"X-Echo": "1"})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    seen.clear()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_round_trip_keeps_encoding_headers_and_body(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        answer = await http.post(
            f"{server}/api/hubs/h/users/a%2Fb%20c",
            params={"api-version": "2022-06-01"},
            content=b'{"x":1}',
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
        again = await http.get(f"{server}/gzip")
    assert answer.status_code == 202
    assert answer.headers["x-echo"] == "1"
    assert answer.json() == {"path": "/api/hubs/h/users/a%2Fb%20c?api-version=2022-06-01"}
    first = seen[0]
    assert first["method"] == "POST"
    assert first["raw_path"] == "/api/hubs/h/users/a%2Fb%20c?api-version=2022-06-01"
    assert first["body"] == b'{"x":1}'
    headers = first["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == "Bearer t"
    assert headers["Content-Length"] == "7"
    # A compressed answer is decoded exactly once (by httpx).
    assert again.json() == {"ok": True}


async def test_connections_are_reused(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        for _ in range(5):
            assert (await http.get(f"{server}/x")).status_code == 202
    assert len(seen) == 5
    assert len({str(r["peer"]) for r in seen}) == 1  # one kept-alive connection


async def test_refused_connection_is_a_connect_error(refused_port: int) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{refused_port}/")


async def test_slow_answer_is_a_read_timeout(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server}/slow")


async def test_cut_connection_is_a_protocol_error(server: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await http.get(f"{server}/cut")


async def test_signalr_client_maps_transport_failures(refused_port: int) -> None:
    conn = (
        f"Endpoint=http://127.0.0.1;Port={refused_port};"
        "AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;Version=1.0;"
    )
    async with SignalRClient(conn, "stream", max_retries=0) as client:
        with pytest.raises(SignalRTransientError):
            await client.send_to_user("u1", "delta", [{"x": 1}])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AiohttpTransport(max_connections=0)
