"""The engine's dispatch helpers: queue polling backoff, the client API's control queue, and
DTFx's rule for results that arrive before the episode that caused them is persisted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ._replay import EVENT, ShimState
from ._store import Message

__all__ = ["LocalControl", "Poller", "abandon_delay_s", "out_of_order"]

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


# DTFx's Azure Storage provider (src/DurableTask.AzureStorage): OrchestrationSession.
# IsOutOfOrderMessage names the only events that can arrive before the episode that caused
# them is checkpointed (of those the engine supports): results and timer firings.
_ANSWERS = frozenset({EVENT["TaskCompleted"], EVENT["TaskFailed"], EVENT["TimerFired"]})
# ... and gives a message for an instance (execution) with no history this many dequeues
# before treating it as a zombie (purged, or an execution replaced by a newer one).
NONEXISTENT_DEQUEUES = 5
# TaskHubQueue.AbandonMessageAsync: invisible 2^DequeueCount s, at most 10 minutes.
ABANDON_MAX_S = 600


def out_of_order(row: dict[str, Any] | None, message: Message) -> bool:
    """True when `message` answers work its instance's persisted history does not record yet.

    The rule of DTFx's `IsOutOfOrderMessage`: a TaskCompleted, TaskFailed or TimerFired
    whose scheduling event (TaskScheduled / TimerCreated with that id) is not in the history
    is out of order, and is deferred rather than dropped, since the episode that scheduled
    it may still be checkpointing (its sends precede its history write). When the instance
    has no history at all for the message's execution (no row, another execution, or a
    first episode not yet persisted), only its first five dequeues count as out of order;
    after that it is handled in order and dropped as stale. The persisted history's ids are
    the row's shim tasks, written in the same row write as `HistoryLength`.
    """
    body = message.body
    ev = body.get("e")
    if body.get("t") != "event" or not isinstance(ev, dict):
        return False
    kind = ev.get("EventType")
    if kind not in _ANSWERS:
        return False
    x = body.get("x")
    no_history = row is None or row.get("HistoryLength") == 0  # (None: an older row, full)
    if no_history or x not in (None, (row or {}).get("ExecutionId")):
        return _dequeues(message) <= NONEXISTENT_DEQUEUES
    task_id = ev.get("TimerId") if kind == EVENT["TimerFired"] else ev.get("TaskScheduledId")
    assert row is not None
    return task_id not in ShimState.from_json(row.get("Shim")).tasks


def abandon_delay_s(message: Message) -> int:
    """How long an abandoned control message stays invisible (DTFx's exponential backoff)."""
    count = _dequeues(message)
    return ABANDON_MAX_S if count > 30 else min(2**count, ABANDON_MAX_S)


def _dequeues(message: Message) -> int:
    # A message handed over in process was never dequeued; DTFx sees at least 1.
    return max(1, message.dequeue_count)
