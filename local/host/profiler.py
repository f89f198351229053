"""A dev-only sampling profiler for the local host, off unless `LOCAL_HOST_PROFILE` is set.

`LOCAL_HOST_PROFILE=/tmp/host.folded python -m local.host ...` starts a daemon thread that
every `LOCAL_HOST_PROFILE_HZ`-th of a second (default 200 Hz) reads the main thread's
stack with `sys._current_frames()` and counts it, folded (`a;b;c N`, the flame-graph input
format). The file is rewritten every 5 s and at exit, so a host stopped by SIGKILL still
leaves the last few seconds' counts. Samples where the loop waits in `select`/`epoll` are
counted as `<idle>`, so the file also says how busy the loop was.

Why in-process and not py-spy: no package may be added to this project, and a sampler that
only reads frames costs a few per cent at 200 Hz (the GIL is taken once per sample).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

__all__ = ["Profiler", "fold", "start_from_env"]


def fold(frame: FrameType | None, root: Path | None = None) -> str:
    """The stack ending at `frame`, outermost first, as `file:function` joined by `;`."""
    names: list[str] = []
    while frame is not None:
        code = frame.f_code
        path = code.co_filename
        if root is not None and path.startswith(str(root)):
            path = path[len(str(root)) + 1 :]
        else:  # site-packages and stdlib: keep the module path only
            marker = path.rfind("site-packages/")
            path = path[marker + 14 :] if marker >= 0 else Path(path).name
        names.append(f"{path}:{code.co_name}")
        frame = frame.f_back
    names.reverse()
    return ";".join(names)


class Profiler:
    """Samples one thread's stack at `hz` into a Counter of folded stacks."""

    def __init__(self, out: Path, hz: float = 200.0, thread_id: int | None = None) -> None:
        self.out = out
        self.period = 1.0 / hz
        self.thread_id = thread_id if thread_id is not None else threading.main_thread().ident
        self.counts: Counter[str] = Counter()
        self.root = Path(__file__).resolve().parents[2]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="host-profiler", daemon=True)

    def start(self) -> Profiler:
        self._thread.start()
        atexit.register(self.stop)
        return self

    def sample(self) -> None:
        frame = sys._current_frames().get(self.thread_id or 0)
        if frame is None:
            return
        stack = "<idle>" if _waiting(frame) else fold(frame, self.root)
        with self._lock:
            self.counts[stack] += 1

    def dump(self) -> None:
        with self._lock:
            lines = [f"{stack} {n}" for stack, n in self.counts.most_common()]
        tmp = self.out.with_suffix(self.out.suffix + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.out)

    def _run(self) -> None:
        next_dump = time.monotonic() + 5
        while not self._stop.wait(self.period):
            self.sample()
            if time.monotonic() >= next_dump:
                self.dump()
                next_dump += 5

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(1)
            self.dump()


def _waiting(frame: FrameType) -> bool:
    # select.epoll.poll is C code: the innermost Python frame is selectors' select().
    back = frame.f_back
    return frame.f_code.co_name == "select" and (back is None or back.f_code.co_name == "_run_once")


def start_from_env() -> Profiler | None:
    path = os.environ.get("LOCAL_HOST_PROFILE")
    if not path:
        return None
    hz = float(os.environ.get("LOCAL_HOST_PROFILE_HZ") or 200)
    return Profiler(Path(path), hz).start()
