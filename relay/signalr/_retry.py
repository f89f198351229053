"""Retry policy for SignalR REST calls: which answers are transient and how long to wait.

No I/O here: the client passes in a random source and asks for the delay before attempt n.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetryPolicy", "is_transient_status", "parse_retry_after"]


def is_transient_status(status: int) -> bool:
    """429 and 5xx may succeed later; other statuses will not."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter; Retry-After wins, capped at `cap_s`."""

    max_retries: int = 3
    base_s: float = 0.2
    cap_s: float = 2.0

    def delay(self, retry: int, rng: Callable[[], float], retry_after: float | None) -> float:
        """Delay before retry number `retry` (0 for the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.cap_s)
        ceiling = min(self.cap_s, self.base_s * (2.0**retry))
        return rng() * ceiling
