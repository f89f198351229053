"""Running orchestration episodes for one instance, from its control-queue messages.

Invariants:
- Outbound work (activity work items, timer messages) is sent before the episode's history is
  written, side by side, and all sends have ended (or the episode fails) before the history
  is written: no crash can leave a history that records work whose message was never sent.
  The history is written before the instance row, which is what makes the history readable
  (a row naming an episode whose history is missing would replay without it); the control
  messages are deleted side by side after the row. A crash in between re-runs the episode
  from the redelivered control messages, and the re-run sends its work again.
- Control messages are deleted only after the episodes that consumed them are persisted.
- Work items go to the engine's `dispatch_work`, which may keep one for this process (sent
  leased; the queue message stays the at-least-once backstop, see the engine). A kept
  activity starts as soon as its send has succeeded, before the episode is persisted, as
  any worker may take a DTFx work item the moment it is sent; an episode that fails after
  its sends leaves them running.
- So a result (TaskCompleted, TaskFailed) or timer firing can arrive before the scheduling
  event it answers is persisted. It is deferred, never dropped, while the history may still
  record it (DTFx's out-of-order rule, `_dispatch.out_of_order`): within this process it
  simply waits in the instance's inbox while the episode persists (episodes of one instance
  run one at a time); a message found early (the episode failed, or another process) is
  abandoned for 2^DequeueCount s (at most 10 min) and handled when it comes back. Results
  for an execution with no history are dropped after five dequeues; once the scheduling is
  recorded, a second result for the same id (the re-run's activity, a redelivery) is a
  duplicate and dropped (`ShimState.is_stale`): exactly one result is applied.
- The row records how many history events its episodes wrote (`HistoryLength`); history is
  read up to that length. Events past it belong to an episode whose row write never landed
  (a crash, or a conditional write refused): they are ignored and overwritten by the episode
  that re-runs from the redelivered messages, instead of being replayed as if persisted.
- Rows and histories are read through the store's cache (`cached=True`); row writes are
  conditional on the cached ETag, so a concurrent writer fails the episode (redelivery)
  instead of being overwritten.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

from ._dispatch import abandon_delay_s, out_of_order
from ._functions import Registry
from ._logs import invocation
from ._replay import (
    EVENT,
    EpisodePlan,
    ShimState,
    build_context,
    event,
    format_time,
    parse_answer,
    parse_time,
    plan_episode,
    take_batch,
)
from ._store import Message, TaskHubStore

__all__ = ["RUNNING", "TERMINAL", "InstanceRunner", "new_instance_row", "persisted"]

RUNNING = ("Pending", "Running", "ContinuedAsNew")
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")


_EVENT_NAMES = {number: name for name, number in EVENT.items()}


def _now() -> datetime:
    return datetime.now(UTC)


def new_instance_row(instance_id: str, name: str, input_json: str | None) -> dict[str, Any]:
    now = format_time(_now())
    return {
        "PartitionKey": instance_id,
        "RowKey": "",
        "Name": name,
        "Version": "",
        "ExecutionId": uuid.uuid4().hex,
        "RuntimeStatus": "Pending",
        "Input": input_json,
        "Output": None,
        "CustomStatus": None,
        "CreatedTime": now,
        "LastUpdatedTime": now,
        "Shim": ShimState().to_json(),
        "HistoryLength": 0,
    }


def persisted(row: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history events the row's episodes wrote (see the module docstring)."""
    length = row.get("HistoryLength")
    return history if length is None else history[: int(length)]


class InstanceRunner:
    """Turns the control messages of one instance into persisted episodes."""

    def __init__(
        self,
        store: TaskHubStore,
        registry: Registry,
        pool: Executor,
        logger: logging.Logger,
        on_timer: Callable[[float], None],
        dispatch_work: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self.store = store
        self.registry = registry
        self.pool = pool
        self.log = logger
        self.on_timer = on_timer  # wake the control poller when a timer is due
        self.dispatch_work = dispatch_work  # enqueue a work item (and maybe start it here)

    async def process(self, instance_id: str, messages: list[Message]) -> None:
        row = await self.store.get_instance(instance_id, cached=True)
        messages = await self._defer_out_of_order(instance_id, row, messages)
        if not messages:
            return
        if row is None:
            await self._delete(messages)
            return
        messages = await self._defer_early_timers(messages)
        starts = [m for m in messages if m.body["t"] == "start"]
        terminates = [m for m in messages if m.body["t"] == "terminate"]
        others = [m for m in messages if m.body["t"] == "event"]
        x = row["ExecutionId"]
        starting = any(m.body.get("x") == x for m in starts) and row["RuntimeStatus"] == "Pending"
        if row["RuntimeStatus"] == "Pending" and not starting:
            # The start message has not arrived yet: leave the events queued.
            return
        if terminates and row["RuntimeStatus"] in RUNNING:
            await self._terminate(row, terminates[0].body.get("reason") or "")
        elif row["RuntimeStatus"] in RUNNING:
            pending = [m.body["e"] for m in others if m.body.get("x") in (None, x)]
            await self._run(row, pending, starting)
        await self._delete(messages)

    async def _delete(self, messages: list[Message]) -> None:
        await _all([self.store.delete("control", m) for m in messages])

    async def _defer_out_of_order(
        self, instance_id: str, row: dict[str, Any] | None, messages: list[Message]
    ) -> list[Message]:
        """Abandon results whose scheduling is not persisted yet; return the others.

        As DTFx's LockNextTaskOrchestrationWorkItemAsync does with what `out_of_order` finds
        (logged there as ReceivedOutOfOrderMessage): the message is made invisible for
        2^DequeueCount s (at most 10 min) and handled when it comes back. In this process a
        result that arrives while its episode persists never gets here early: the instance's
        episodes and messages are handled one after the other (the engine's `_drain`), so it
        waits in the inbox and is handled right after the persist, with no delay.
        """
        early = [m for m in messages if out_of_order(row, m)]
        if not early:
            return messages
        for m in early:
            delay = abandon_delay_s(m)
            ev = m.body["e"]
            self.log.warning(
                "orchestration %s: %s for id %s arrived before its scheduling was persisted "
                "(dequeue count %d); deferred %d s",
                instance_id,
                _EVENT_NAMES.get(ev["EventType"], ev["EventType"]),
                ev.get("TaskScheduledId", ev.get("TimerId")),
                m.dequeue_count,
                delay,
            )
        for m, result in zip(early, await self.abandon(early), strict=True):
            if result is not None:
                self.log.warning(
                    "orchestration %s: could not defer message %s: %s",
                    instance_id,
                    m.id,
                    type(result).__name__,
                )
        return [m for m in messages if all(m is not e for e in early)]

    async def abandon(self, messages: list[Message]) -> list[BaseException | None]:
        """Make messages invisible for DTFx's backoff (2^DequeueCount s, at most 10 min,
        TaskHubQueue.AbandonMessageAsync) and wake the control poller when each is due.

        Side by side; per message None, or the error of an abandon that failed: that
        message comes back after its current lease instead (at-least-once holds)."""
        delays = [abandon_delay_s(m) for m in messages]
        results = await asyncio.gather(
            *(self.store.extend("control", m, d) for m, d in zip(messages, delays, strict=True)),
            return_exceptions=True,
        )
        out: list[BaseException | None] = []
        for delay, result in zip(delays, results, strict=True):
            if isinstance(result, BaseException):
                out.append(result)
            else:
                self.on_timer(delay)
                out.append(None)
        return out

    async def _defer_early_timers(self, messages: list[Message]) -> list[Message]:
        """Long timers outlive a queue message's 7-day visibility: re-send until due."""
        keep = []
        now = _now()
        for m in messages:
            fire_at = m.body.get("fire_at")
            if fire_at and (parse_time(fire_at) - now).total_seconds() > 0.05:
                await self.store.send(
                    "control", m.body, (parse_time(fire_at) - now).total_seconds()
                )
                await self.store.delete("control", m)
                continue
            keep.append(m)
        return keep

    async def _terminate(self, row: dict[str, Any], reason: str) -> None:
        now = _now()
        x = row["ExecutionId"]
        history = persisted(row, await self.store.load_history(row["PartitionKey"], x, cached=True))
        ev = event("ExecutionTerminated", now, Input=reason)
        await self.store.append_history(row["PartitionKey"], x, len(history), [ev])
        row |= {
            "HistoryLength": len(history) + 1,
            "RuntimeStatus": "Terminated",
            "Output": _json(reason),
            "LastUpdatedTime": format_time(now),
        }
        await self.store.put_instance(row, checked=True)
        self.log.info("orchestration %s terminated", row["PartitionKey"])

    async def _run(self, row: dict[str, Any], pending: list[dict[str, Any]], first: bool) -> None:
        instance_id, name = row["PartitionKey"], row["Name"]
        x = row["ExecutionId"]
        history = [] if first else await self.store.load_history(instance_id, x, cached=True)
        history = persisted(row, history)
        state = ShimState.from_json(row.get("Shim"))
        seen = {e.get("_mid") for e in history if e.get("_mid")}
        pending = [e for e in pending if not e.get("_mid") or e["_mid"] not in seen]
        while True:
            batch, used = take_batch(state, pending)
            pending = pending[used:]
            if not batch and not first:
                return
            now = max(_now(), _last_time(history))
            if first:
                opened = [
                    event("OrchestratorStarted", now),
                    event("ExecutionStarted", now, Name=name, Version="", Input=row.get("Input")),
                ]
            else:
                opened = [event("OrchestratorStarted", now), *batch]
            first = False
            handler = self.registry.orchestrators.get(name)
            started = time.monotonic()
            if handler is None:
                plan = EpisodePlan(
                    status="Failed",
                    output=f"The orchestrator function '{name}' doesn't exist.",
                )
            else:
                context = build_context(history + opened, instance_id, row.get("Input"))
                with invocation(name, instance_id) as inv:
                    answer = await self._invoke(handler, context)
                    if answer.error is not None:
                        inv.fail(answer.error)
                plan = plan_episode(state, batch, answer, now, name)
            written = [*opened, *plan.new_events, event("OrchestratorCompleted", now)]
            # Kept activities start as their sends succeed: they may finish before this
            # persist, and their results wait in this instance's inbox until it has ended.
            await self._send_outbound(row, plan)
            await self.store.append_history(instance_id, row["ExecutionId"], len(history), written)
            history += written
            row = self._apply(row, plan, state, now) | {"HistoryLength": len(history)}
            await self.store.put_instance(row, checked=True)
            self.log.info(
                "orchestration %s episode: %s (%d new events, %d activities, %.0f ms)",
                instance_id,
                row["RuntimeStatus"],
                len(batch),
                len(plan.work),
                (time.monotonic() - started) * 1000,
            )
            if plan.status == "ContinuedAsNew":
                await self.store.delete_history(instance_id)
                row |= {
                    "ExecutionId": uuid.uuid4().hex,
                    "RuntimeStatus": "Running",
                    "Input": plan.continue_input,
                    "Shim": ShimState().to_json(),
                    "HistoryLength": 0,
                }
                await self.store.put_instance(row, checked=True)
                state, history, first = ShimState(), [], True
                # Only external events carry over to the new execution.
                pending = [e for e in pending if e["EventType"] == EVENT["EventRaised"]]
            elif plan.status != "Running":
                return

    async def _invoke(self, handler: Callable[[str], str], context: str) -> Any:
        loop = asyncio.get_running_loop()
        try:
            ctx = contextvars.copy_context()  # the invocation tag reaches the worker thread
            returned = await loop.run_in_executor(self.pool, ctx.run, handler, context)
        except Exception as exc:  # the SDK reports orchestrator failures by raising
            return parse_answer(raised=exc)
        return parse_answer(returned=returned)

    async def _send_outbound(self, row: dict[str, Any], plan: EpisodePlan) -> None:
        """Send the episode's work items and timers side by side.

        Every send has ended before this returns; if any failed, the first failure is raised
        and nothing may be persisted. Work items already sent stay sent (and kept ones keep
        running): their results are deferred until a re-run records their scheduling.
        """
        instance_id, x = row["PartitionKey"], row["ExecutionId"]
        if plan.status not in ("Running",):
            return  # a finished execution schedules nothing more
        sends: list[Awaitable[Any]] = []
        for item in plan.work:
            body = {"i": instance_id, "x": x, "id": item.task_id, "name": item.name}
            sends.append(self.dispatch_work(body | {"input": item.input}))
        delays = []
        for timer_id, fire_at in plan.timers:
            fired = event("TimerFired", fire_at, TimerId=timer_id, FireAt=format_time(fire_at))
            delay = (fire_at - _now()).total_seconds()
            body = {"t": "event", "i": instance_id, "x": x, "fire_at": format_time(fire_at)}
            sends.append(self.store.send("control", body | {"e": fired}, delay))
            delays.append(delay)
        await _all(sends)
        for delay in delays:
            self.on_timer(delay)

    def _apply(
        self, row: dict[str, Any], plan: EpisodePlan, state: ShimState, now: datetime
    ) -> dict[str, Any]:
        status = plan.status if plan.status != "ContinuedAsNew" else "ContinuedAsNew"
        row = row | {
            "RuntimeStatus": status,
            "LastUpdatedTime": format_time(now),
            "Shim": state.to_json(),
            "CustomStatus": _json(plan.custom_status),
        }
        if status in TERMINAL:
            row["Output"] = _json(plan.output)
        return row


async def _all(calls: list[Awaitable[Any]]) -> None:
    """Run side by side; every call has ended before the first failure is raised."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _last_time(history: list[dict[str, Any]]) -> datetime:
    if not history:
        return datetime.min.replace(tzinfo=UTC)
    return max(parse_time(e["Timestamp"]) for e in history)
