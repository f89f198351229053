"""Settings, parsed once from the environment into a frozen dataclass.

The table of every setting is `relay._manifest.MANIFEST`; this module turns an
environment mapping into `Settings`, collecting every problem before it raises one
`SettingsError` that names each missing or invalid setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ._manifest import MANIFEST, Setting
from .errors import SettingsError

__all__ = ["Settings", "StorageConfig", "load_settings"]

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass(frozen=True)
class StorageConfig:
    """Either a connection string, or service URIs used with a token credential."""

    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    client_id: str | None = None  # user-assigned identity; None: default credential chain

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True)
class Settings:
    storage: StorageConfig
    signalr_connection_string: str
    openai_endpoint: str
    openai_api_key: str | None
    openai_deployment: str
    openai_api_version: str
    model_profile: Literal["chat", "reasoning"]
    signalr_hub: str
    auth_mode: Literal["platform", "dev"]
    jobs_queue: str
    table_prefix: str
    batch_window_ms: int
    batch_max_bytes: int
    prompt_max_chars: int
    system_max_chars: int
    messages_max: int
    max_tokens_limit: int
    user_max_concurrent_jobs: int
    user_jobs_per_minute: int
    global_max_concurrent_jobs: int
    job_max_attempts: int
    job_timeout_seconds: int
    client_token_minutes: int
    retention_days: int
    llm_stall_timeout_seconds: int = 30
    azure_client_id: str | None = None
    in_azure: bool = False
    platform_auth_enabled: bool = False
    appinsights_connection_string: str | None = None

    @property
    def batch_window_s(self) -> float:
        return self.batch_window_ms / 1000.0


def _parse_one(s: Setting, raw: str | None, problems: list[str]) -> object:
    if raw is None or raw == "":
        if s.default is not None:
            raw = s.default
        elif s.optional:
            return None
        else:
            problems.append(f"{s.name} is missing ({s.meaning.split('.')[0]})")
            return None
    raw = raw.strip()
    if s.kind == "int":
        try:
            value: object = int(raw)
        except ValueError:
            problems.append(f"{s.name} must be an integer, got {raw!r}")
            return None
    elif s.kind == "float":
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{s.name} must be a number, got {raw!r}")
            return None
    elif s.kind == "bool":
        if raw.lower() not in _TRUE | _FALSE:
            problems.append(f"{s.name} must be true or false, got {raw!r}")
            return None
        value = raw.lower() in _TRUE
    elif s.kind == "enum":
        if raw not in s.choices:
            problems.append(f"{s.name} must be one of {', '.join(s.choices)}, got {raw!r}")
            return None
        value = raw
    elif s.kind == "url":
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"{s.name} must be an http(s) URL")
            return None
        value = raw.rstrip("/")
    else:
        value = raw
    if isinstance(value, int | float) and not isinstance(value, bool):
        if s.minimum is not None and value < s.minimum:
            problems.append(f"{s.name} must be at least {s.minimum:g}, got {value}")
        if s.maximum is not None and value > s.maximum:
            problems.append(f"{s.name} must be at most {s.maximum:g}, got {value}")
    return value


def _storage(values: dict[str, object], problems: list[str]) -> StorageConfig:
    conn = values.get("AzureWebJobsStorage")
    if isinstance(conn, str) and conn:
        return StorageConfig(connection_string=conn)
    uris = {
        key: values.get(f"AzureWebJobsStorage__{key}ServiceUri")
        for key in ("blob", "queue", "table")
    }
    if uris["queue"] and uris["table"]:
        client_id = values.get("AzureWebJobsStorage__clientId")
        return StorageConfig(
            blob_uri=str(uris["blob"]) if uris["blob"] else None,
            queue_uri=str(uris["queue"]),
            table_uri=str(uris["table"]),
            client_id=str(client_id) if client_id else None,
        )
    problems.append(
        "AzureWebJobsStorage is missing: set a connection string, or the identity-based "
        "AzureWebJobsStorage__queueServiceUri and AzureWebJobsStorage__tableServiceUri"
    )
    return StorageConfig()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse `env` (default: `os.environ`) against the manifest; raise on any problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values = {s.name: _parse_one(s, env.get(s.name), problems) for s in MANIFEST}
    storage = _storage(values, problems)
    in_azure = bool(values.get("WEBSITE_INSTANCE_ID"))
    if values.get("AUTH_MODE") == "dev" and in_azure:
        problems.append("AUTH_MODE=dev is refused: this app is running in Azure")
    prefix = values.get("TABLE_PREFIX")
    if isinstance(prefix, str) and not (prefix.isalnum() and prefix.isascii()):
        problems.append("TABLE_PREFIX must be ASCII letters and digits")
    if problems:
        raise SettingsError(problems)

    def text(name: str) -> str:
        return str(values[name])

    def num(name: str) -> int:
        value = values[name]
        assert isinstance(value, int)
        return value

    key = values.get("AZURE_OPENAI_API_KEY")
    client_id = values.get("AZURE_CLIENT_ID")
    appinsights = values.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    return Settings(
        storage=storage,
        signalr_connection_string=text("AzureSignalRConnectionString"),
        openai_endpoint=text("AZURE_OPENAI_ENDPOINT"),
        openai_api_key=str(key) if key else None,
        openai_deployment=text("AZURE_OPENAI_DEPLOYMENT"),
        openai_api_version=text("AZURE_OPENAI_API_VERSION"),
        model_profile="reasoning" if values["MODEL_PROFILE"] == "reasoning" else "chat",
        signalr_hub=text("SIGNALR_HUB"),
        auth_mode="dev" if values["AUTH_MODE"] == "dev" else "platform",
        jobs_queue=text("JOBS_QUEUE"),
        table_prefix=text("TABLE_PREFIX"),
        batch_window_ms=num("BATCH_WINDOW_MS"),
        batch_max_bytes=num("BATCH_MAX_BYTES"),
        prompt_max_chars=num("PROMPT_MAX_CHARS"),
        system_max_chars=num("SYSTEM_MAX_CHARS"),
        messages_max=num("MESSAGES_MAX"),
        max_tokens_limit=num("MAX_TOKENS_LIMIT"),
        user_max_concurrent_jobs=num("USER_MAX_CONCURRENT_JOBS"),
        user_jobs_per_minute=num("USER_JOBS_PER_MINUTE"),
        global_max_concurrent_jobs=num("GLOBAL_MAX_CONCURRENT_JOBS"),
        job_max_attempts=num("JOB_MAX_ATTEMPTS"),
        job_timeout_seconds=num("JOB_TIMEOUT_SECONDS"),
        client_token_minutes=num("CLIENT_TOKEN_MINUTES"),
        retention_days=num("RETENTION_DAYS"),
        llm_stall_timeout_seconds=num("LLM_STALL_TIMEOUT_SECONDS"),
        azure_client_id=str(client_id) if client_id else None,
        in_azure=in_azure,
        platform_auth_enabled=values.get("WEBSITE_AUTH_ENABLED") is True,
        appinsights_connection_string=str(appinsights) if appinsights else None,
    )
