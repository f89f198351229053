"""An asyncio event loop on virtual time, for unit tests of timing logic with fakes only.

Timers fire in order at their virtual due time, and the clock only moves when the loop has
nothing ready to run: work costs no virtual time, and a `sleep(0.15)` lasts exactly 0.15.
So assertions on timing ("generation was not slowed by a slow store", "cancel is seen
within a window") hold on any machine, loaded or not, and run without real waiting.

Not for tests with sockets, subprocesses or threads: their completions arrive through
the selector in real time, and virtual time would run ahead of them.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["VirtualTimePolicy", "virtual_now"]


class _Clock:
    now = 0.0


class _VirtualSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking; an idle wait for a timer jumps the clock instead."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if not ready and timeout is not None and timeout > 0:
            self._clock.now += timeout  # the next timer is due now
        elif not ready and timeout is None:
            ready = super().select(None)  # no timers: only real I/O can wake the loop
        return ready


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._clock = _Clock()
        super().__init__(_VirtualSelector(self._clock))

    def time(self) -> float:
        return self._clock.now


class VirtualTimePolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _VirtualTimeLoop()


def virtual_now() -> float:
    """The running loop's clock (virtual under `VirtualTimePolicy`)."""
    return asyncio.get_running_loop().time()
