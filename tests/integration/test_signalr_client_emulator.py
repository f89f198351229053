"""relay.signalr against the local SignalR emulator, with a real WebSocket client listening.

The client side follows the SignalR protocol from the notes (negotiate v1, JSON hub protocol
over text frames), so a token or REST call the service would refuse fails here too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from local.signalr_emulator import run_in_thread
from relay.errors import SignalRRequestError, SignalRTransientError
from relay.signalr import SignalRClient

RS = "\x1e"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(port=0) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[SignalRClient]:
    async with SignalRClient(emulator.connection_string, "Stream") as c:
        yield c


class Listener:
    """One browser-like connection: negotiate with our token, then WebSocket + handshake."""

    def __init__(self, ws: ClientConnection, connection_id: str) -> None:
        self.ws = ws
        self.connection_id = connection_id
        self._pending: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, client: SignalRClient, user_id: str | None) -> Listener:
        info = await client.negotiate(user_id, 5)
        base, _, query = info["url"].partition("?")
        auth = {"Authorization": f"Bearer {info['accessToken']}"}
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{base.rstrip('/')}/negotiate?{query}&negotiateVersion=1", headers=auth
            )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ws_url = (
            base.replace("http://", "ws://")
            + f"?{query}&id={quote(body['connectionToken'])}"
            + f"&access_token={quote(info['accessToken'])}"
        )
        ws = await websockets.connect(ws_url)
        await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert json.loads((await asyncio.wait_for(ws.recv(), 5)).split(RS)[0]) == {}
        return cls(ws, body["connectionId"])

    async def next(self, wait_s: float = 30.0) -> dict[str, Any]:
        """The next invocation or close message (pings skipped)."""
        while not self._pending:
            frame = await asyncio.wait_for(self.ws.recv(), wait_s)
            assert isinstance(frame, str), "JSON must arrive in text frames"
            for part in frame.split(RS):
                if part:
                    message = json.loads(part)
                    if message.get("type") != 6:
                        self._pending.append(message)
        return self._pending.pop(0)

    async def nothing(self, client: SignalRClient) -> bool:
        """Nothing was delivered to this connection: a marker sent to it now is the next
        message (a connection's messages arrive in order). Waiting a fixed while instead
        would pass by luck when a stray message came late on a loaded machine."""
        await client.send_to_connection(self.connection_id, "marker", [{"marker": 1}])
        message = await self.next()
        return message.get("target") == "marker"

    async def close(self) -> None:
        await self.ws.close()


def _delta(seq: int) -> list[dict[str, Any]]:
    return [{"jobId": "j1", "seq": seq, "attempt": 1, "text": f"part {seq} ünïcode 🙂"}]


async def test_health(client: SignalRClient) -> None:
    assert await client.health() is True


async def test_send_to_user_reaches_only_that_user(client: SignalRClient) -> None:
    alice = await Listener.open(client, "alice")
    bob = await Listener.open(client, "bob")
    try:
        assert await client.user_exists("alice") is True
        assert await client.user_exists("nobody") is False
        for seq in (1, 2, 3):
            await client.send_to_user("alice", "delta", _delta(seq))
        got = [await alice.next() for _ in range(3)]
        assert [m["type"] for m in got] == [1, 1, 1]
        assert [m["target"] for m in got] == ["delta"] * 3
        assert [m["arguments"] for m in got] == [_delta(1), _delta(2), _delta(3)]
        assert await bob.nothing(client)
    finally:
        await alice.close()
        await bob.close()


async def test_send_via_target_kinds_and_to_all(client: SignalRClient) -> None:
    listener = await Listener.open(client, "carol")
    try:

        class T:
            def __init__(self, kind: str, id: str) -> None:
                self.kind, self.id = kind, id

        await client.send(T("user", "carol"), "status", [{"jobId": "j1", "status": "running"}])
        assert (await listener.next())["target"] == "status"
        await client.send(T("connection", listener.connection_id), "claim", [{"nonce": "n1"}])
        assert (await listener.next())["arguments"] == [{"nonce": "n1"}]
        assert await client.connection_exists(listener.connection_id) is True
        await client.send_to_all("delta", _delta(9), excluded=[listener.connection_id])
        assert await listener.nothing(client)
        await client.send_to_all("delta", _delta(10))
        assert (await listener.next())["arguments"] == _delta(10)
    finally:
        await listener.close()


async def test_connection_group_membership(client: SignalRClient) -> None:
    listener = await Listener.open(client, None)
    try:
        cid = listener.connection_id
        assert await client.group_exists("g-conn") is False
        await client.add_connection_to_group(cid, "g-conn")
        assert await client.group_exists("g-conn") is True
        await client.send_to_group("g-conn", "delta", _delta(1))
        assert (await listener.next())["arguments"] == _delta(1)
        assert await client.remove_connection_from_group(cid, "g-conn") is True
        await client.send_to_group("g-conn", "delta", _delta(2))
        assert await listener.nothing(client)
    finally:
        await listener.close()


async def test_user_group_membership(client: SignalRClient) -> None:
    listener = await Listener.open(client, "dave")
    try:
        await client.add_user_to_group("dave", "g-user", ttl_s=600)
        assert await client.user_in_group("dave", "g-user") is True
        await client.send_to_group("g-user", "delta", _delta(1))
        assert (await listener.next())["arguments"] == _delta(1)
        await client.remove_user_from_group("dave", "g-user")
        assert await client.user_in_group("dave", "g-user") is False
        await client.add_user_to_group("dave", "g-a")
        await client.add_user_to_group("dave", "g-b")
        await client.remove_user_from_all_groups("dave")
        assert await client.user_in_group("dave", "g-a") is False
        assert await client.user_in_group("dave", "g-b") is False
    finally:
        await listener.close()


async def test_odd_ids_are_encoded(client: SignalRClient) -> None:
    user = "user/with spaces?&#é"
    listener = await Listener.open(client, user)
    try:
        assert await client.user_exists(user) is True
        await client.send_to_user(user, "delta", _delta(1))
        assert (await listener.next())["arguments"] == _delta(1)
    finally:
        await listener.close()


async def test_close_connection_sends_close_message(client: SignalRClient) -> None:
    listener = await Listener.open(client, "erin")
    try:
        await client.close_connection(listener.connection_id, reason="job finished")
        message = await listener.next()
        assert message["type"] == 7
        assert await client.connection_exists(listener.connection_id) is False
    finally:
        await listener.close()


async def test_add_missing_connection_to_group_is_404(client: SignalRClient) -> None:
    with pytest.raises(SignalRRequestError) as info:
        await client.add_connection_to_group("no-such-connection", "g")
    assert info.value.status == 404


async def test_wrong_key_is_refused_401(emulator: Any) -> None:
    wrong = emulator.connection_string.replace(emulator.access_key, "W" * 43 + "=")
    async with SignalRClient(wrong, "stream") as client:
        with pytest.raises(SignalRRequestError) as info:
            await client.send_to_user("alice", "delta", _delta(1))
    assert info.value.status == 401


async def test_hub_name_is_case_insensitive(emulator: Any) -> None:
    async with SignalRClient(emulator.connection_string, "stream") as lower:
        listener = await Listener.open(lower, "frank")
    async with SignalRClient(emulator.connection_string, "STREAM") as upper:
        try:
            await upper.send_to_user("frank", "delta", _delta(1))
            assert (await listener.next())["arguments"] == _delta(1)
        finally:
            await listener.close()


async def test_unreachable_service_is_transient_after_retries() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    conn = f"Endpoint=http://127.0.0.1;Port={port};AccessKey={'K' * 44};Version=1.0;"
    async with SignalRClient(conn, "stream", max_retries=2, sleep=fake_sleep) as client:
        with pytest.raises(SignalRTransientError):
            await client.send_to_user("u", "delta", _delta(1))
        assert await client.health() is False
    assert len(sleeps) == 2 and all(0 <= s <= 2.0 for s in sleeps)
