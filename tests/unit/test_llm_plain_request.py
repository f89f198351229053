"""relay.llm's plain-request path sends what the SDK's `chat.completions.create` sends.

`LLMClient.stream` builds the body of a plain request itself (no type-directed transform)
and posts it through the SDK client; these tests capture both ways' requests with httpx2's
MockTransport and compare them byte for byte: method, URL, headers and body.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from azure.core.credentials import AccessToken

from relay.errors import LLMRateLimited
from relay.llm import LLMClient, StreamEnd, TextDelta
from relay.llm._client import _plain_body

SSE = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
CHAT = {
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": 'héllo 🙂 "quoted" <b>'},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again", "name": "ann"},
    ],
    "max_tokens": 50,
    "temperature": 0.2,
}
REASONING = {"messages": [{"role": "user", "content": "think"}], "max_completion_tokens": 99}


class _Credential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("entra-token", 4_000_000_000)

    async def close(self) -> None:
        return None


class _Capture:
    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests: list[httpx2.Request] = []
        self.status = status
        self.headers = headers or {}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.status != 200:
            body = json.dumps({"error": {"code": str(self.status), "message": "no"}}).encode()
            return httpx2.Response(self.status, headers=self.headers, content=body)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=SSE)


def _client(api_version: str, capture: _Capture, *, entra: bool = False) -> LLMClient:
    return LLMClient(
        "https://res.openai.azure.com",
        "dep-1",
        api_version,
        None if entra else "key-1",
        _Credential() if entra else None,
        transport=httpx2.MockTransport(capture),
    )


async def _sdk_request(client: LLMClient, request: dict[str, Any]) -> None:
    """What the SDK's own streaming `create` sends for `request` (the reference)."""
    streaming = client._client.chat.completions.with_streaming_response.create(
        model=client.deployment, stream=True, stream_options={"include_usage": True}, **request
    )
    async with streaming as response:
        await response.http_response.aread()


def _wire(request: httpx2.Request) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    return request.method, str(request.url), list(request.headers.raw), request.content


@pytest.mark.parametrize(
    ("api_version", "entra"),
    [("v1", False), ("v1", True), ("2024-10-21", False), ("2024-10-21", True)],
)
@pytest.mark.parametrize("request_", [CHAT, REASONING], ids=["chat", "reasoning"])
async def test_plain_request_is_the_sdk_request_byte_for_byte(
    api_version: str, entra: bool, request_: dict[str, Any]
) -> None:
    capture = _Capture()
    async with _client(api_version, capture, entra=entra) as client:
        events = [e async for e in client.stream(request_)]
        await _sdk_request(client, request_)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hi"]
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"
    ours, sdk = capture.requests
    assert _wire(ours) == _wire(sdk)
    body = json.loads(ours.content)
    assert body["model"] == "dep-1" and body["stream"] is True
    assert body["messages"] == request_["messages"]


@pytest.mark.parametrize(
    "request_",
    [
        {**CHAT, "top_p": 0.5},  # a key the plain path does not know
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
        {"messages": [{"role": "user", "content": None}]},
        {"messages": "not a list"},
    ],
    ids=["other-key", "content-parts", "null-content", "bad-messages"],
)
def test_anything_but_a_plain_request_takes_the_sdk_path(request_: dict[str, Any]) -> None:
    assert _plain_body("dep", request_) is None


async def test_other_keys_still_reach_the_wire_through_the_sdk() -> None:
    capture = _Capture()
    async with _client("v1", capture) as client:
        events = [e async for e in client.stream({**CHAT, "top_p": 0.5})]
    assert isinstance(events[-1], StreamEnd)
    assert json.loads(capture.requests[0].content)["top_p"] == 0.5


async def test_plain_request_refused_answer_is_mapped_and_carries_retry_after() -> None:
    capture = _Capture(429, {"retry-after": "7", "content-type": "application/json"})
    async with _client("v1", capture) as client:
        with pytest.raises(LLMRateLimited) as caught:
            async for _ in client.stream(CHAT):
                pass
    assert caught.value.retry_after == 7
    assert len(capture.requests) == 1  # the SDK's own retries stay off
