"""relay.signalr's direct path (its own aiohttp transport, no httpx request building) puts the
same request on the wire as the httpx path, and its answers and failures mean the same.

Both clients talk to a local aiohttp server that records the raw request line, the raw
header list and the body; the clocks are fixed, so the bearer tokens are equal as well.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken

from relay.errors import SignalRRequestError, SignalRTransientError
from relay.signalr import SignalRClient
from relay.signalr._transport import AiohttpTransport

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
NOW = 1_800_000_000.0

Seen = list[tuple[str, str, tuple[tuple[bytes, bytes], ...], bytes]]


class _Server:
    def __init__(self) -> None:
        self.seen: Seen = []
        self.answers: list[web.Response] = []  # served first, in order; then 202
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.method, request.raw_path, request.raw_headers, body))
        if request.path.endswith("/slow"):
            await asyncio.sleep(2)
        if self.answers:
            return self.answers.pop(0)
        if request.path.endswith(":generateToken"):
            payload = gzip.compress(json.dumps({"token": "tok-1"}).encode())
            return web.Response(
                body=payload,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        return web.Response(status=200 if request.method in ("HEAD", "PUT", "DELETE") else 202)


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    state = _Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


def _client(port: int, *, httpx_path: bool, **kwargs: Any) -> SignalRClient:
    conn = f"Endpoint=http://127.0.0.1;Port={port};AccessKey={KEY};Version=1.0;"
    transport = AiohttpTransport() if httpx_path else None
    return SignalRClient(conn, "Stream", transport=transport, clock=lambda: NOW, **kwargs)


Op = Callable[[SignalRClient], Awaitable[Any]]
OPS: list[tuple[str, Op]] = [
    ("send_to_user", lambda c: c.send_to_user("a b/é", "delta", [{"text": "hé\n"}])),
    ("send_to_group", lambda c: c.send_to_group("g 1", "delta", [1], excluded=["c 1", "c2"])),
    ("send_to_connection", lambda c: c.send_to_connection("c+1", "status", [])),
    ("send_to_all", lambda c: c.send_to_all("x", [None])),
    ("user_exists", lambda c: c.user_exists("u")),
    ("add_user_to_group", lambda c: c.add_user_to_group("u", "g", 5)),
    ("remove_user_from_group", lambda c: c.remove_user_from_group("u", "g")),
    ("add_connection_to_group", lambda c: c.add_connection_to_group("c", "g")),
    ("close_connection", lambda c: c.close_connection("c", "bye now é&x=1")),
    ("health", lambda c: c.health()),
]


@pytest.mark.parametrize("op", [op for _, op in OPS], ids=[name for name, _ in OPS])
async def test_direct_path_puts_the_httpx_request_on_the_wire(server: _Server, op: Op) -> None:
    async with _client(server.port, httpx_path=True) as reference:
        expected = await op(reference)
    async with _client(server.port, httpx_path=False) as direct:
        got = await op(direct)
    assert got == expected
    ref, ours = server.seen
    assert ours == ref  # method, raw path and query, every header in order, body


async def test_direct_path_answer_body_is_decoded_once(server: _Server) -> None:
    """Entra mode asks the service for client tokens: the JSON answer (gzip here) is read."""

    class Credential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("entra", int(NOW) + 3600)

        async def close(self) -> None:
            return None

    conn = f"Endpoint=http://127.0.0.1;Port={server.port};AuthType=azure.msi;Version=1.0;"
    async with SignalRClient(conn, "stream", credential=Credential(), clock=lambda: NOW) as c:
        assert await c.client_token("u1", 5) == "tok-1"
    method, raw_path, headers, _ = server.seen[0]
    assert (method, raw_path.split("?")[0]) == ("POST", "/api/hubs/stream/:generateToken")
    assert (b"Authorization", b"Bearer entra") in headers


async def test_direct_path_retries_on_retry_after_then_succeeds(server: _Server) -> None:
    server.answers = [web.Response(status=429, headers={"Retry-After": "1"})]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    async with _client(server.port, httpx_path=False, sleep=sleep, rng=lambda: 0.5) as c:
        await c.send_to_user("u", "delta", [1])
    assert len(server.seen) == 2 and slept == [1.0]


async def test_direct_path_refusal_carries_status_and_service_code(server: _Server) -> None:
    server.answers = [web.json_response({"code": "Invalid.Group"}, status=400)]
    async with _client(server.port, httpx_path=False) as c:
        with pytest.raises(SignalRRequestError) as caught:
            await c.send_to_group("g", "delta", [1])
    assert caught.value.status == 400 and "(Invalid.Group)" in str(caught.value)


async def test_direct_path_timeout_is_transient(server: _Server) -> None:
    async with _client(server.port, httpx_path=False, timeout_s=0.2, max_retries=0) as c:
        with pytest.raises(SignalRTransientError, match="timed out"):
            await c._rest.request("slow", "POST", "/slow", body=b"{}", ok=(202,))


async def test_direct_path_refused_connection_is_transient(refused_port: int) -> None:
    async with _client(refused_port, httpx_path=False, max_retries=0) as c:
        with pytest.raises(SignalRTransientError, match="could not reach"):
            await c.send_to_user("u", "delta", [1])
