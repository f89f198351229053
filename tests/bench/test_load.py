"""bench.load pieces: the figures' arithmetic, the docs writer, the job tracker, and the
many-connection subscriber against the real SignalR emulator."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from bench._jobs import JobRecord, Tracker, make_prompt
from bench._loadstats import (
    added_delays,
    cpu_percent,
    emission_times,
    percentile,
    rss_summary,
    slope_per_minute,
)
from bench._stackproc import Sample, proc_usage
from bench.clients import SubscriberPool
from bench.load import write_sections
from local.openai_emulator import expected_answer
from local.signalr_emulator import EmulatorThread, run_in_thread
from tests.emulators.signalr.helpers import Rest, negotiate_app, serve_in_thread


def test_percentile_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile([3.0], 95) == 3.0
    assert math.isnan(percentile([], 50))


def test_emission_times_spread_each_write_over_its_deltas() -> None:
    marks = [[10.0, 2], [10.5, 3], [11.0, 6]]
    assert emission_times(marks, 6) == [10.0, 10.0, 10.5, 11.0, 11.0, 11.0]
    assert emission_times(marks, 4) == [10.0, 10.0, 10.5, 11.0]


def test_added_delay_is_arrival_of_the_batch_holding_a_deltas_last_char() -> None:
    tokens = ["ab", "cd", "e", "fgh"]
    emitted = [1.0, 1.1, 1.2, 1.3]
    # Batches split mid-token: "abc" at 2.0, "de" at 2.5, "fgh" at 3.0.
    arrivals = [(2.0, "abc"), (2.5, "de"), (3.0, "fgh")]
    delays = added_delays(tokens, emitted, arrivals)
    assert [round(d, 6) for d in delays] == [1.0, 1.4, 1.3, 1.7]
    # A delta never received live (a gap) is left out, not counted as zero.
    assert len(added_delays(tokens, emitted, arrivals[:1])) == 1


def test_cpu_percent_and_rss_slope() -> None:
    a = Sample(0.0, {"host": (1.0, 100.0)})
    b = Sample(30.0, {"host": (16.0, 110.0)})
    c = Sample(60.0, {"host": (31.0, 120.0)})
    assert cpu_percent(a, c) == {"host": 50.0}
    summary = rss_summary([a, b, c])["host"]
    assert summary == {"start": 100.0, "end": 120.0, "max": 120.0, "slope": 20.0}
    assert slope_per_minute([(0.0, 5.0)]) == 0.0


def test_proc_usage_reads_this_process() -> None:
    cpu, rss = proc_usage(__import__("os").getpid(), {})
    assert cpu > 0 and 10 < rss < 4000


def test_write_sections_replaces_only_its_own_sections(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## Pipeline latency\n\nsomeone else's text\n")
    write_sections(path, {"Load": "table one", "Soak": "soak one"}, "_hdr_")
    write_sections(path, {"Load": "table two"}, "_hdr2_")
    text = path.read_text()
    assert "someone else's text" in text and text.count("## Load") == 1
    assert "table two" in text and "table one" not in text and "soak one" in text
    assert text.index("## Pipeline latency") < text.index("## Load") < text.index("## Soak")


def test_tracker_keeps_messages_that_arrive_before_the_post_answer() -> None:
    tracker = Tracker()
    job = JobRecord("u1", make_prompt("t", 20, 50, 0.3, 300))
    tracker.on_message("u1", 1.0, "delta", {"jobId": "j1", "seq": 1, "attempt": 1, "text": "a"})
    job.job_id = "j1"
    tracker.attach(job)
    tracker.on_message("u1", 2.0, "delta", {"jobId": "j1", "seq": 2, "attempt": 1, "text": "b"})
    tracker.on_message("u1", 2.5, "delta", {"jobId": "j1", "seq": 4, "attempt": 1, "text": "d"})
    tracker.on_message(
        "u1", 3.0, "status", {"jobId": "j1", "status": "completed", "attempt": 1, "lastSeq": 4}
    )
    assert job.done.is_set() and job.final_at == 3.0
    assert job.live() == [(1.0, "a"), (2.0, "b")]  # stops at the gap (seq 3)
    job.text = expected_answer([{"role": "user", "content": job.prompt}])
    assert job.exact and len(job.tokens) == 20


async def test_subscriber_pool_receives_user_sends_from_the_real_emulator() -> None:
    received: list[tuple[str, float, str, dict[str, Any]]] = []
    three = asyncio.Event()

    def on_message(user: str, t: float, target: str, arg: dict[str, Any]) -> None:
        received.append((user, t, target, arg))
        if len(received) == 3:
            three.set()

    emu: EmulatorThread
    with run_in_thread(port=0) as emu, serve_in_thread(negotiate_app(emu)) as app:
        rest = Rest(emu)
        async with SubscriberPool(app, on_message, parallel=5) as pool:
            users = [f"user-{i}" for i in range(12)]
            await pool.open(users)
            assert len(pool.subscribers) == 12
            assert all(s.connection_id for s in pool.subscribers.values())
            sent = time.time()
            for user in users[:3]:
                await asyncio.to_thread(rest.send, f"/users/{user}", "delta", {"jobId": user})
            await asyncio.wait_for(three.wait(), 10)
        stats = emu.stats()
    assert sorted(r[0] for r in received) == ["user-0", "user-1", "user-2"]
    assert all(r[2] == "delta" and r[3] == {"jobId": r[0]} and r[1] >= sent for r in received)
    assert stats["connections"]["peak"] == 12


def _fig(jobs: int, exact: int, wall_s: float, delays: list[float], cpu: float) -> Any:
    from bench.load import Figures

    fig = Figures(jobs, finished=exact, exact=exact, wall_s=wall_s, delays=delays)
    fig.starts = [0.5, 9.0]
    fig.cpu = {"host": cpu, "azurite": 30.0, "harness": 99.0}
    return fig


def test_shortfalls_name_each_reason_a_level_did_not_keep_up() -> None:
    from bench.load import Pacing, keeps_up, shortfalls

    pacing = Pacing()  # ideal 4.3 s: the wall limit is 13.6 s
    good = _fig(10, 10, 5.0, [0.1] * 100, 40.0)
    assert shortfalls(good, pacing) == [] and keeps_up(good, pacing)
    bad = _fig(200, 190, 40.0, [0.1] * 90 + [2.0] * 10, 40.0)
    reasons = shortfalls(bad, pacing)
    assert reasons == ["10 of 200 not exact or unfinished", "p99 2000 ms", "wall 40 s > 14 s"]
    assert not keeps_up(bad, pacing)
    no_deltas = _fig(5, 5, 5.0, [], 40.0)  # nothing measured is not "kept up"
    assert shortfalls(no_deltas, pacing) == ["no added delay measured"]


def test_load_table_says_where_it_stops_and_why() -> None:
    from bench.load import Pacing, load_table

    pacing = Pacing()
    levels = [_fig(10, 10, 5.0, [0.1] * 50, 30.0), _fig(100, 100, 20.0, [0.2] * 50, 45.0)]
    text = load_table(levels, pacing, slots=64)
    assert "| 10 | 10/10 |" in text and "| yes |" in text
    assert "| wall 20 s > 14 s |" in text
    assert "Stops keeping up at **100 concurrent jobs** (wall 20 s > 14 s)" in text
    assert "**host** at 45%" in text  # the harness is never named the bottleneck
    assert "at most 64 streams at once" in text and "start p95 9000 ms" in text
    saturated = [_fig(100, 100, 20.0, [0.2] * 50, 97.0)]
    assert "at most 64 streams" not in load_table(saturated, pacing, slots=64)


def test_set_option_parses_app_settings() -> None:
    import argparse

    import pytest

    from bench.load import _setting

    assert _setting("A__b=256") == ("A__b", "256")
    assert _setting("X==y") == ("X", "=y")
    with pytest.raises(argparse.ArgumentTypeError):
        _setting("novalue")


def test_soak_table_shows_the_second_half_slope_beside_the_whole_run() -> None:
    from bench.load import Figures, soak_table

    fig = Figures(10, finished=10, exact=10, wall_s=600.0)
    fig.rss = {"host": {"start": 110, "end": 150, "max": 150, "slope": 4.0}}
    fig.rss_late = {"host": {"start": 148, "end": 150, "max": 150, "slope": 0.2}}
    row = next(line for line in soak_table(fig, 5, 600).splitlines() if line.startswith("| host"))
    assert row.split("|")[-3:-1] == [" +4.0 ", " +0.2 "]
