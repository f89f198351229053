"""The dev-only heap-growth tracer: off by default, and its report names what grew."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from local.host.memtrace import MemTracer, group, report, start_from_env

_kept: list[bytes] = []


def _grow() -> None:
    _kept.extend(bytes(1000) + bytes([i % 256]) for i in range(2000))  # about 2 MB


def test_off_unless_the_env_var_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_HOST_TRACEMALLOC", raising=False)
    assert start_from_env() is None


def test_report_points_at_the_line_that_grew() -> None:
    was_tracing = tracemalloc.is_tracing()
    tracemalloc.start(5)
    try:
        base = tracemalloc.take_snapshot()
        _grow()
        now = tracemalloc.take_snapshot()
    finally:
        if not was_tracing:
            tracemalloc.stop()
        _kept.clear()
    text = report(group(base), group(now), [(0.0, 1_000_000), (60.0, 3_000_000)], top=5)
    by_line = text.split("by line")[1].split("by traceback")[0]
    first = by_line.splitlines()[1]
    assert "test_memtrace.py" in first, text
    assert float(first.split("kB")[0]) > 1500  # about 2 MB kept
    assert ["60", "s", "3.00", "MB"] in [line.split() for line in text.splitlines()]


def test_tracer_writes_the_file_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "mem.txt"
    was_tracing = tracemalloc.is_tracing()
    tracer = MemTracer(out, every=3600, frames=3)
    tracer.start()
    try:
        tracer.snapshot()  # the baseline
        _grow()
        tracer.stop()  # takes the last snapshot
    finally:
        _kept.clear()
        if not was_tracing:
            tracemalloc.stop()
    text = out.read_text()
    assert len(tracer.totals) == 2
    assert "test_memtrace.py" in text.split("by traceback")[1]
