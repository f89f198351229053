"""Fixtures: an in-process emulator with fast pacing, and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from local.openai_emulator import OpenAIEmulator, Pacing

API_VERSION = "2024-10-21"
FAST = Pacing(ttft_ms=0, rate=5000, jitter=0.0)


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIEmulator]:
    """An emulator on a free port; answers at once (tests that time things make their own)."""
    emu = OpenAIEmulator(port=0, api_key="test-key", pacing=FAST, reasoning_ttft_ms=0)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def azure(emulator: OpenAIEmulator) -> AsyncIterator[AsyncAzureOpenAI]:
    """The dated path (`/openai/deployments/{d}/...?api-version=`)."""
    async with AsyncAzureOpenAI(
        azure_endpoint=emulator.endpoint,
        api_key=emulator.api_key,
        api_version=API_VERSION,
        max_retries=0,
    ) as client:
        yield client


@pytest.fixture
async def v1(emulator: OpenAIEmulator) -> AsyncIterator[AsyncOpenAI]:
    """The v1 path (`/openai/v1/...`, model = deployment name)."""
    async with AsyncOpenAI(
        base_url=f"{emulator.endpoint}/openai/v1/", api_key=emulator.api_key, max_retries=0
    ) as client:
        yield client
