"""Load behaviour (a stalled client, hundreds of connections) and raw protocol details."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import websockets

from local.signalr_emulator import EmulatorOptions, SignalREmulator, issue_token

from .rawclient import RS, connect_healthy, connect_stalled, negotiate

HUB = "stream"


async def _broadcast(http: httpx.AsyncClient, emu: SignalREmulator, payload: object) -> None:
    url = f"{emu.url}/api/hubs/{HUB}/:send"
    response = await http.post(
        url,
        params={"api-version": "2022-06-01"},
        json={"target": "delta", "arguments": [payload]},
        headers={"Authorization": f"Bearer {issue_token(emu.access_key, url)}"},
    )
    assert response.status_code == 202


async def _read_deltas(ws: object, count: int) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        frame = await asyncio.wait_for(ws.recv(), 10)  # type: ignore[attr-defined]
        for text in frame.split(RS):
            if text:
                message = json.loads(text)
                if message["type"] == 1:
                    seqs.append(message["arguments"][0]["seq"])
    return seqs


async def test_stalled_client_is_dropped_and_never_blocks_others() -> None:
    options = EmulatorOptions(outbox_max_bytes=256 * 1024, close_grace_s=0.3)
    async with SignalREmulator(options=options) as emu, httpx.AsyncClient() as http:
        stalled_id, stalled = await connect_stalled(http, emu, HUB)
        healthy_id, healthy = await connect_healthy(http, emu, HUB)
        total = 1500
        reader = asyncio.create_task(_read_deltas(healthy, total))
        started = time.monotonic()
        for seq in range(total):
            await _broadcast(http, emu, {"seq": seq, "text": "x" * 4000})
        seqs = await asyncio.wait_for(reader, 30)
        elapsed = time.monotonic() - started
        assert seqs == list(range(total))
        assert elapsed < 20
        for _ in range(100):
            if stalled_id not in emu.core.registry.hub(HUB).connections:
                break
            await asyncio.sleep(0.05)
        assert stalled_id not in emu.core.registry.hub(HUB).connections
        assert healthy_id in emu.core.registry.hub(HUB).connections
        assert emu.core.totals.dropped_slow_clients == 1
        await healthy.close()
        stalled.close()


async def test_hundreds_of_connections_held_and_reached() -> None:
    count = 300
    async with (
        SignalREmulator() as emu,
        httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as http,
    ):
        started = time.monotonic()
        clients = await asyncio.gather(
            *(connect_healthy(http, emu, HUB, f"u{i}") for i in range(count))
        )
        assert emu.core.connected_count() == count
        await _broadcast(http, emu, {"seq": 7})
        got = await asyncio.gather(*(_read_deltas(ws, 1) for _, ws in clients))
        assert got == [[7]] * count
        assert time.monotonic() - started < 60
        assert emu.stats()["connections"]["current"] == count
        await asyncio.gather(*(ws.close() for _, ws in clients))


async def test_invocations_get_an_error_completion_and_bad_handshakes_an_error() -> None:
    async with SignalREmulator() as emu, httpx.AsyncClient() as http:
        _, ws = await connect_healthy(http, emu, HUB)
        await ws.send(
            json.dumps({"type": 1, "invocationId": "1", "target": "Echo", "arguments": []}) + RS
        )
        answer = json.loads((await asyncio.wait_for(ws.recv(), 5)).rstrip(RS))
        assert answer["type"] == 3 and answer["invocationId"] == "1"
        assert "Serverless" in answer["error"]
        await ws.send('{"type":6}' + RS)  # pings are fine
        await ws.send("not json" + RS)
        close = json.loads((await asyncio.wait_for(ws.recv(), 5)).rstrip(RS))
        assert close["type"] == 7 and "error" in close
        await ws.close()

        _, conn_token, token = await negotiate(http, emu, HUB)
        async with websockets.connect(
            f"ws://127.0.0.1:{emu.port}/client/?hub={HUB}&id={conn_token}",
            additional_headers={"Authorization": f"Bearer {token}"},
        ) as raw:
            await raw.send(json.dumps({"protocol": "messagepack", "version": 1}) + RS)
            reply = json.loads((await asyncio.wait_for(raw.recv(), 5)).rstrip(RS))
            assert "messagepack" in reply["error"]
            await asyncio.wait_for(raw.wait_closed(), 5)


async def test_a_deleted_connection_is_gone_at_once_while_its_close_is_unread() -> None:
    # A long-polling client that stops polling keeps its close message queued until the
    # close grace ends; the REST API must already report the connection as gone.
    options = EmulatorOptions(close_grace_s=2.0)
    async with SignalREmulator(options=options) as emu, httpx.AsyncClient() as http:
        cid, conn_token, token = await negotiate(http, emu, HUB)
        client = f"{emu.url}/client/"
        params = {"hub": HUB, "id": conn_token}
        auth = {"Authorization": f"Bearer {token}"}
        assert (await http.get(client, params=params, headers=auth)).status_code == 200
        handshake = json.dumps({"protocol": "json", "version": 1}) + RS
        assert (await http.post(client, params=params, headers=auth, content=handshake)).is_success
        base = f"{emu.url}/api/hubs/{HUB}"

        async def call(method: str, path: str) -> int:
            url = base + path
            response = await http.request(
                method,
                url,
                params={"api-version": "2022-06-01"},
                headers={"Authorization": f"Bearer {issue_token(emu.access_key, url)}"},
            )
            return response.status_code

        assert await call("HEAD", f"/connections/{cid}") == 200
        assert await call("DELETE", f"/connections/{cid}") == 200
        assert cid in emu.core.registry.hub(HUB).connections  # its close is still unread
        assert await call("HEAD", f"/connections/{cid}") == 404
