"""The retry decision, as plain functions of the failure and the attempt (no I/O, no clock),
so the orchestrator stays deterministic and the policy is unit-tested on its own."""

from __future__ import annotations

from typing import Any

__all__ = ["BACKOFF_BASE_S", "BACKOFF_CAP_S", "retry_delay"]

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 60.0
_RETRY_AFTER_CAP_S = 300.0


def retry_delay(details: dict[str, Any], attempt: int, max_attempts: int) -> float | None:
    """Seconds to wait before the next attempt, or None when a retry cannot help.

    A retry helps only for retryable failures (rate limits, outages, timeouts) and only
    while attempts remain. The service's retry-after wins over our backoff when longer.
    Backoff is exponential without jitter: it must be a pure function of the history.
    """
    if not details.get("retryable") or attempt >= max_attempts:
        return None
    backoff = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    hinted = details.get("retryAfter")
    if isinstance(hinted, int | float) and hinted > 0:
        return float(min(_RETRY_AFTER_CAP_S, max(backoff, hinted)))
    return backoff
