"""local.settings.json, read as `func start` reads it.

`Values` become app settings (environment variables of the worker); a variable already set in
the environment wins over the file, as with Core Tools. `Host` holds `LocalHttpPort`, `CORS`
and `CORSCredentials`; `ConnectionStrings` is accepted and ignored (Python apps read `Values`).
If `local.settings.json` is absent, `local.settings.json.example` is used instead: a project
convenience so a fresh clone runs (Core Tools itself knows only the first file).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LocalSettings",
    "LocalSettingsError",
    "apply_to_environ",
    "dev_storage_connection_string",
    "effective_values",
    "load_local_settings",
    "masked",
]

FILE_NAMES = ("local.settings.json", "local.settings.json.example")

# Azurite's well-known development account (public, documented; not a secret).
_DEV_ACCOUNT = "devstoreaccount1"
_DEV_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class LocalSettingsError(ValueError):
    """The settings file exists but cannot be used (names the file and the problem)."""


@dataclass(frozen=True)
class LocalSettings:
    path: Path | None  # None: no file found
    values: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)

    @property
    def cors(self) -> list[str] | None:
        """Allowed origins from `Host.CORS` (comma-separated), or None when not set."""
        raw = self.host.get("CORS")
        if raw is None:
            return None
        return [o.strip().rstrip("/") for o in str(raw).split(",") if o.strip()]

    @property
    def cors_credentials(self) -> bool:
        return str(self.host.get("CORSCredentials", "false")).lower() == "true"

    @property
    def local_http_port(self) -> int | None:
        port = self.host.get("LocalHttpPort")
        return int(port) if isinstance(port, int | str) and str(port).isdigit() else None


def _as_setting(name: str, value: Any, path: Path) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise LocalSettingsError(
        f"{path.name}: Values.{name} must be a string, got {type(value).__name__}"
    )


def load_local_settings(app_dir: Path) -> LocalSettings:
    """Read the first settings file that exists in `app_dir`; empty settings if none does."""
    for name in FILE_NAMES:
        path = app_dir / name
        if path.is_file():
            break
    else:
        return LocalSettings(None)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise LocalSettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise LocalSettingsError(f"{path}: expected a JSON object")
    if data.get("IsEncrypted") is True:
        raise LocalSettingsError(
            f"{path}: IsEncrypted is true; this host cannot decrypt it "
            "(run `func settings decrypt` or write the values in clear)"
        )
    values = data.get("Values") or {}
    host = data.get("Host") or {}
    if not isinstance(values, dict) or not isinstance(host, dict):
        raise LocalSettingsError(f"{path}: Values and Host must be JSON objects")
    return LocalSettings(
        path, {str(k): _as_setting(str(k), v, path) for k, v in values.items()}, dict(host)
    )


def effective_values(local: LocalSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """The app settings the worker sees: file values, each overridden by the environment."""
    return {name: environ.get(name, value) for name, value in local.values.items()}


def apply_to_environ(local: LocalSettings, environ: MutableMapping[str, str] | None = None) -> None:
    """Put file values into the environment where the environment does not already set them."""
    env = os.environ if environ is None else environ
    for name, value in local.values.items():
        env.setdefault(name, value)


def dev_storage_connection_string(
    value: str, ports: tuple[int, int, int] = (10000, 10001, 10002), host: str = "127.0.0.1"
) -> str:
    """Expand `UseDevelopmentStorage=true` into an explicit Azurite connection string."""
    parts = dict(p.split("=", 1) for p in value.strip().strip(";").split(";") if "=" in p)
    if parts.get("UseDevelopmentStorage", "").lower() != "true":
        return value
    proxy = parts.get("DevelopmentStorageProxyUri")
    base = proxy.rstrip("/").rsplit(":", 1)[0] if proxy else f"http://{host}"
    blob, queue, table = ports
    return (
        f"DefaultEndpointsProtocol=http;AccountName={_DEV_ACCOUNT};AccountKey={_DEV_KEY};"
        f"BlobEndpoint={base}:{blob}/{_DEV_ACCOUNT};QueueEndpoint={base}:{queue}/{_DEV_ACCOUNT};"
        f"TableEndpoint={base}:{table}/{_DEV_ACCOUNT};"
    )


_SECRET_NAME = re.compile(r"(key|secret|password|token)$|connectionstring", re.IGNORECASE)
_SECRET_PART = re.compile(
    r"(AccountKey|AccessKey|SharedAccessSignature|sig|password)=([^;&]+)", re.I
)


def masked(name: str, value: str) -> str:
    """`value` with its secret parts hidden, for printing settings in use."""
    if _SECRET_PART.search(value):
        return _SECRET_PART.sub(lambda m: f"{m.group(1)}=***", value)
    if _SECRET_NAME.search(name) and value and "UseDevelopmentStorage" not in value:
        if value.startswith(("http://", "https://")):
            return value
        return "***"
    return value
