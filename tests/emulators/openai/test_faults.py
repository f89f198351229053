"""Fault injection through the marker and the x-emulator header, seen by the SDK."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from local.openai_emulator import OpenAIEmulator, expected_answer, expected_tokens


def ask(marker: str, text: str = "Tell me something") -> list[Any]:
    return [{"role": "user", "content": f"{text} [[emulator {marker}]]"}]


async def test_429_carries_retry_after_and_azure_body(azure: AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await azure.chat.completions.create(model="chat", messages=ask("fault=429 retry_after=2"))
    err = caught.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "2"
    assert err.response.headers["retry-after-ms"] == "2000"
    assert err.body["code"] == "429"
    assert "Please retry after 2 seconds" in err.body["message"]


async def test_500_then_success_with_times(v1: AsyncOpenAI, emulator: OpenAIEmulator) -> None:
    messages = ask("fault=500 times=2 tokens=12")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await v1.chat.completions.create(model="chat", messages=messages, stream=True)
        assert caught.value.body["type"] == "server_error"
    answer = await v1.chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].message.content == expected_answer(messages)
    # another request content has its own count
    with pytest.raises(openai.InternalServerError):
        await v1.chat.completions.create(model="chat", messages=ask("fault=500 times=2", "b"))
    assert emulator.stats.faults["500"] == 3
    assert emulator.stats.errors[500] == 3


async def test_sdk_retries_reach_the_answer(emulator: OpenAIEmulator) -> None:
    messages = ask("fault=503 times=1 tokens=5")
    async with AsyncOpenAI(
        base_url=f"{emulator.endpoint}/openai/v1/", api_key=emulator.api_key, max_retries=2
    ) as client:
        answer = await client.chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].message.content == expected_answer(messages)
    assert emulator.stats.requests == 2


async def test_cut_ends_the_stream_without_finish(azure: AsyncAzureOpenAI) -> None:
    messages = ask("fault=cut after=5 tokens=40")
    stream = await azure.chat.completions.create(model="chat", messages=messages, stream=True)
    received: list[str] = []
    finishes: list[Any] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
                finishes.append(chunk.choices[0].finish_reason)
    assert "incomplete" in repr(caught.value.__cause__).lower()
    assert "".join(received) == "".join(expected_tokens(messages)[:5])
    assert set(finishes) == {None}


async def test_cut_non_streaming_is_a_connection_error(v1: AsyncOpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        await v1.chat.completions.create(model="chat", messages=ask("fault=cut"))


async def test_content_filter_finish(v1: AsyncOpenAI) -> None:
    messages = ask("fault=content_filter after=4 tokens=30")
    stream = await v1.chat.completions.create(model="chat", messages=messages, stream=True)
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(expected_tokens(messages)[:4])
    last = chunks[-1].choices[0]
    assert last.finish_reason == "content_filter"
    assert last.model_extra["content_filter_results"]["violence"]["filtered"] is True
    answer = await v1.chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].finish_reason == "content_filter"


async def test_prompt_filter_is_a_400_content_filter(azure: AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await azure.chat.completions.create(model="chat", messages=ask("fault=prompt_filter"))
    assert caught.value.code == "content_filter"
    assert caught.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"


async def test_stall_is_detectable_with_a_client_timeout(
    emulator: OpenAIEmulator,
) -> None:
    messages = ask("fault=stall after=3 seconds=30 tokens=20")
    got: list[str] = []
    started = time.monotonic()
    async with AsyncOpenAI(
        base_url=f"{emulator.endpoint}/openai/v1/",
        api_key=emulator.api_key,
        max_retries=0,
        timeout=httpx.Timeout(5.0, read=0.5),
    ) as client:
        stream = await client.chat.completions.create(model="chat", messages=messages, stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    got.append(chunk.choices[0].delta.content)
    assert (
        "timed out" in str(caught.value).lower() or "timeout" in type(caught.value).__name__.lower()
    )
    assert time.monotonic() - started < 10
    assert got == expected_tokens(messages)[:3]
    # The server notices the client left and frees the stream: awaited, not slept for.
    for _ in range(1500):  # up to 30 s
        if not emulator.stats.active_streams:
            break
        await asyncio.sleep(0.02)
    assert emulator.stats.active_streams == 0


async def test_header_steers_direct_requests(emulator: OpenAIEmulator) -> None:
    url = f"{emulator.endpoint}/openai/v1/chat/completions"
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient() as client:
        limited = await client.post(
            url,
            json=body,
            headers={"api-key": "test-key", "x-emulator": "fault=429 retry_after=0.25"},
        )
        assert limited.status_code == 429
        assert limited.headers["retry-after-ms"] == "250"
        short = await client.post(
            url, json=body, headers={"api-key": "test-key", "x-emulator": "tokens=3"}
        )
    assert short.json()["choices"][0]["message"]["content"] == expected_answer(
        body["messages"], header="tokens=3"
    )
    assert short.json()["usage"]["completion_tokens"] == 3


async def test_bad_marker_is_a_400(v1: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.chat.completions.create(model="chat", messages=ask("tokens=many"))
    assert caught.value.code == "invalid_emulator_control"
