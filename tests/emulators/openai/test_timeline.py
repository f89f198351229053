"""The opt-in delta timeline: stamps per write, keyed by the last user message, drained once."""

from __future__ import annotations

import hashlib
import json
import time

import httpx

from local.openai_emulator import OpenAIEmulator, Pacing, expected_tokens


async def _stream(client: httpx.AsyncClient, emu: OpenAIEmulator, prompt: str) -> list[float]:
    """Arrival wall times of each content delta."""
    body = {"model": "chat", "messages": [{"role": "user", "content": prompt}], "stream": True}
    arrivals: list[float] = []
    async with client.stream(
        "POST", f"{emu.endpoint}/openai/v1/chat/completions", json=body,
        headers={"api-key": emu.api_key},
    ) as response:  # fmt: skip
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    arrivals.append(time.time())
    return arrivals


async def test_timeline_stamps_every_delta_before_it_arrives() -> None:
    pacing = Pacing(ttft_ms=0, rate=200, jitter=0.0)
    prompt = "Stamp me. [[emulator tokens=12 burst=3]]"
    async with (
        OpenAIEmulator(port=0, api_key="k", pacing=pacing, timeline=True) as emu,
        httpx.AsyncClient(timeout=10) as client,
    ):
        before = time.time()
        arrivals = await _stream(client, emu, prompt)
        drained = (await client.post(f"{emu.endpoint}/_emulator/timeline")).json()["streams"]
        again = (await client.post(f"{emu.endpoint}/_emulator/timeline")).json()["streams"]
    n = len(expected_tokens([{"role": "user", "content": prompt}]))
    assert n == 12 and len(arrivals) == n
    assert len(drained) == 1 and again == []
    stream = drained[0]
    assert stream["key"] == hashlib.sha256(prompt.encode()).hexdigest()[:32]
    assert before <= stream["start"] <= arrivals[0]
    counts = [c for _, c in stream["marks"]]
    assert counts == [3, 6, 9, 12]  # one write per burst of three
    stamps = [t for t, _ in stream["marks"]]
    assert stamps == sorted(stamps)
    for k, arrived in enumerate(arrivals):
        written = next(t for t, c in stream["marks"] if c > k)
        assert written <= arrived


async def test_timeline_is_off_by_default(emulator: OpenAIEmulator) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        res = await client.post(f"{emulator.endpoint}/_emulator/timeline")
    assert res.status_code == 404 and res.json()["error"]["message"] == "timeline is off"
