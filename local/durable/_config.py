"""The engine's options: host.json `extensions.durableTask`, with the extension's defaults."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["DurableOptions", "parse_timespan"]

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def parse_timespan(value: Any, setting: str) -> float:
    """Seconds from a .NET TimeSpan string ("00:00:30", "1.00:00:00") or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise ValueError(f"host.json {setting} must be a TimeSpan like 00:00:30, got {value!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class DurableOptions:
    hub_name: str = "TestHubName"  # the extension's default when no site name is set
    max_activities: int = 10 * (os.cpu_count() or 1)
    max_orchestrators: int = 10 * (os.cpu_count() or 1)
    max_polling_interval_s: float = 30.0
    work_item_visibility_s: float = 300.0
    control_visibility_s: float = 300.0

    @classmethod
    def from_host_json(cls, host_json: dict[str, Any]) -> DurableOptions:
        durable = (host_json.get("extensions") or {}).get("durableTask") or {}
        provider = durable.get("storageProvider") or {}
        base = cls()
        hub = str(durable.get("hubName") or base.hub_name)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", hub):
            raise ValueError(
                "host.json extensions.durableTask.hubName must be 3-45 letters and digits, "
                f"starting with a letter; got {hub!r}"
            )

        def positive_int(key: str, default: int) -> int:
            value = durable.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"host.json durableTask.{key} must be a positive integer")
            return value

        def span(key: str, default: float) -> float:
            if key not in provider:
                return default
            seconds = parse_timespan(provider[key], f"durableTask.storageProvider.{key}")
            if seconds <= 0:
                raise ValueError(f"host.json durableTask.storageProvider.{key} must be positive")
            return seconds

        return cls(
            hub_name=hub,
            max_activities=positive_int("maxConcurrentActivityFunctions", base.max_activities),
            max_orchestrators=positive_int(
                "maxConcurrentOrchestratorFunctions", base.max_orchestrators
            ),
            max_polling_interval_s=span("maxQueuePollingInterval", base.max_polling_interval_s),
            work_item_visibility_s=span(
                "workItemQueueVisibilityTimeout", base.work_item_visibility_s
            ),
            control_visibility_s=span("controlQueueVisibilityTimeout", base.control_visibility_s),
        )
