"""relay.llm against the local Azure OpenAI emulator (a real HTTP server on a free port)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from local.openai_emulator import Pacing, expected_answer, expected_tokens, run_in_thread
from relay.errors import (
    LLMContentFiltered,
    LLMError,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from relay.llm import LLMClient, StreamEnd, TextDelta

KEY = "integration-key-0123"
BEARER = "integration-entra-token"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    pacing = Pacing(ttft_ms=0, rate=5000, jitter=0)
    with run_in_thread(port=0, api_key=KEY, bearer_token=BEARER, pacing=pacing) as emu:
        yield emu.endpoint


class Credential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(BEARER, int(time.time()) + 3600)

    async def close(self) -> None:
        pass


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


async def _run(client: LLMClient, text: str, **options: Any) -> tuple[list[Any], LLMError | None]:
    events: list[Any] = []
    try:
        async for event in client.stream({"messages": _messages(text), **options}):
            events.append(event)
    except LLMError as exc:
        return events, exc
    finally:
        await client.aclose()
    return events, None


def _text(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize("api_version", ["v1", "2024-10-21"])
async def test_full_answer_matches_the_emulator_plan(endpoint: str, api_version: str) -> None:
    prompt = "Tell me about relays [[emulator tokens=25]]"
    client = LLMClient(endpoint, "chat", api_version, api_key=KEY)
    events, error = await _run(client, prompt, max_tokens=100, temperature=0.5)
    assert error is None
    assert _text(events) == expected_answer(_messages(prompt), max_tokens=100)
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert end.usage is not None
    assert end.usage.completion_tokens == len(expected_tokens(_messages(prompt), max_tokens=100))
    assert end.usage.total_tokens == end.usage.prompt_tokens + end.usage.completion_tokens


async def test_max_tokens_stops_with_length(endpoint: str) -> None:
    prompt = "long one [[emulator tokens=50]]"
    events, error = await _run(LLMClient(endpoint, "chat", api_key=KEY), prompt, max_tokens=5)
    assert error is None
    assert _text(events) == expected_answer(_messages(prompt), max_tokens=5)
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "length"


@pytest.mark.parametrize("api_version", ["v1", "2024-10-21"])
async def test_entra_bearer_token_accepted(endpoint: str, api_version: str) -> None:
    client = LLMClient(endpoint, "chat", api_version, credential=Credential())
    events, error = await _run(client, "hi [[emulator tokens=5]]", max_tokens=20)
    assert error is None and isinstance(events[-1], StreamEnd)


async def test_reasoning_deployment_with_max_completion_tokens(endpoint: str) -> None:
    client = LLMClient(endpoint, "reasoning", api_key=KEY)
    events, error = await _run(
        client, "think [[emulator tokens=5 ttft_ms=0]]", max_completion_tokens=200
    )
    assert error is None and isinstance(events[-1], StreamEnd)
    assert _text(events)


@pytest.mark.parametrize(
    ("marker", "kind", "status"),
    [
        ("fault=500", LLMUnavailable, 500),
        ("fault=503", LLMUnavailable, 503),
        ("fault=400", LLMRequestRejected, 400),
        ("fault=prompt_filter", LLMContentFiltered, 400),
    ],
)
async def test_http_faults_mapped(endpoint: str, marker: str, kind: type, status: int) -> None:
    events, error = await _run(
        LLMClient(endpoint, "chat", api_key=KEY), f"x [[emulator {marker}]]", max_tokens=20
    )
    assert events == []
    assert type(error) is kind and error is not None and error.status == status


async def test_rate_limit_carries_retry_after(endpoint: str) -> None:
    events, error = await _run(
        LLMClient(endpoint, "chat", api_key=KEY),
        "x [[emulator fault=429 retry_after=2]]",
        max_tokens=20,
    )
    assert events == []
    assert isinstance(error, LLMRateLimited) and error.retryable
    assert error.retry_after == pytest.approx(2.0)


async def test_cut_stream_is_unavailable_after_partial_text(endpoint: str) -> None:
    prompt = "x [[emulator tokens=20 fault=cut after=4]]"
    events, error = await _run(LLMClient(endpoint, "chat", api_key=KEY), prompt, max_tokens=50)
    assert isinstance(error, LLMUnavailable)
    full = expected_answer(_messages(prompt), max_tokens=50)
    assert _text(events) and full.startswith(_text(events)) and _text(events) != full
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_stall_detected(endpoint: str) -> None:
    prompt = "x [[emulator tokens=20 fault=stall after=3 seconds=20]]"
    client = LLMClient(endpoint, "chat", api_key=KEY, stall_timeout_s=0.5)
    started = time.monotonic()
    events, error = await _run(client, prompt, max_tokens=50)
    assert isinstance(error, LLMUnavailable) and "stall" in str(error)
    assert time.monotonic() - started < 5
    assert _text(events)


async def test_content_filter_mid_answer(endpoint: str) -> None:
    prompt = "x [[emulator tokens=20 fault=content_filter after=3]]"
    events, error = await _run(LLMClient(endpoint, "chat", api_key=KEY), prompt, max_tokens=50)
    assert isinstance(error, LLMContentFiltered) and not error.retryable
    assert _text(events)


async def test_wrong_key_rejected_and_ping(endpoint: str) -> None:
    events, error = await _run(LLMClient(endpoint, "chat", api_key="wrong"), "x", max_tokens=5)
    assert events == []
    assert isinstance(error, LLMRequestRejected) and error.status == 401
    good = LLMClient(endpoint, "chat", api_key=KEY)
    bad = LLMClient(endpoint, "chat", api_key="wrong")
    assert await good.ping() is True
    assert await bad.ping() is False
    await good.aclose()
    await bad.aclose()


async def test_unknown_deployment_rejected(endpoint: str) -> None:
    events, error = await _run(LLMClient(endpoint, "nope", api_key=KEY), "x", max_tokens=5)
    assert events == []
    assert isinstance(error, LLMRequestRejected) and error.status == 404
