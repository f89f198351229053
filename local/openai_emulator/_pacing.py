"""When each delta of a stream is due: time to first token, rate, jitter and bursts.

Pure: `schedule()` returns offsets in seconds from the start of the response, drawn
from a RNG seeded by the request, so a request's timing is reproducible too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from ._control import Control

__all__ = ["Pacing", "effective_pacing", "schedule"]


@dataclass(frozen=True)
class Pacing:
    """Stream pacing. `ttft_ms=None` takes the deployment profile's time to first token."""

    ttft_ms: float | None = None
    rate: float = 60.0  # content deltas per second
    jitter: float = 0.2  # each gap varies uniformly by +/- this fraction
    burst: int = 1  # deltas held back and released together (content filter buffering)
    tokens: int = 200  # answer length when the request sets no limit


def effective_pacing(base: Pacing, profile_ttft_ms: float, control: Control) -> Pacing:
    """The server's pacing with the profile's ttft and the request's overrides applied."""
    pacing = base if base.ttft_ms is not None else replace(base, ttft_ms=profile_ttft_ms)
    overrides = {
        key: getattr(control, key)
        for key in ("ttft_ms", "rate", "jitter", "burst", "tokens")
        if getattr(control, key) is not None
    }
    return replace(pacing, **overrides)


def schedule(count: int, pacing: Pacing, seed: int) -> list[float]:
    """Due times (seconds from the response start) of `count` content deltas.

    Non-decreasing. With `burst=N` every group of N deltas shares the due time of its
    last member: nothing for a while, then N at once, as Azure's default content
    filter delivers buffered text.
    """
    rng = random.Random(seed ^ 0x5EED)
    gap = 1.0 / pacing.rate
    due = (pacing.ttft_ms or 0.0) / 1000.0
    times: list[float] = []
    for i in range(count):
        if i:
            due += gap * (1.0 + rng.uniform(-pacing.jitter, pacing.jitter))
        times.append(due)
    if pacing.burst > 1:
        for start in range(0, count, pacing.burst):
            group = times[start : start + pacing.burst]
            times[start : start + pacing.burst] = [group[-1]] * len(group)
    return times
