"""Measure the emulator: connections held, and deliveries per second.

    .venv/bin/python -m tests.emulators.signalr.bench_emulator [--connections 1000]
        [--sends 2000] [--fanout-sends 50]

Deliveries/s (1:1): REST sends to one user, awaited one after another (like one job).
Deliveries/s (fan-out): broadcasts to every held connection, counted per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from local.signalr_emulator import SignalREmulator, issue_token

from .rawclient import RS, connect_healthy

HUB = "stream"


async def _count(ws: object, want: int) -> None:
    seen = 0
    while seen < want:
        frame = await ws.recv()  # type: ignore[attr-defined]
        seen += sum(1 for t in frame.split(RS) if t and json.loads(t)["type"] == 1)


async def main(connections: int, sends: int, fanout_sends: int) -> None:
    async with (
        SignalREmulator() as emu,
        httpx.AsyncClient(limits=httpx.Limits(max_connections=50), timeout=60) as http,
    ):
        started = time.monotonic()
        clients = []
        for start in range(0, connections, 100):
            batch = range(start, min(start + 100, connections))
            clients += await asyncio.gather(
                *(connect_healthy(http, emu, HUB, f"u{i}") for i in batch)
            )
        took = time.monotonic() - started
        print(f"connections held: {emu.core.connected_count()} (opened in {took:.1f}s)")

        url = f"{emu.url}/api/hubs/{HUB}/users/u0/:send"
        headers = {"Authorization": f"Bearer {issue_token(emu.access_key, url, lifetime_s=3600)}"}
        reader = asyncio.create_task(_count(clients[0][1], sends))
        started = time.monotonic()
        for seq in range(sends):
            response = await http.post(
                url,
                params={"api-version": "2022-06-01"},
                headers=headers,
                json={"target": "delta", "arguments": [{"seq": seq}]},
            )
            assert response.status_code == 202
        await reader
        took = time.monotonic() - started
        print(
            f"1:1 sends, awaited in turn: {sends / took:,.0f} deliveries/s ({sends} in {took:.2f}s)"
        )

        url = f"{emu.url}/api/hubs/{HUB}/:send"
        headers = {"Authorization": f"Bearer {issue_token(emu.access_key, url, lifetime_s=3600)}"}
        readers = [asyncio.create_task(_count(ws, fanout_sends)) for _, ws in clients]
        started = time.monotonic()
        for seq in range(fanout_sends):
            await http.post(
                url,
                params={"api-version": "2022-06-01"},
                headers=headers,
                json={"target": "delta", "arguments": [{"seq": seq, "text": "x" * 200}]},
            )
        await asyncio.gather(*readers)
        took = time.monotonic() - started
        total = fanout_sends * len(clients)
        print(f"fan-out broadcasts: {total / took:,.0f} deliveries/s ({total} in {took:.2f}s)")
        await asyncio.gather(*(ws.close() for _, ws in clients))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--fanout-sends", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.connections, args.sends, args.fanout_sends))
