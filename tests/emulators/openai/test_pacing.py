"""Pacing on a real server: time to first token, rate, bursts (loose bounds only)."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import httpx

from local.openai_emulator import OpenAIEmulator, Pacing, expected_answer

from .conftest import API_VERSION


async def _arrivals(emu: OpenAIEmulator, deployment: str, prompt: str) -> list[tuple[float, str]]:
    """(seconds since the request, content) for each content delta, as they arrive."""
    url = f"{emu.endpoint}/openai/deployments/{deployment}/chat/completions"
    body = {"messages": [{"role": "user", "content": prompt}], "stream": True}
    out: list[tuple[float, str]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        async with client.stream(
            "POST", url, params={"api-version": API_VERSION}, json=body,
            headers={"api-key": emu.api_key},
        ) as response:  # fmt: skip
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                chunk: dict[str, Any] = json.loads(line[6:])
                delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
                if delta.get("content"):
                    out.append((time.monotonic() - started, delta["content"]))
    return out


async def test_ttft_and_rate_roughly_hold(emulator: OpenAIEmulator) -> None:
    prompt = "pace me [[emulator tokens=30 ttft_ms=300 rate=100 jitter=0.2]]"
    arrivals = await _arrivals(emulator, "chat", prompt)
    assert "".join(t for _, t in arrivals) == expected_answer([{"role": "user", "content": prompt}])
    first, last = arrivals[0][0], arrivals[-1][0]
    # Lower bounds are due times (never early, whatever the load); upper bounds are loose
    # liveness. Not `last - first`: a first delta delayed by load shortens it.
    assert 0.3 - 0.001 <= first < 3.0
    assert 0.3 + 29 * 0.01 * 0.8 - 0.001 <= last < 5.0  # 29 gaps of 10 ms +- 20 %
    assert [t for t, _ in arrivals] == sorted(t for t, _ in arrivals)


async def test_bursts_arrive_together_after_pauses(emulator: OpenAIEmulator) -> None:
    prompt = "bursty [[emulator tokens=25 ttft_ms=0 rate=50 jitter=0 burst=5]]"
    times = [t for t, _ in await _arrivals(emulator, "chat", prompt)]
    assert len(times) == 25
    # 5 groups of 5, each due at its last member's time (80, 180, ... 480 ms): nothing before
    # that (a lower bound, whatever the load), then the group at once. "At once" is judged
    # by the median spread inside a group, so one scheduling hiccup on a loaded machine
    # cannot fail it (fixed per-gap cut-offs did: a late burst shortens the next pause).
    groups = [times[i : i + 5] for i in range(0, 25, 5)]
    for k, group in enumerate(groups):
        assert min(group) >= 0.08 + 0.1 * k - 0.001, (k, group)
    assert statistics.median(g[-1] - g[0] for g in groups) < 0.05


async def test_reasoning_waits_longer_before_its_first_token() -> None:
    emu = OpenAIEmulator(
        port=0, pacing=Pacing(rate=1000, jitter=0, tokens=5), reasoning_ttft_ms=400
    )
    await emu.start()
    try:
        chat = await _arrivals(emu, "chat", "hi [[emulator ttft_ms=0]]")
        reasoning = await _arrivals(emu, "reasoning", "hi")
    finally:
        await emu.stop()
    assert reasoning[0][0] >= 0.35  # a lower bound: sleeps are never shorter
    assert reasoning[0][0] > chat[0][0]


async def test_stop_releases_a_stalled_stream() -> None:
    emu = OpenAIEmulator(port=0, pacing=Pacing(ttft_ms=0, rate=1000))
    await emu.start()
    url = f"{emu.endpoint}/openai/v1/chat/completions"
    stall = [{"role": "user", "content": "[[emulator fault=stall after=2 seconds=60]]"}]
    body = {"model": "chat", "stream": True, "messages": stall}
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", url, json=body, headers={"api-key": emu.api_key}) as r:
            lines = r.aiter_lines()
            while "content" not in await anext(lines):
                pass
            assert emu.stats.active_streams == 1
            started = time.monotonic()
            await emu.stop()
            assert time.monotonic() - started < 5
        assert emu.stats.active_streams == 0
