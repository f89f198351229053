from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay._manifest import MANIFEST
from relay.errors import SettingsError
from relay.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "AzureSignalRConnectionString": "Endpoint=http://127.0.0.1;Port=8888;AccessKey=k;Version=1.0;",
    "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:8889",
    "AZURE_OPENAI_DEPLOYMENT": "chat",
}


def test_defaults_apply() -> None:
    s = load_settings(BASE)
    assert s.storage.connection_string == "UseDevelopmentStorage=true"
    assert s.batch_window_ms == 90 and s.batch_max_bytes == 2048
    assert s.signalr_hub == "stream" and s.auth_mode == "platform"
    assert s.openai_api_key is None  # absent key means Entra ID
    assert s.openai_api_version == "v1"


def test_every_problem_is_named_at_once() -> None:
    env = {"BATCH_WINDOW_MS": "soon", "MODEL_PROFILE": "gpt", "BATCH_MAX_BYTES": "9000"}
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    text = str(info.value)
    for name in (
        "AzureWebJobsStorage",
        "AzureSignalRConnectionString",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_DEPLOYMENT",
        "BATCH_WINDOW_MS",
        "MODEL_PROFILE",
        "BATCH_MAX_BYTES",
    ):
        assert name in text
    assert len(info.value.problems) == 7


def test_identity_based_storage_is_accepted() -> None:
    env = {k: v for k, v in BASE.items() if k != "AzureWebJobsStorage"}
    env |= {
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
    }
    s = load_settings(env)
    assert s.storage.uses_identity
    assert s.storage.table_uri == "https://acct.table.core.windows.net"
    assert s.storage.client_id == "11111111-2222-3333-4444-555555555555"


def test_dev_auth_refused_in_azure() -> None:
    with pytest.raises(SettingsError, match="AUTH_MODE=dev"):
        load_settings(BASE | {"AUTH_MODE": "dev", "WEBSITE_INSTANCE_ID": "abc"})


def test_example_local_settings_parse_and_cover_the_manifest() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    load_settings(example)  # must be valid as shipped
    for s in MANIFEST:
        if s.scope == "azure":
            assert s.name not in example, f"{s.name} is Azure-only"
        elif s.default is None and not s.optional:
            assert s.name in example, f"{s.name} is required locally"
    known = {s.name for s in MANIFEST}
    assert set(example) <= known, set(example) - known


async def test_stall_timeout_reaches_the_llm_client() -> None:
    from relay.llm import LLMClient

    s = load_settings(BASE | {"AZURE_OPENAI_API_KEY": "k", "LLM_STALL_TIMEOUT_SECONDS": "7"})
    client = LLMClient.from_settings(s)
    try:
        assert client._stall_timeout_s == 7.0
    finally:
        await client.aclose()
