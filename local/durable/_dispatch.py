"""The engine's dispatch helpers: queue polling backoff and the client API's control queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ._store import Message

__all__ = ["LocalControl", "Poller"]

_MIN_POLL_S = 0.05


class Poller:
    """Backoff from 50 ms up to maxQueuePollingInterval when idle; `wake()` cuts a wait short."""

    def __init__(self, max_interval: float) -> None:
        self.max_interval = max_interval
        self.interval = _MIN_POLL_S
        self.event = asyncio.Event()

    def wake(self) -> None:
        self.interval = _MIN_POLL_S
        self.event.set()

    def busy(self) -> None:
        self.interval = _MIN_POLL_S

    async def idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), self.interval)
        self.event.clear()
        self.interval = min(self.interval * 2, self.max_interval)


class LocalControl:
    """The client API's control queue (`_rpc.ControlQueue`) on the engine's local dispatch.

    `lease` sends a message invisible to every poller; `hand_over` runs it in this process,
    or, when the process is stopping, releases it (visible at once) for the next one.
    """

    def __init__(
        self,
        *,
        enqueue: Callable[[dict[str, Any]], Awaitable[None]],
        lease: Callable[[dict[str, Any]], Awaitable[Message]],
        deliver: Callable[[list[Message]], None],
        release: Callable[[Message], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._enqueue = enqueue
        self._lease = lease
        self._deliver = deliver
        self._release = release
        self._stopping = stopping

    async def enqueue(self, body: dict[str, Any]) -> None:
        await self._enqueue(body)

    def can_lease(self) -> bool:
        return not self._stopping()

    async def lease(self, body: dict[str, Any]) -> Message:
        return await self._lease(body)

    def hand_over(self, message: Message) -> None:
        if self._stopping():
            self._release(message)
        else:
            self._deliver([message])
