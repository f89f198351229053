"""host.json: the parts this host honours, with the real host's defaults.

- `extensions.http`: `routePrefix` (default "api"), `maxOutstandingRequests` and
  `maxConcurrentRequests` (default unbounded; over the limit: 429, as the host's throttle).
- `extensions.queues`: `batchSize` (16, at most 32), `newBatchThreshold` (batchSize/2),
  `maxPollingInterval` (1 minute), `visibilityTimeout` (0), `maxDequeueCount` (5),
  `messageEncoding` ("base64" or "none").
- `functionTimeout` (default 30 minutes, as Flex Consumption); a timed-out invocation fails.
Durations are TimeSpan strings ("00:00:02") or, as host.json v1 allowed, milliseconds.

As the real host, an app setting `AzureFunctionsJobHost__<path>` (segments joined by `__`,
matched case-insensitively) overrides that host.json value, e.g.
`AzureFunctionsJobHost__extensions__durableTask__hubName`. Tests use it to give each local
stack sharing one Azurite its own task hub (one engine per task hub: two hosts on one hub
would take each other's orchestration work).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ncrontab import parse_timespan

__all__ = ["HostConfig", "HostConfigError", "HttpOptions", "QueueOptions", "load_host_json"]


class HostConfigError(ValueError):
    """host.json is invalid (names the file and the setting)."""


@dataclass(frozen=True)
class HttpOptions:
    route_prefix: str = "api"
    max_outstanding_requests: int = -1
    max_concurrent_requests: int = -1


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    raw: dict[str, Any]
    http: HttpOptions
    queues: QueueOptions
    function_timeout: float | None  # seconds; None: unbounded ("-1")


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise HostConfigError(f"host.json {name}: expected a TimeSpan, got {value!r}")
    if isinstance(value, int | float):
        return float(value) / 1000.0
    if isinstance(value, str):
        span = parse_timespan(value)
        if span is not None:
            return span.total_seconds()
    raise HostConfigError(f"host.json {name}: expected a TimeSpan like '00:00:02', got {value!r}")


def _int(section: dict[str, Any], key: str, default: int, name: str, lo: int, hi: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise HostConfigError(f"host.json {name}.{key}: expected an integer {lo}..{hi}")
    return value


OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


def _override_value(text: str) -> Any:
    """App settings are strings; host.json's numbers and booleans are typed."""
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def apply_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """`raw` with every `AzureFunctionsJobHost__a__b` setting applied (a copy)."""
    out: dict[str, Any] = json.loads(json.dumps(raw))
    for name in sorted(environ):
        if not name.startswith(OVERRIDE_PREFIX) or len(name) == len(OVERRIDE_PREFIX):
            continue
        path = name[len(OVERRIDE_PREFIX) :].split("__")
        if any(not part for part in path):
            raise HostConfigError(f"app setting {name}: empty path segment")
        node = out
        for part in path[:-1]:
            key = next((k for k in node if k.lower() == part.lower()), part)
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        last = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
        node[last] = _override_value(environ[name])
    return out


def load_host_json(app_dir: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
    path = app_dir / "host.json"
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError as exc:
            raise HostConfigError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(loaded, dict):
            raise HostConfigError(f"{path}: expected a JSON object")
        raw = loaded
    if environ is not None:
        raw = apply_overrides(raw, environ)
    extensions = raw.get("extensions") or {}
    http_raw = extensions.get("http") or {}
    queues_raw = extensions.get("queues") or {}
    prefix = http_raw.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise HostConfigError("host.json extensions.http.routePrefix: expected a string")
    http = HttpOptions(
        route_prefix=prefix.strip("/"),
        max_outstanding_requests=_int(
            http_raw, "maxOutstandingRequests", -1, "extensions.http", -1, 2**31
        ),
        max_concurrent_requests=_int(
            http_raw, "maxConcurrentRequests", -1, "extensions.http", -1, 2**31
        ),
    )
    batch = _int(queues_raw, "batchSize", 16, "extensions.queues", 1, 32)
    encoding = str(queues_raw.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise HostConfigError("host.json extensions.queues.messageEncoding: 'base64' or 'none'")
    queues = QueueOptions(
        batch_size=batch,
        new_batch_threshold=_int(
            queues_raw, "newBatchThreshold", batch // 2, "extensions.queues", 0, 10_000
        ),
        max_polling_interval=_seconds(
            queues_raw.get("maxPollingInterval", "00:01:00"),
            "extensions.queues.maxPollingInterval",
        ),
        visibility_timeout=_seconds(
            queues_raw.get("visibilityTimeout", "00:00:00"), "extensions.queues.visibilityTimeout"
        ),
        max_dequeue_count=_int(queues_raw, "maxDequeueCount", 5, "extensions.queues", 1, 10_000),
        message_encoding=encoding,
    )
    if queues.max_polling_interval < 0.1:
        raise HostConfigError("host.json extensions.queues.maxPollingInterval: at least 100 ms")
    timeout_raw = raw.get("functionTimeout", "00:30:00")
    timeout = None if str(timeout_raw).strip() == "-1" else _seconds(timeout_raw, "functionTimeout")
    return HostConfig(raw, http, queues, timeout)
