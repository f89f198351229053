"""local/host/profiler.py: folded stacks of one thread, `<idle>` for a waiting loop."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

from local.host.profiler import Profiler, fold, start_from_env


def _busy_marker(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def test_fold_lists_frames_outermost_first() -> None:
    def inner() -> str:
        return fold(sys._getframe())

    folded = inner().split(";")
    assert folded[-1].endswith(":inner")
    assert folded[-2].endswith(":test_fold_lists_frames_outermost_first")


def test_samples_a_thread_and_writes_folded_counts(tmp_path: Path) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=_busy_marker, args=(stop,))
    worker.start()
    try:
        prof = Profiler(tmp_path / "p.folded", hz=1000, thread_id=worker.ident)
        for _ in range(20):
            prof.sample()
    finally:
        stop.set()
        worker.join()
    prof.dump()
    lines = (tmp_path / "p.folded").read_text().splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == 20
    assert all("_busy_marker" in line for line in lines)


def test_a_waiting_event_loop_counts_as_idle(tmp_path: Path) -> None:
    ready, done = threading.Event(), threading.Event()

    def loop_thread() -> None:
        async def wait() -> None:
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)

        asyncio.run(wait())

    worker = threading.Thread(target=loop_thread)
    worker.start()
    ready.wait(10)
    prof = Profiler(tmp_path / "p.folded", thread_id=worker.ident)
    try:
        for _ in range(50):
            prof.sample()
            if prof.counts["<idle>"]:
                break
            threading.Event().wait(0.01)
    finally:
        done.set()
        worker.join()
    assert prof.counts["<idle>"] >= 1


def test_off_unless_the_env_var_is_set(monkeypatch: object) -> None:
    import pytest

    mp = monkeypatch
    assert isinstance(mp, pytest.MonkeyPatch)
    mp.delenv("LOCAL_HOST_PROFILE", raising=False)
    assert start_from_env() is None
