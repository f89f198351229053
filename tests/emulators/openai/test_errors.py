"""Refusals shaped like Azure's: auth, api-version, deployment, body and model rules."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI

from local.openai_emulator import OpenAIEmulator

from .conftest import API_VERSION

HELLO = [{"role": "user", "content": "hello"}]


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


async def _post(emu: OpenAIEmulator, path: str, body: Any, **headers: str) -> httpx.Response:
    headers = {"api-key": emu.api_key, **headers}
    async with httpx.AsyncClient(base_url=emu.endpoint) as client:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await client.post(path, content=content, headers=headers)


DATED = f"/openai/deployments/chat/chat/completions?api-version={API_VERSION}"
V1 = "/openai/v1/chat/completions"


async def test_wrong_key_is_401_with_azure_body(emulator: OpenAIEmulator) -> None:
    async with AsyncAzureOpenAI(
        azure_endpoint=emulator.endpoint, api_key="nope", api_version=API_VERSION, max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="chat", messages=HELLO)
    assert caught.value.body["code"] == "401"
    assert "invalid subscription key" in caught.value.body["message"]


async def test_missing_key_and_bad_bearer_are_401(emulator: OpenAIEmulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.endpoint) as client:
        missing = await client.post(V1, json={"model": "chat", "messages": HELLO})
        bad = await client.post(
            V1,
            json={"model": "chat", "messages": HELLO},
            headers={"authorization": "Bearer not-a-token"},
        )
        expired = await client.post(
            V1,
            json={"model": "chat", "messages": HELLO},
            headers={"authorization": f"Bearer {_jwt({'exp': time.time() - 60})}"},
        )
    assert missing.status_code == bad.status_code == expired.status_code == 401
    assert "missing subscription key" in missing.json()["error"]["message"]
    assert "Access token is missing, invalid" in bad.json()["error"]["message"]
    assert emulator.stats.errors[401] == 3


async def test_jwt_shaped_bearer_is_accepted(emulator: OpenAIEmulator) -> None:
    token = _jwt({"aud": "https://cognitiveservices.azure.com", "exp": time.time() + 600})
    async with AsyncAzureOpenAI(
        azure_endpoint=emulator.endpoint,
        azure_ad_token=token,
        api_version=API_VERSION,
        max_retries=0,
    ) as client:
        answer = await client.chat.completions.create(model="chat", messages=HELLO)
    assert answer.choices[0].message.content


async def test_api_version_missing_is_404_unknown_is_400(emulator: OpenAIEmulator) -> None:
    body = {"messages": HELLO}
    missing = await _post(emulator, "/openai/deployments/chat/chat/completions", body)
    unknown = await _post(
        emulator, "/openai/deployments/chat/chat/completions?api-version=2099-01-01", body
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {"code": "BadRequest", "message": "API version not supported"}


async def test_unknown_deployment_is_deployment_not_found_on_both_paths(
    azure: AsyncAzureOpenAI, v1: AsyncOpenAI
) -> None:
    for client in (azure, v1):
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-99", messages=HELLO)
        assert caught.value.body["code"] == "DeploymentNotFound"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "messages", "missing_required_parameter"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ({"messages": HELLO, "temperature": 3}, "temperature", "decimal_above_max_value"),
        ({"messages": HELLO, "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"messages": HELLO, "max_tokens": "9"}, "max_tokens", "invalid_type"),
        ({"messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options",
         "invalid_value"),
    ],
)  # fmt: skip
async def test_invalid_bodies_are_400_naming_the_param(
    emulator: OpenAIEmulator, body: dict[str, Any], param: str, code: str
) -> None:
    response = await _post(emulator, DATED, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert error["message"].endswith(".") and len(error["message"]) > 20


async def test_unparseable_json_and_missing_model(emulator: OpenAIEmulator) -> None:
    broken = await _post(emulator, DATED, b"{not json")
    assert broken.status_code == 400
    assert "could not parse the JSON body" in broken.json()["error"]["message"]
    no_model = await _post(emulator, V1, {"messages": HELLO})
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"


async def test_reasoning_profile_rejections(v1: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.chat.completions.create(model="reasoning", messages=HELLO, max_tokens=50)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "max_tokens"
    assert caught.value.body["message"] == (
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead."
    )
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.chat.completions.create(model="reasoning", messages=HELLO, temperature=0.2)
    assert caught.value.code == "unsupported_value" and caught.value.param == "temperature"
    ok = await v1.chat.completions.create(
        model="reasoning", messages=HELLO, temperature=1, max_completion_tokens=100
    )
    assert ok.choices[0].message.content
    chat = await v1.chat.completions.create(model="chat", messages=HELLO, temperature=0.2)
    assert chat.choices[0].message.content


async def test_readiness_calls_and_unknown_routes(emulator: OpenAIEmulator) -> None:
    key = {"api-key": emulator.api_key}
    async with httpx.AsyncClient(base_url=emulator.endpoint) as client:
        models = await client.get("/openai/v1/models", headers=key)
        one = await client.get("/openai/v1/models/reasoning", headers=key)
        deployment = await client.get(
            "/openai/deployments/chat", params={"api-version": API_VERSION}, headers=key
        )
        unauthorized = await client.get("/openai/v1/models")
        nowhere = await client.post("/openai/v1/embeddings", headers=key, json={})
    assert {m["id"] for m in models.json()["data"]} == {"chat", "reasoning"}
    assert one.json()["model"].startswith("gpt-5")
    assert deployment.json()["status"] == "succeeded"
    assert unauthorized.status_code == 401
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "404"


async def test_stats_count_and_reset(v1: AsyncOpenAI, emulator: OpenAIEmulator) -> None:
    stream = await v1.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "x [[emulator tokens=9]]"}],
        stream=True,
    )  # fmt: skip
    _ = [c async for c in stream]
    async with httpx.AsyncClient(base_url=emulator.endpoint) as client:
        # The client has the last chunk before the server's handler has returned: wait
        # for the stream to be counted as finished rather than race it.
        deadline = time.monotonic() + 30
        stats = (await client.get("/_emulator/stats")).json()
        while stats["active_streams"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            stats = (await client.get("/_emulator/stats")).json()
        assert (stats["requests"], stats["streams"], stats["streams_completed"]) == (1, 1, 1)
        assert stats["tokens"] == 9 and stats["active_streams"] == 0
        reset = (await client.post("/_emulator/reset")).json()
    assert reset["requests"] == 0 and reset["tokens"] == 0
