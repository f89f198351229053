"""Throughput of the local Azure OpenAI emulator: streams/s and deltas/s it sustains.

Starts `python -m local.openai_emulator` on a free port in its own process (so the
load generator does not share its event loop), then runs N concurrent streaming
clients for a fixed time and counts completed streams and received content deltas.

    .venv/bin/python bench/openai_emulator.py                      # unpaced, as fast as it goes
    .venv/bin/python bench/openai_emulator.py --rate 60 --ttft-ms 300 --concurrency 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(
    client: httpx.AsyncClient, url: str, key: str, deadline: float, counts: dict[str, int]
) -> None:
    body = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    while time.monotonic() < deadline:
        async with client.stream("POST", url, json=body, headers={"api-key": key}) as r:
            async for line in r.aiter_lines():
                if line.startswith('data: {"choices":[{') and '"content":"' in line:
                    counts["deltas"] += 1
                elif line == "data: [DONE]":
                    counts["streams"] += 1
        counts["deltas"] -= 1  # the role chunk carries "content":"" too


async def _run(args: argparse.Namespace, endpoint: str, key: str) -> dict[str, float]:
    url = f"{endpoint}/openai/v1/chat/completions"
    counts = {"streams": 0, "deltas": 0}
    started = time.monotonic()
    deadline = started + args.seconds
    # One client, one pooled connection per concurrent stream (creating an AsyncClient
    # builds an SSL context: ~30 ms of CPU each, which would dominate the measurement).
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(
            *(_client(client, url, key, deadline, counts) for _ in range(args.concurrency))
        )
    elapsed = time.monotonic() - started
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{endpoint}/_emulator/stats")).json()
    return {
        "elapsed_s": round(elapsed, 2),
        "streams": counts["streams"],
        "streams_per_s": round(counts["streams"] / elapsed, 1),
        "deltas_per_s": round(counts["deltas"] / elapsed, 1),
        "server_tokens": stats["tokens"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--rate", type=float, default=1_000_000.0, help="deltas/s per stream")
    p.add_argument("--ttft-ms", type=float, default=0.0)
    p.add_argument("--burst", type=int, default=1)
    args = p.parse_args()
    port, key = _free_port(), "bench-key"
    cmd = [sys.executable, "-m", "local.openai_emulator", "--port", str(port), "--api-key", key,
           "--tokens", str(args.tokens), "--rate", str(args.rate), "--ttft-ms", str(args.ttft_ms),
           "--jitter", "0", "--burst", str(args.burst)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "Azure OpenAI emulator on ..." once it listens
        result = asyncio.run(_run(args, f"http://127.0.0.1:{port}", key))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"config": vars(args), "result": result}))


if __name__ == "__main__":
    main()
