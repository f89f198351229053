"""A dev-only heap-growth tracer for the local host, off unless `LOCAL_HOST_TRACEMALLOC` is set.

`LOCAL_HOST_TRACEMALLOC=/tmp/host.mem python -m local.host ...` starts `tracemalloc` (keeping
`LOCAL_HOST_TRACEMALLOC_FRAMES` frames, default 10) and a daemon thread that every
`LOCAL_HOST_TRACEMALLOC_EVERY` seconds (default 60) takes a snapshot and rewrites the file
with: the traced total at every snapshot so far (a leak grows it steadily; a warming heap
levels off), and the top growth since the *baseline* snapshot grouped by traceback (as
`Snapshot.compare_to(baseline, "traceback")`, from grouped statistics) and by line. The
baseline is the first snapshot, taken one period after start, so import-time and start-up
allocations are not counted as growth. Bench passes it as an app setting, which the host
gets as its env: `python -m bench.load --set LOCAL_HOST_TRACEMALLOC=/tmp/host.mem ...`.

Costs: tracemalloc slows allocation (tens of per cent) and each snapshot holds the GIL for
seconds (Python code over every live block, competing for the GIL with the loop), so run
it at a load the host keeps up with (e.g. `--soak-workers 10`), and take no latency or RSS
figures from such a run: RSS includes tracemalloc's own per-block records.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import tracemalloc
from pathlib import Path

__all__ = ["Groups", "MemTracer", "diff", "group", "report", "start_from_env"]

# tracemalloc's own bookkeeping and this module's snapshots are not the app's growth.
_FILTERS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
)


Groups = dict[str, dict[tracemalloc.Traceback, tuple[int, int]]]


def group(snapshot: tracemalloc.Snapshot) -> Groups:
    """Size and block count per line and per traceback: all a later diff needs. Only these
    are kept, not the snapshot (a snapshot is a Python tuple per live block: hundreds of MB
    held for the whole run on a busy host)."""
    return {
        key: {s.traceback: (s.size, s.count) for s in snapshot.statistics(key)}
        for key in ("lineno", "traceback")
    }


def diff(baseline: Groups, current: Groups, key: str) -> list[tracemalloc.StatisticDiff]:
    """`Snapshot.compare_to(baseline, key)`, from grouped statistics; biggest change first."""
    old, new = baseline[key], current[key]
    out = []
    for tb in old.keys() | new.keys():
        size, count = new.get(tb, (0, 0))
        size0, count0 = old.get(tb, (0, 0))
        out.append(tracemalloc.StatisticDiff(tb, size, size - size0, count, count - count0))
    out.sort(key=lambda d: (abs(d.size_diff), d.size), reverse=True)
    return out


def report(
    baseline: Groups, current: Groups, totals: list[tuple[float, int]], top: int = 25
) -> str:
    """The text written to the file: totals over time, then the top growth since baseline."""
    lines = ["# traced total per snapshot: seconds since start, MB"]
    lines += [f"{t:8.0f} s {size / 1e6:9.2f} MB" for t, size in totals]
    lines.append(f"\n# top {top} growth since baseline, by line (size_diff, count_diff, now)")
    for stat in diff(baseline, current, "lineno")[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size_diff / 1e3:+10.1f} kB {stat.count_diff:+8d} blocks "
            f"{stat.size / 1e3:10.1f} kB  {frame.filename}:{frame.lineno}"
        )
    lines.append(f"\n# top {top} growth since baseline, by traceback (innermost last)")
    for stat in diff(baseline, current, "traceback")[:top]:
        lines.append(
            f"\n{stat.size_diff / 1e3:+10.1f} kB {stat.count_diff:+8d} blocks "
            f"(now {stat.size / 1e3:.1f} kB in {stat.count} blocks)"
        )
        lines += [f"    {f.filename}:{f.lineno}" for f in stat.traceback]
    return "\n".join(lines) + "\n"


class MemTracer:
    """Snapshots the traced heap every `every` seconds; rewrites `out` after each one."""

    def __init__(self, out: Path, every: float = 60.0, frames: int = 10) -> None:
        self.out = out
        self.every = every
        self.frames = frames
        self.started = time.monotonic()
        self.baseline: Groups | None = None
        self.totals: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="host-memtrace", daemon=True)

    def start(self) -> MemTracer:
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.frames)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def snapshot(self) -> None:
        with self._lock:  # the loop thread and atexit may both get here
            snap = group(tracemalloc.take_snapshot().filter_traces(_FILTERS))
            self.totals.append(
                (time.monotonic() - self.started, tracemalloc.get_traced_memory()[0])
            )
            if self.baseline is None:
                self.baseline = snap
            text = report(self.baseline, snap, self.totals)
            tmp = self.out.with_suffix(self.out.suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.out)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.snapshot()

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(5)
            if tracemalloc.is_tracing():
                self.snapshot()


def start_from_env() -> MemTracer | None:
    path = os.environ.get("LOCAL_HOST_TRACEMALLOC")
    if not path:
        return None
    every = float(os.environ.get("LOCAL_HOST_TRACEMALLOC_EVERY") or 60)
    frames = int(os.environ.get("LOCAL_HOST_TRACEMALLOC_FRAMES") or 10)
    return MemTracer(Path(path), every, frames).start()
