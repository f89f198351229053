"""Running orchestration episodes for one instance, from its control-queue messages.

Invariants:
- Outbound work (activity work items, timer messages) is sent before the episode's history is
  written; a crash in between re-runs the episode from the redelivered control messages, and
  results of work the history never recorded are dropped as stale (at-least-once).
- Control messages are deleted only after the episodes that consumed them are persisted.
- An episode's outbound sends (work items and timer messages) go out side by side, and all of
  them have completed (or the episode fails) before its history is written: no crash can
  leave a history that records work whose message was never sent. The history is written
  before the instance row, which is what makes the history readable (a row naming an
  episode whose history is missing would replay without it); the control messages are
  deleted side by side after the row.
- Work items go to the engine's `dispatch_work`, which may keep one for this process (sent
  leased; the queue message stays the at-least-once backstop, see the engine). Such an
  activity starts only once the episode's history and row are written, so a crash during
  it always finds its scheduling recorded (one redelivery, one re-run). An episode that
  fails after its sends releases them to the pollers, as visible sends were before.
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
        dispatch_work: Callable[[dict[str, Any]], Awaitable[Callable[[bool], None] | None]],
    ) -> None:
        self.store = store
        self.registry = registry
        self.pool = pool
        self.log = logger
        self.on_timer = on_timer  # wake the control poller when a timer is due
        self.dispatch_work = dispatch_work  # enqueue a work item (and maybe run it here)

    async def process(self, instance_id: str, messages: list[Message]) -> None:
        row = await self.store.get_instance(instance_id, cached=True)
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
            starts = await self._send_outbound(row, plan)
            done = False
            try:
                await self.store.append_history(
                    instance_id, row["ExecutionId"], len(history), written
                )
                history += written
                row = self._apply(row, plan, state, now) | {"HistoryLength": len(history)}
                await self.store.put_instance(row, checked=True)
                done = True
            finally:
                for go in starts:  # locally dispatched activities start once persisted
                    go(done)
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

    async def _send_outbound(
        self, row: dict[str, Any], plan: EpisodePlan
    ) -> list[Callable[[bool], None]]:
        """Send the episode's work items and timers side by side.

        Returns the `go` of each work item dispatched to this process. If any send fails,
        those are released (`go(False)`) and the failure raised: nothing may be persisted.
        """
        instance_id, x = row["PartitionKey"], row["ExecutionId"]
        if plan.status not in ("Running",):
            return []  # a finished execution schedules nothing more
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
        results = await asyncio.gather(*sends, return_exceptions=True)
        starts = [r for r in results[: len(plan.work)] if callable(r)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            for go in starts:
                go(False)
            raise failures[0]
        for delay in delays:
            self.on_timer(delay)
        return starts

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
