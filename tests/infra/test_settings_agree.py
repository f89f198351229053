"""relay/_manifest.py, the app settings infra/ sets and local.settings.json.example agree.

Each side is checked against the scopes in the manifest: infra/ sets what the app reads in
Azure and nothing local-only; the example sets what it reads locally and nothing Azure-only.
The Bicep is parsed in the infra venv (pycep); only keys and literal values are compared.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay._manifest import MANIFEST, by_name
from relay.settings import load_settings

from .conftest import INFRA, ROOT

# Read by App Service Authentication, not by the app, so not in the manifest.
PLATFORM_AUTH_SETTINGS = {
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID": "identity client id standing in for a secret",
    "WEBSITE_AUTH_AAD_ALLOWED_TENANTS": "tenants whose users may sign in",
}
# Settings of ours that infra/ deliberately leaves unset in Azure.
NOT_IN_AZURE = {
    "AzureWebJobsStorage": "a connection string carries a key; the identity-based __* are used",
}
# Placeholders for values infra/ computes at deploy time, by manifest kind.
PLACEHOLDER = {"url": "https://example.invalid", "str": "computed", "secret": "computed"}


@pytest.fixture(scope="module")
def infra_settings(infra_report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    settings: dict[str, dict[str, Any]] = infra_report["app_settings"]
    return settings


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    data = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    values: dict[str, str] = data["Values"]
    return values


def test_infra_sets_only_settings_the_app_reads_in_azure(
    infra_settings: dict[str, dict[str, Any]],
) -> None:
    manifest = by_name()
    for name in infra_settings:
        if name in PLATFORM_AUTH_SETTINGS:
            continue
        assert name in manifest, f"{name} is set by infra/ but not in relay/_manifest.py"
        setting = manifest[name]
        assert setting.scope in ("both", "azure"), f"{name} is {setting.scope}-only"
        assert setting.set_by == "us", f"{name} is set by the platform, not infra/"
    assert not set(infra_settings) & set(NOT_IN_AZURE)


def test_infra_sets_every_setting_of_ours_the_app_reads_in_azure(
    infra_settings: dict[str, dict[str, Any]],
) -> None:
    wanted = {
        s.name
        for s in MANIFEST
        if s.scope in ("both", "azure") and s.set_by == "us" and s.name not in NOT_IN_AZURE
    }
    missing = wanted - set(infra_settings)
    assert not missing, f"infra/ does not set {sorted(missing)}"


def test_infra_literals_are_valid_and_the_app_starts_with_them(
    infra_settings: dict[str, dict[str, Any]],
) -> None:
    manifest = by_name()
    env = {"WEBSITE_INSTANCE_ID": "instance", "WEBSITE_AUTH_ENABLED": "True"}
    for name, value in infra_settings.items():
        if name in PLATFORM_AUTH_SETTINGS:
            continue
        literal = value["literal"]
        kind = manifest[name].kind
        if literal is None:
            choices = manifest[name].choices
            literal = choices[0] if kind == "enum" else PLACEHOLDER.get(kind, "1")
        env[name] = literal
    settings = load_settings(env)  # raises SettingsError naming every bad value
    assert settings.in_azure and settings.platform_auth_enabled
    assert settings.auth_mode == "platform"
    assert settings.storage.uses_identity
    assert infra_settings["AUTH_MODE"]["literal"] == "platform"
    assert infra_settings["AzureWebJobsStorage__credential"]["literal"] == "managedidentity"


def test_azure_connection_strings_use_the_identity_not_keys(
    infra_settings: dict[str, dict[str, Any]],
) -> None:
    signalr = infra_settings["AzureSignalRConnectionString"]["expr"]
    assert "AuthType=azure.msi" in signalr
    assert "ClientId=${identityClientId}" in signalr
    assert "AccessKey" not in signalr
    auth = infra_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]["expr"]
    assert auth == "'ClientId=${identityClientId};Authorization=AAD'"
    for name, value in infra_settings.items():
        text = str(value["expr"]).lower()
        for marker in ("accountkey=", "accesskey=", "sharedaccesskey=", "instrumentationkey="):
            assert marker not in text, f"{name} carries a key"


def test_example_sets_only_settings_the_app_reads_locally(example: dict[str, str]) -> None:
    manifest = by_name()
    for name in example:
        assert name in manifest, f"{name} is in the example but not in the manifest"
        assert manifest[name].scope in ("both", "local"), f"{name} is Azure-only"


def test_example_sets_every_local_setting_without_a_usable_default(
    example: dict[str, str],
) -> None:
    needed = {
        s.name for s in MANIFEST if s.scope == "both" and s.set_by == "us" and s.default is None
    }
    missing = needed - set(example)
    assert not missing, f"local.settings.json.example lacks {sorted(missing)}"
    settings = load_settings(example)
    assert not settings.in_azure


def test_queue_name_agrees_everywhere(
    infra_report: dict[str, Any], infra_settings: dict[str, dict[str, Any]], example: dict[str, str]
) -> None:
    main = infra_report["parsed"]["main.bicep"]
    queue = main["variables"]["jobsQueueName"]["value"]
    assert queue == by_name()["JOBS_QUEUE"].default == example["JOBS_QUEUE"]
    assert infra_settings["JOBS_QUEUE"]["expr"] == "jobsQueueName"
    for module in ("api", "storage"):
        assert main["modules"][module]["config"]["params"]["jobsQueueName"] == "jobsQueueName"
    storage = (INFRA / "app" / "storage.bicep").read_text(encoding="utf-8")
    assert "name: jobsQueueName\n" in storage
    assert "name: '${jobsQueueName}-poison'\n" in storage


def test_model_defaults_are_current_and_profile_matches(infra_report: dict[str, Any]) -> None:
    params = infra_report["parsed"]["main.bicep"]["parameters"]
    model = params["chatModelName"]["default"]
    version = params["chatModelVersion"]["default"]
    profile = params["modelProfile"]["default"]
    retired = {("gpt-4o-mini", "2024-07-18"), ("gpt-4.1-mini", "2025-04-14")}
    assert (model, version) not in retired and model != "gpt-4.1-mini"
    reasoning = model.startswith(("gpt-5", "o1", "o3", "o4"))
    assert profile == ("reasoning" if reasoning else "chat")
    assert profile in by_name()["MODEL_PROFILE"].choices


def test_model_profile_parameter_allows_exactly_the_manifest_choices(
    infra_report: dict[str, Any],
) -> None:
    for rel in ("main.bicep", "app/api.bicep"):
        decorators = infra_report["parsed"][rel]["parameters"]["modelProfile"]["decorators"]
        allowed = [d["argument"] for d in decorators if d["type"] == "allowed"]
        assert allowed and set(allowed[0]) == set(by_name()["MODEL_PROFILE"].choices), rel
