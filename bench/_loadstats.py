"""Pure figures for the load benchmark: per-delta added delay, percentiles, CPU, RSS slope.

No I/O and no clocks: every time is passed in (wall-clock seconds, `time.time()`), so the
arithmetic is testable on its own.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

from ._stackproc import Sample

__all__ = [
    "added_delays",
    "cpu_percent",
    "emission_times",
    "percentile",
    "rss_summary",
    "slope_per_minute",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def emission_times(marks: Sequence[Sequence[float]], n_tokens: int) -> list[float]:
    """When each content delta left the emulator, from its `[time, written so far]` stamps."""
    out: list[float] = []
    for t, count in marks:
        while len(out) < min(int(count), n_tokens):
            out.append(t)
    return out


def added_delays(
    tokens: Sequence[str], emitted: Sequence[float], arrivals: Sequence[tuple[float, str]]
) -> list[float]:
    """Per model delta: the arrival of the batch carrying its last character minus its
    emission. `arrivals` are the final attempt's batches in seq order, `(time, text)`.
    A delta whose text never arrived live (caught up later) is left out."""
    batch_ends: list[int] = []
    batch_times: list[float] = []
    total = 0
    for t, text in arrivals:
        total += len(text)
        batch_ends.append(total)
        batch_times.append(t)
    out: list[float] = []
    end = 0
    for token, sent in zip(tokens, emitted, strict=False):
        end += len(token)
        i = bisect.bisect_left(batch_ends, end)
        if i < len(batch_times):
            out.append(batch_times[i] - sent)
    return out


def cpu_percent(first: Sample, last: Sample) -> dict[str, float]:
    """Per process: CPU time used between two samples, as % of one core."""
    span = max(last.t - first.t, 1e-9)
    return {n: 100 * (last.usage[n][0] - first.usage[n][0]) / span for n in last.usage}


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute; 0 for fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return 0.0
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / var


def rss_summary(samples: Sequence[Sample]) -> Mapping[str, dict[str, float]]:
    """Per process: start, end, max RSS (MB) and the slope (MB/min) over the samples."""
    out: dict[str, dict[str, float]] = {}
    if not samples:
        return out
    t0 = samples[0].t
    for name in samples[0].usage:
        series = [(s.t - t0, s.usage[name][1]) for s in samples]
        out[name] = {
            "start": series[0][1],
            "end": series[-1][1],
            "max": max(v for _, v in series),
            "slope": slope_per_minute(series),
        }
    return out
