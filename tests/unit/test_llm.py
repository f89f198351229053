"""Unit tests of relay.llm against a tiny in-test Azure OpenAI server (real HTTP, free port).

openai 3.x is built on httpx2, so respx and httpx.MockTransport cannot stand in for the
service; a starlette app speaking the wire format (SSE `data:` lines) does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from azure.core.credentials import AccessToken
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from relay.errors import (
    LLMContentFiltered,
    LLMError,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from relay.llm import COGNITIVE_SCOPE, LLMClient, StreamEnd, TextDelta, Usage, map_llm_error
from relay.llm._sse import Chunk, MalformedChunk, SSEDecoder, StreamErrorEvent, read_chunk
from relay.settings import load_settings

KEY = "test-key-0123456789"
ENTRA = "entra-token-abc"
DEPLOYMENT = "chat-dep"


def _chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta: dict[str, Any] = {} if content is None else {"content": content}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


PROMPT_FILTER = {
    "id": "",
    "object": "",
    "created": 0,
    "model": "",
    "choices": [],
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
}
ROLE = {
    **_chunk(),
    "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
}
USAGE = {
    **_chunk(),
    "choices": [],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
}
BODY = [_chunk("Hel"), _chunk("lo"), _chunk(""), _chunk(None), _chunk(" wörld 🙂")]

SCRIPTS: dict[str, list[Any]] = {
    "normal": [PROMPT_FILTER, ROLE, *BODY, _chunk(None, "stop"), USAGE, "[DONE]"],
    "no_usage": [ROLE, *BODY, _chunk(None, "length"), "[DONE]"],
    "filter": [PROMPT_FILTER, ROLE, _chunk("Hel"), _chunk(None, "content_filter"), "[DONE]"],
    "cut": [PROMPT_FILTER, ROLE, *BODY],  # ends cleanly with no finish and no [DONE]
    "abort": [ROLE, *BODY, "ABORT"],  # the connection drops mid-body
    "finish_then_abort": [ROLE, *BODY, _chunk(None, "stop"), "ABORT"],
    "stall": [ROLE, _chunk("Hel"), "STALL"],
    "error_event": [ROLE, _chunk("Hel"), {"error": {"code": "server_error", "message": "x"}}],
    "malformed": [ROLE, _chunk("Hel"), "{not json", _chunk(None, "stop"), "[DONE]"],
    "crlf": ["CRLF", PROMPT_FILTER, ROLE, *BODY, _chunk(None, "stop"), USAGE, "[DONE]"],
    "split": ["SPLIT", PROMPT_FILTER, ROLE, *BODY, _chunk(None, "stop"), USAGE, "[DONE]"],
    "other_choice": [
        ROLE,
        {**_chunk(), "choices": [{"index": 1, "delta": {"content": "B"}, "finish_reason": None}]},
        _chunk("A", "stop"),
        "[DONE]",
    ],
}

ERRORS: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "e429ms": (429, {"error": {"code": "429", "message": "slow down"}}, {"retry-after-ms": "1500"}),
    "e429s": (429, {"error": {"code": "429", "message": "slow down"}}, {"retry-after": "7"}),
    "e500": (500, {"error": {"code": "InternalServerError", "message": "boom"}}, {}),
    "e503": (503, {"error": {"message": "busy"}}, {}),
    "e400": (400, {"error": {"code": "invalid_value", "message": "bad max_tokens"}}, {}),
    "e400filter": (
        400,
        {
            "error": {
                "code": "content_filter",
                "message": "The response was filtered: SECRET PROMPT TEXT",
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            }
        },
        {},
    ),
    "e404": (404, {"error": {"code": "DeploymentNotFound", "message": "no such"}}, {}),
}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FakeAOAI:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)  # client port of each chat request


def _authorized(request: Request) -> bool:
    return request.headers.get("api-key") == KEY or request.headers.get("authorization") in (
        f"Bearer {KEY}",
        f"Bearer {ENTRA}",
    )


def _app(state: FakeAOAI) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        assert request.client is not None
        state.ports.append(request.client.port)
        state.seen.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.query_params),
                dict(request.headers),
                body,
            )
        )
        if not _authorized(request):
            return JSONResponse({"error": {"code": "401", "message": "no"}}, status_code=401)
        scenario = body["messages"][-1]["content"]
        if scenario in ERRORS:
            status, payload, headers = ERRORS[scenario]
            return JSONResponse(payload, status_code=status, headers=headers)
        script = SCRIPTS[scenario]
        # CRLF: Azure-style line ends with comments and an `event:` field; SPLIT: one byte a write
        newline = "\r\n" if script[0] == "CRLF" else "\n"

        async def events() -> AsyncIterator[bytes]:
            for item in script:
                if item == "CRLF":
                    yield b": keep-alive comment\r\nevent: message\r\n"
                    continue
                if item == "SPLIT":
                    continue
                if item == "ABORT":
                    raise RuntimeError("connection dropped on purpose")
                if item == "STALL":
                    await asyncio.sleep(30)
                    return
                data = item if isinstance(item, str) else json.dumps(item)
                frame = f"data: {data}{newline}{newline}".encode()
                if script[0] == "SPLIT":
                    for i in range(len(frame)):
                        yield frame[i : i + 1]
                else:
                    yield frame

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        state.seen.append(Seen("GET", request.url.path, {}, dict(request.headers), None))
        if not _authorized(request):
            return JSONResponse({"error": {"code": "401"}}, status_code=401)
        return JSONResponse({"object": "list", "data": [{"id": DEPLOYMENT}]})

    return Starlette(
        routes=[
            Route("/openai/v1/chat/completions", chat, methods=["POST"]),
            Route("/openai/deployments/{dep}/chat/completions", chat, methods=["POST"]),
            Route("/openai/v1/models", models, methods=["GET"]),
        ]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAOAI]:
    state = FakeAOAI()
    port = _free_port()
    config = uvicorn.Config(
        _app(state),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    state.url = f"http://127.0.0.1:{port}"
    yield state
    srv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def fake(server: FakeAOAI) -> FakeAOAI:
    server.seen.clear()
    server.ports.clear()
    return server


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(ENTRA, int(time.time()) + 3600)

    async def close(self) -> None:
        pass


def _request(scenario: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": scenario},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
    }


async def _collect(client: LLMClient, scenario: str) -> tuple[list[Any], BaseException | None]:
    events: list[Any] = []
    try:
        async for event in client.stream(_request(scenario)):
            events.append(event)
    except LLMError as exc:
        return events, exc
    finally:
        await client.aclose()
    return events, None


def _texts(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def _v1(fake: FakeAOAI, **kw: Any) -> LLMClient:
    return LLMClient(fake.url, DEPLOYMENT, api_key=KEY, **kw)


# -- event mapping -----------------------------------------------------------------------


async def test_v1_stream_events_and_wire_request(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "normal")
    assert error is None
    assert _texts(events) == ["Hel", "lo", " wörld 🙂"]  # empty and missing content skipped
    assert events[-1] == StreamEnd("stop", Usage(7, 3, 10))
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    seen = fake.seen[-1]
    assert seen.path == "/openai/v1/chat/completions"
    assert "api-version" not in seen.query
    assert seen.body is not None
    assert seen.body["model"] == DEPLOYMENT
    assert seen.body["stream"] is True
    assert seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["max_tokens"] == 50 and seen.body["temperature"] == 0.2
    assert seen.body["messages"][0] == {"role": "system", "content": "be brief"}


async def test_dated_api_version_uses_deployment_path_and_api_key_header(fake: FakeAOAI) -> None:
    client = LLMClient(fake.url, DEPLOYMENT, "2024-10-21", api_key=KEY)
    events, error = await _collect(client, "normal")
    assert error is None and events[-1] == StreamEnd("stop", Usage(7, 3, 10))
    seen = fake.seen[-1]
    assert seen.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert seen.query["api-version"] == "2024-10-21"
    assert seen.headers["api-key"] == KEY


async def test_v1_key_auth_sent(fake: FakeAOAI) -> None:
    await _collect(_v1(fake), "normal")
    # the v1 API takes the key as a bearer token (Microsoft's v1 samples pass api_key=KEY)
    assert fake.seen[-1].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("api_version", ["v1", "2024-10-21"])
async def test_entra_bearer_auth(fake: FakeAOAI, api_version: str) -> None:
    cred = FakeCredential()
    client = LLMClient(fake.url, DEPLOYMENT, api_version, credential=cred)
    events, error = await _collect(client, "normal")
    assert error is None and _texts(events) == ["Hel", "lo", " wörld 🙂"]
    assert fake.seen[-1].headers["authorization"] == f"Bearer {ENTRA}"
    assert "api-key" not in fake.seen[-1].headers
    assert cred.scopes and cred.scopes[0] == (COGNITIVE_SCOPE,)


async def test_stream_without_usage_chunk(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "no_usage")
    assert error is None and events[-1] == StreamEnd("length", None)


async def test_content_filter_raises_after_text_before_it(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "filter")
    assert _texts(events) == ["Hel"]
    assert isinstance(error, LLMContentFiltered) and not error.retryable
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_stream_ending_without_finish_is_unavailable(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "cut")
    assert _texts(events) == ["Hel", "lo", " wörld 🙂"]
    assert isinstance(error, LLMUnavailable) and error.retryable


async def test_dropped_connection_is_unavailable(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "abort")
    assert isinstance(error, LLMUnavailable)
    assert error.__cause__ is not None
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_drop_after_finish_still_ends_the_answer(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "finish_then_abort")
    assert error is None and events[-1] == StreamEnd("stop", None)


async def test_stall_raises_unavailable_within_the_stall_timeout(fake: FakeAOAI) -> None:
    started = time.monotonic()
    events, error = await _collect(_v1(fake, stall_timeout_s=0.3), "stall")
    elapsed = time.monotonic() - started
    assert _texts(events) == ["Hel"]
    assert isinstance(error, LLMUnavailable) and "stall" in str(error)
    assert elapsed < 3


async def test_error_event_mid_stream_is_unavailable(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "error_event")
    assert _texts(events) == ["Hel"]
    assert isinstance(error, LLMUnavailable)


async def test_consumer_stopping_early_closes_the_stream(fake: FakeAOAI) -> None:
    client = _v1(fake, stall_timeout_s=5)
    stream = client.stream(_request("stall"))
    first = await anext(stream)
    assert first == TextDelta("Hel")
    started = time.monotonic()
    await stream.aclose()  # type: ignore[attr-defined]
    await client.aclose()
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("scenario", ["crlf", "split"])
async def test_crlf_comments_and_byte_by_byte_framing(fake: FakeAOAI, scenario: str) -> None:
    events, error = await _collect(_v1(fake), scenario)
    assert error is None
    assert _texts(events) == ["Hel", "lo", " wörld 🙂"]  # UTF-8 split inside a character too
    assert events[-1] == StreamEnd("stop", Usage(7, 3, 10))


async def test_malformed_event_is_unavailable(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "malformed")
    assert _texts(events) == ["Hel"]
    assert isinstance(error, LLMUnavailable) and "not JSON" in str(error)
    assert error.__cause__ is not None


async def test_only_choice_zero_is_read(fake: FakeAOAI) -> None:
    events, error = await _collect(_v1(fake), "other_choice")
    assert error is None and _texts(events) == ["A"]
    assert events[-1] == StreamEnd("stop", None)


async def test_connection_reused_after_done(fake: FakeAOAI) -> None:
    client = _v1(fake)
    for _ in range(3):
        events = [e async for e in client.stream(_request("normal"))]
        assert isinstance(events[-1], StreamEnd)
    await client.aclose()
    # [DONE] is followed by the end of the chunked body, which is read before closing,
    # so the pooled connection serves the next stream.
    assert len(fake.ports) == 3 and len(set(fake.ports)) == 1


# -- error mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "kind", "status", "retry_after"),
    [
        ("e429ms", LLMRateLimited, 429, 1.5),
        ("e429s", LLMRateLimited, 429, 7.0),
        ("e500", LLMUnavailable, 500, None),
        ("e503", LLMUnavailable, 503, None),
        ("e400", LLMRequestRejected, 400, None),
        ("e400filter", LLMContentFiltered, 400, None),
        ("e404", LLMRequestRejected, 404, None),
    ],
)
@pytest.mark.parametrize("api_version", ["v1", "2024-10-21"])
async def test_http_errors_mapped(
    fake: FakeAOAI,
    scenario: str,
    kind: type[LLMError],
    status: int,
    retry_after: float | None,
    api_version: str,
) -> None:
    client = LLMClient(fake.url, DEPLOYMENT, api_version, api_key=KEY)
    events, error = await _collect(client, scenario)
    assert events == []
    assert type(error) is kind
    assert error.status == status
    assert error.retry_after == retry_after
    assert error.__cause__ is not None
    assert "SECRET PROMPT TEXT" not in str(error)
    assert len(fake.seen) == 1  # the SDK's own retries are off


async def test_wrong_key_is_rejected_401(fake: FakeAOAI) -> None:
    client = LLMClient(fake.url, DEPLOYMENT, api_key="wrong-key-xyz")
    _, error = await _collect(client, "normal")
    assert isinstance(error, LLMRequestRejected) and error.status == 401
    assert "wrong-key-xyz" not in str(error)


async def test_unreachable_endpoint_is_unavailable(refused_port: int) -> None:
    client = LLMClient(f"http://127.0.0.1:{refused_port}", DEPLOYMENT, api_key=KEY)
    _, error = await _collect(client, "normal")
    assert isinstance(error, LLMUnavailable) and error.retryable


# -- construction, settings, ping --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("ftp://x", DEPLOYMENT), "endpoint"),
        (("https://x.openai.azure.com", ""), "deployment"),
        (("https://x.openai.azure.com", DEPLOYMENT, "latest"), "api_version"),
    ],
)
def test_constructor_validates(args: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        LLMClient(*args, api_key=KEY)


async def test_reserved_request_keys_refused(fake: FakeAOAI) -> None:
    client = _v1(fake)
    with pytest.raises(ValueError, match="stream"):
        async for _ in client.stream({"messages": [], "stream": False}):
            pass
    await client.aclose()


async def test_from_settings(fake: FakeAOAI) -> None:
    settings = load_settings(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "AzureSignalRConnectionString": "Endpoint=http://127.0.0.1;AccessKey=x;",
            "AZURE_OPENAI_ENDPOINT": fake.url,
            "AZURE_OPENAI_API_KEY": KEY,
            "AZURE_OPENAI_DEPLOYMENT": DEPLOYMENT,
            "AZURE_OPENAI_API_VERSION": "2024-10-21",
        }
    )
    client = LLMClient.from_settings(settings)
    assert (client.endpoint, client.deployment, client.api_version) == (
        fake.url,
        DEPLOYMENT,
        "2024-10-21",
    )
    events, error = await _collect(client, "normal")
    assert error is None and isinstance(events[-1], StreamEnd)


async def test_ping(fake: FakeAOAI, refused_port: int) -> None:
    ok = _v1(fake)
    assert await ok.ping() is True
    assert fake.seen[-1].path == "/openai/v1/models"
    assert fake.seen[-1].headers["api-key"] == KEY
    await ok.aclose()
    entra = LLMClient(fake.url, DEPLOYMENT, credential=FakeCredential())
    assert await entra.ping() is True
    assert fake.seen[-1].headers["authorization"] == f"Bearer {ENTRA}"
    await entra.aclose()
    bad = LLMClient(fake.url, DEPLOYMENT, api_key="nope")
    assert await bad.ping() is False
    await bad.aclose()
    down = LLMClient(f"http://127.0.0.1:{refused_port}", DEPLOYMENT, api_key=KEY)
    assert await down.ping() is False
    await down.aclose()


# -- SSE framing and chunk reading, no I/O ---------------------------------------------------


def _feed_all(parts: list[bytes]) -> tuple[list[bytes], bool]:
    decoder = SSEDecoder()
    events = [event for part in parts for event in decoder.feed(part)]
    return events, decoder.done


WIRE = (
    b': comment\r\nevent: message\r\ndata: {"a":1}\r\n\r\n'
    b"data:first\ndata: second\n\n"
    b"id: 7\rdata: cr\r\r"
    b"data: [DONE]\n\n"
    b"data: after-done\n\n"
)
WIRE_EVENTS = [b'{"a":1}', b"first\nsecond", b"cr"]


def test_sse_decoder_fields_line_ends_and_done() -> None:
    assert _feed_all([WIRE]) == (WIRE_EVENTS, True)


def test_sse_decoder_drops_an_unterminated_event() -> None:
    assert _feed_all([b"data: whole\n\ndata: cut"]) == ([b"whole"], False)
    assert _feed_all([b"data: cut\n"]) == ([], False)


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_sse_decoder_any_split_gives_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(WIRE)]
    parts = [WIRE[a:b] for a, b in itertools.pairwise(bounds)]
    assert _feed_all(parts) == (WIRE_EVENTS, True)


def test_read_chunk_fields() -> None:
    raw = {
        "choices": [
            {"index": 1, "delta": {"content": "other"}, "finish_reason": "stop"},
            {"index": 0, "delta": {"content": "hi"}, "finish_reason": None},
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    assert read_chunk(json.dumps(raw).encode()) == Chunk("hi", None, Usage(1, 2, 3))
    assert read_chunk(b'{"choices":[],"usage":null}') == Chunk(None, None, None)
    assert read_chunk(b'{"choices":[{"index":0,"delta":null,"finish_reason":"length"}]}') == (
        Chunk(None, "length", None)
    )
    assert read_chunk(b'{"usage":{"prompt_tokens":"1"}}').usage is None


@pytest.mark.parametrize("data", [b"{oops", b"[1, 2]", b"\xff\xfe", b""])
def test_read_chunk_malformed(data: bytes) -> None:
    with pytest.raises(MalformedChunk):
        read_chunk(data)


def test_read_chunk_error_event_keeps_only_the_code() -> None:
    with pytest.raises(StreamErrorEvent) as info:
        read_chunk(b'{"error": {"code": "server_error", "message": "SECRET PROMPT TEXT"}}')
    assert info.value.code == "server_error"
    mapped = map_llm_error(info.value)
    assert isinstance(mapped, LLMUnavailable) and "server_error" in str(mapped)
    assert "SECRET" not in str(mapped)
