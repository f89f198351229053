"""The real `openai` SDK against the emulator: both paths, streaming and not."""

from __future__ import annotations

import json
from typing import Any

import httpx
from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI

from local.openai_emulator import REASONING, OpenAIEmulator, expected_answer, run_in_thread

from .conftest import API_VERSION, FAST

MESSAGES: list[Any] = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "Why batch deltas? [[emulator tokens=60]]"},
]


async def _collect(stream: Any) -> tuple[str, list[Any]]:
    text, chunks = "", []
    async for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text, chunks


async def test_dated_path_stream_with_usage(azure: AsyncAzureOpenAI) -> None:
    stream = await azure.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text, chunks = await _collect(stream)
    assert text == expected_answer(MESSAGES)
    empty = [c for c in chunks if not c.choices]
    assert len(empty) == 2  # the prompt-filter chunk first, the usage chunk last
    assert chunks[0] is empty[0] and chunks[-1] is empty[1]
    assert chunks[0].model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert chunks[1].choices[0].delta.role == "assistant"
    finish = chunks[-2].choices[0]
    assert finish.finish_reason == "stop" and finish.delta.content is None
    usage = chunks[-1].usage
    assert usage.completion_tokens == 60
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens > 0
    ids = {c.id for c in chunks[1:]}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert {c.model for c in chunks[1:]} == {"gpt-4.1-mini-2025-04-14"}
    assert all(c.object == "chat.completion.chunk" for c in chunks[1:])
    for c in chunks[2:-2]:
        assert c.choices[0].model_extra["content_filter_results"]["hate"]["filtered"] is False


async def test_v1_path_stream_and_plain_answer_agree(v1: AsyncOpenAI) -> None:
    stream = await v1.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    text, chunks = await _collect(stream)
    assert text == expected_answer(MESSAGES)
    assert all(c.usage is None for c in chunks)  # no include_usage: no usage chunk
    assert not chunks[0].choices and chunks[-1].choices[0].finish_reason == "stop"
    answer = await v1.chat.completions.create(model="chat", messages=MESSAGES)
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == text
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 60
    assert answer.model_extra["prompt_filter_results"]


async def test_max_tokens_truncates_with_finish_reason_length(azure: AsyncAzureOpenAI) -> None:
    answer = await azure.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=7)
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == expected_answer(MESSAGES, max_tokens=7)
    assert answer.usage is not None and answer.usage.completion_tokens == 7


async def test_reasoning_profile_counts_hidden_tokens(v1: AsyncOpenAI) -> None:
    stream = await v1.chat.completions.create(
        model="reasoning",
        messages=MESSAGES,
        max_completion_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, chunks = await _collect(stream)
    hidden = REASONING.reasoning_tokens
    assert text == expected_answer(MESSAGES, max_completion_tokens=50, reasoning_tokens=hidden)
    assert chunks[-2].choices[0].finish_reason == "length"
    usage = chunks[-1].usage
    assert usage.completion_tokens == 50
    assert usage.completion_tokens_details.reasoning_tokens == hidden
    assert chunks[1].model == REASONING.model


async def test_determinism_across_paths_and_requests(
    azure: AsyncAzureOpenAI, v1: AsyncOpenAI
) -> None:
    a = await azure.chat.completions.create(model="chat", messages=MESSAGES)
    b = await v1.chat.completions.create(model="chat", messages=MESSAGES)
    c = await v1.chat.completions.create(model="chat", messages=MESSAGES, seed=5)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.id != b.id  # ids are per response
    assert c.choices[0].message.content == expected_answer(MESSAGES, seed=5)
    assert c.choices[0].message.content != a.choices[0].message.content


async def test_raw_sse_framing(emulator: OpenAIEmulator) -> None:
    url = f"{emulator.endpoint}/openai/deployments/chat/chat/completions"
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST", url, params={"api-version": API_VERSION}, json=body,
            headers={"api-key": emulator.api_key},
        ) as response,
    ):  # fmt: skip
        raw = (await response.aread()).decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["apim-request-id"]
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    first = json.loads(events[0][6:])
    assert first == {**first, "choices": [], "id": "", "model": "", "object": "", "created": 0}
    finish = json.loads(events[-4][6:])
    assert finish["choices"][0]["delta"] == {} and finish["usage"] is None
    last = json.loads(events[-3][6:])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 60


def test_sync_clients_in_a_thread() -> None:
    with run_in_thread(port=0, api_key="k", pacing=FAST) as emu:
        assert emu.port > 0 and emu.endpoint.endswith(str(emu.port))
        azure = AzureOpenAI(azure_endpoint=emu.endpoint, api_key="k", api_version=API_VERSION)
        plain = OpenAI(base_url=f"{emu.endpoint}/openai/v1/", api_key="k")
        stream = azure.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        answer = plain.chat.completions.create(model="chat", messages=MESSAGES)
        assert text == answer.choices[0].message.content == expected_answer(MESSAGES)
        assert emu.stats.streams == 1 and emu.stats.completions == 2
