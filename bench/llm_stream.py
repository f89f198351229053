"""Benchmark: client CPU per streamed delta, the openai SDK's chunk models vs relay.llm.

The Azure OpenAI emulator runs in its own process; this process reads 2,000-token answers one
stream at a time, alternating the two readers stream by stream so both see the same machine
load. Two pacings: unpaced (`rate=1e6`, the emulator writes many events per socket write) and
paced at 4,000 deltas/s (about one event per read, as a paced model and the load benchmark
deliver them, so the per-read cost counts too). The readers:

- `openai SDK chunks`: `AsyncOpenAI.chat.completions.create(stream=True)` iterated as the
  relay did before (a pydantic `ChatCompletionChunk` per event, fields read off the model);
- `relay.llm`: `LLMClient.stream` (the SDK sends the request; the SSE is read with json.loads).

CPU is this process's `time.process_time()` over each reader's streams (the emulator's CPU is
not counted); deltas/s is wall clock, capped by the emulator when the reader is fast. Both
readers must produce the same text, or the benchmark fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from relay.llm import LLMClient, TextDelta

__all__ = ["PACINGS", "TOKENS", "Tally", "render", "run"]

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 2000
KEY = "bench-key"
WARMUP = 2  # streams per reader before measuring (imports, connection, caches)


@dataclass
class Tally:
    name: str
    streams: int = 0
    deltas: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @property
    def us_per_delta(self) -> float:
        return self.cpu_s / self.deltas * 1e6

    @property
    def deltas_per_s(self) -> float:
        return self.deltas / self.wall_s


PACINGS = {"unpaced": "rate=1000000", "paced 4,000/s": "rate=4000 burst=1"}


def _request(pacing: str) -> dict[str, Any]:
    prompt = f"benchmark the reader [[emulator tokens={TOKENS} ttft_ms=0 jitter=0 {pacing}]]"
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": TOKENS * 2}


async def _sdk_models(client: AsyncOpenAI, pacing: str) -> list[str]:
    """The relay's reader before this change: one pydantic model per chunk."""
    texts: list[str] = []
    chunks = await client.chat.completions.create(
        model="chat", stream=True, stream_options={"include_usage": True}, **_request(pacing)
    )
    async for chunk in chunks:
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta is not None and choice.delta.content:
                texts.append(choice.delta.content)
    return texts


async def _relay(client: LLMClient, pacing: str) -> list[str]:
    return [e.text async for e in client.stream(_request(pacing)) if isinstance(e, TextDelta)]


async def _measure(endpoint: str, pacing: str, streams: int) -> list[Tally]:
    sdk = AsyncOpenAI(base_url=f"{endpoint}/openai/v1/", api_key=KEY, max_retries=0)
    relay = LLMClient(endpoint, "chat", api_key=KEY)
    readers: list[tuple[Tally, Callable[[], Awaitable[list[str]]]]] = [
        (Tally("openai SDK chunks (before)"), lambda: _sdk_models(sdk, pacing)),
        (Tally("relay.llm raw SSE (after)"), lambda: _relay(relay, pacing)),
    ]
    try:
        answers = [await read() for _ in range(WARMUP) for _, read in readers]
        if len({"".join(a) for a in answers}) != 1:
            raise RuntimeError("the two readers disagree on the answer text")
        for _ in range(streams):
            for tally, read in readers:
                cpu, wall = time.process_time(), time.perf_counter()
                texts = await read()
                tally.cpu_s += time.process_time() - cpu
                tally.wall_s += time.perf_counter() - wall
                tally.streams += 1
                tally.deltas += len(texts)
    finally:
        await sdk.close()
        await relay.aclose()
    return [tally for tally, _ in readers]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _emulator(port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "local.openai_emulator", "--port", str(port), "--api-key", KEY,
            "--rate", "1000000", "--ttft-ms", "0", "--jitter", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the Azure OpenAI emulator did not start") from None
            time.sleep(0.1)


def render(results: dict[str, list[Tally]]) -> str:
    rows = [
        f"{TOKENS}-token streams read one at a time, readers alternating stream by stream "
        "(the emulator in its own process; its CPU is not counted).",
        "",
        "| pacing | reader | streams | deltas | client CPU s | CPU µs / delta | deltas/s (wall) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for pacing, tallies in results.items():
        rows += [
            f"| {pacing} | {t.name} | {t.streams} | {t.deltas} | {t.cpu_s:.2f} | "
            f"{t.us_per_delta:.1f} | {t.deltas_per_s:,.0f} |"
            for t in tallies
        ]
    rows.append("")
    for pacing, (before, after) in results.items():
        cpu = after.us_per_delta / before.us_per_delta
        rate = after.deltas_per_s / before.deltas_per_s
        rows.append(f"- {pacing}: CPU per delta after / before **{cpu:.2f}**, deltas/s {rate:.2f}")
    return "\n".join(rows)


def run(jobs: int) -> str:
    """`jobs` unpaced streams per reader (after the warm-up ones); a quarter as many paced."""
    port = _free_port()
    proc = _emulator(port)
    endpoint = f"http://127.0.0.1:{port}"
    counts = {"unpaced": jobs, "paced 4,000/s": max(2, jobs // 4)}
    try:
        results = {
            name: asyncio.run(_measure(endpoint, marker, counts[name]))
            for name, marker in PACINGS.items()
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return render(results)


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
