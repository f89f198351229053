"""bench.llm_stream: registered as `python -m bench llm`, and its table's arithmetic."""

from __future__ import annotations

from bench.__main__ import BENCHMARKS
from bench.llm_stream import Tally, render, run


def test_registered_as_llm() -> None:
    assert BENCHMARKS["llm"] is run


def test_render_reports_per_delta_cpu_and_ratios() -> None:
    before = Tally("sdk", streams=2, deltas=4000, cpu_s=0.4, wall_s=0.5)
    after = Tally("relay", streams=2, deltas=4000, cpu_s=0.1, wall_s=0.25)
    text = render({"unpaced": [before, after]})
    assert "| unpaced | sdk | 2 | 4000 | 0.40 | 100.0 | 8,000 |" in text
    assert "| unpaced | relay | 2 | 4000 | 0.10 | 25.0 | 16,000 |" in text
    assert "after / before **0.25**, deltas/s 2.00" in text
