"""The replay protocol, with no I/O: history events, the context JSON, and episode planning.

An episode appends `OrchestratorStarted` + a batch of new events to the history, runs the SDK's
handler on it and reads back the cumulative action list (schema v2). `plan_episode` turns that
answer into the events to append and the work to send, the way the extension's shim does:

Event ids follow the SDK's own order. The SDK numbers the tasks user code yields in the order
they are yielded (the flattened leaves of the cumulative action list), and numbers a retried
activity's back-off timer and re-run while it processes the TaskFailed / TimerFired event
(these never appear as actions). Which of the two comes first inside one episode depends on
where in the batch the retry event sits, so `take_batch` ends a batch right after the first
retry event: a retry event never resumes user code, so every new leaf of the episode was
yielded before it, and the retry id comes last. Delivering fewer events per episode is always
valid (the extension batches whatever has arrived).

Time is passed in (`now`); nothing here reads the clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ACTIVITY_ACTIONS",
    "EPISODE_EVENT_TYPES",
    "EVENT",
    "EpisodePlan",
    "OrchestratorAnswer",
    "ShimState",
    "WorkItem",
    "build_context",
    "event",
    "flatten_actions",
    "format_time",
    "parse_answer",
    "parse_time",
    "plan_episode",
    "take_batch",
]

EVENT = {
    "ExecutionStarted": 0,
    "ExecutionCompleted": 1,
    "ExecutionFailed": 2,
    "ExecutionTerminated": 3,
    "TaskScheduled": 4,
    "TaskCompleted": 5,
    "TaskFailed": 6,
    "TimerCreated": 10,
    "TimerFired": 11,
    "OrchestratorStarted": 12,
    "OrchestratorCompleted": 13,
    "EventRaised": 15,
    "ContinueAsNew": 16,
}
# Events a control-queue message may carry into an episode.
EPISODE_EVENT_TYPES = frozenset({5, 6, 11, 15})

ACTIVITY_ACTIONS = frozenset({0, 1})
_UNSUPPORTED = {
    2: "sub-orchestrations (call_sub_orchestrator)",
    3: "sub-orchestrations (call_sub_orchestrator_with_retry)",
    7: "durable entities (call_entity)",
    8: "durable HTTP (call_http)",
    9: "durable entities (signal_entity)",
}
# What the Azure Storage provider tells the SDK about long timers (schema v3).
MAX_SHORT_TIMER = "6.00:00:00"
LONG_TIMER_INTERVAL = "3.00:00:00"
CUSTOM_STATUS_MAX_BYTES = 16 * 1024


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def event(kind: str, now: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """A history event as the host sends it to the SDK."""
    return {
        "EventType": EVENT[kind],
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_time(now),
        **fields,
    }


def build_context(
    history: list[dict[str, Any]],
    instance_id: str,
    orchestration_input: str | None,
    schema: int = 2,
) -> str:
    """The context JSON for one episode: events before the last OrchestratorStarted are replay.

    `schema` is the SDK's ReplaySchema value offered (V1 = 0, V2 = 1, V3 = 2). The engine always
    offers 2, as extension 2.x does (`upperSchemaVersion` 1 + `upperSchemaVersionNew` 2); a
    lower value builds what an older extension sends, for checks against the SDK's own tests.
    """
    last_start = max(
        (i for i, e in enumerate(history) if e["EventType"] == EVENT["OrchestratorStarted"]),
        default=0,
    )
    sent = [
        {k: v for k, v in e.items() if not k.startswith("_")} | {"IsPlayed": i < last_start}
        for i, e in enumerate(history)
    ]
    context: dict[str, Any] = {
        "history": sent,
        "input": orchestration_input,
        "instanceId": instance_id,
        "isReplaying": last_start > 0,
        "parentInstanceId": None,
        "upperSchemaVersion": min(schema, 1),
        "upperSchemaVersionNew": 2,
        "maximumShortTimerDuration": MAX_SHORT_TIMER,
        "longRunningTimerIntervalDuration": LONG_TIMER_INTERVAL,
    }
    if schema < 2:
        del context["upperSchemaVersionNew"]
    return json.dumps(context)


@dataclass(frozen=True)
class OrchestratorAnswer:
    """What the SDK's handler returned: its state, or its failure message and state."""

    state: dict[str, Any]
    error: str | None = None  # set when the orchestrator raised


def parse_answer(returned: str | None = None, raised: BaseException | None = None) -> Any:
    """Read the handler's return value, or the `$OutOfProcData$:` state inside its exception."""
    if raised is not None:
        text = str(raised)
        marker = "$OutOfProcData$:"
        at = text.find(marker)
        if at == -1:
            return OrchestratorAnswer({"isDone": False, "actions": []}, error=text or repr(raised))
        state = json.loads(text[at + len(marker) :])
        message = state.get("error") or text[:at].strip() or type(raised).__name__
        return OrchestratorAnswer(state, error=str(message))
    return OrchestratorAnswer(json.loads(returned or "{}"))


def flatten_actions(actions: Any) -> list[dict[str, Any]]:
    """Leaf actions in the order the SDK numbered them (WhenAll / WhenAny unwrapped)."""
    out: list[dict[str, Any]] = []

    def walk(items: Iterable[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            elif item.get("actionType") in (11, 12):
                walk(item.get("compoundActions") or [])
            else:
                out.append(item)

    walk(actions or [])
    return out


@dataclass
class ShimState:
    """Per-execution bookkeeping the extension's shim keeps; persisted with the instance."""

    next_id: int = 0
    actions_seen: int = 0
    # event id -> {"kind": activity|retry|timer|retry_timer, "name", "input", "retry",
    #              "attempt", "leaf", "done"}
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"next_id": self.next_id, "actions_seen": self.actions_seen, "tasks": self.tasks}
        )

    @classmethod
    def from_json(cls, text: str | None) -> ShimState:
        if not text:
            return cls()
        raw = json.loads(text)
        tasks = {int(k): v for k, v in raw.get("tasks", {}).items()}
        return cls(next_id=int(raw["next_id"]), actions_seen=int(raw["actions_seen"]), tasks=tasks)

    def is_retry_event(self, ev: dict[str, Any]) -> bool:
        """A TaskFailed of a retried activity, or a back-off timer that leads to a re-run."""
        if ev["EventType"] == EVENT["TaskFailed"]:
            return self.tasks.get(ev["TaskScheduledId"], {}).get("kind") == "retry"
        if ev["EventType"] == EVENT["TimerFired"]:
            meta = self.tasks.get(ev["TimerId"], {})
            return bool(meta.get("kind") == "retry_timer" and meta["attempt"] < meta["retry"])
        return False

    def is_stale(self, ev: dict[str, Any]) -> bool:
        """A duplicate or unknown completion (at-least-once delivery), or a canceled timer."""
        kind = ev["EventType"]
        if kind in (EVENT["TaskCompleted"], EVENT["TaskFailed"]):
            meta = self.tasks.get(ev["TaskScheduledId"])
            return meta is None or meta.get("kind") not in ("activity", "retry") or "done" in meta
        if kind == EVENT["TimerFired"]:
            meta = self.tasks.get(ev["TimerId"])
            return (
                meta is None
                or meta.get("kind") not in ("timer", "retry_timer")
                or "done" in meta
                or bool(meta.get("canceled"))
            )
        return False

    def mark_done(self, ev: dict[str, Any]) -> None:
        key = ev.get("TaskScheduledId") if ev["EventType"] != EVENT["TimerFired"] else None
        key = ev["TimerId"] if ev["EventType"] == EVENT["TimerFired"] else key
        if key is not None and key in self.tasks:
            self.tasks[key]["done"] = True


def take_batch(state: ShimState, pending: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Pick the next episode's events from `pending` (in arrival order).

    Returns the batch and how many pending events it consumed (stale ones are consumed and
    dropped). The batch ends right after the first retry event (see the module docstring).
    """
    batch: list[dict[str, Any]] = []
    used = 0
    for ev in pending:
        used += 1
        if state.is_stale(ev):
            continue
        retry = state.is_retry_event(ev)
        state.mark_done(ev)
        batch.append(ev)
        if retry:
            break
    return batch, used


@dataclass(frozen=True)
class WorkItem:
    """An activity to run: `task_id` is its TaskScheduled event id."""

    task_id: int
    name: str
    input: str | None


@dataclass
class EpisodePlan:
    new_events: list[dict[str, Any]] = field(default_factory=list)
    work: list[WorkItem] = field(default_factory=list)
    timers: list[tuple[int, datetime]] = field(default_factory=list)  # (timer id, fire at)
    status: str = "Running"  # Running | Completed | Failed | ContinuedAsNew
    output: Any = None
    custom_status: Any = None
    continue_input: str | None = None


def _schedule(state: ShimState, plan: EpisodePlan, meta: dict[str, Any], now: datetime) -> None:
    task_id = state.next_id
    state.next_id += 1
    state.tasks[task_id] = meta
    name, data = meta["name"], meta.get("input")
    plan.new_events.append(event("TaskScheduled", now, task_id, Name=name, Input=data))
    plan.work.append(WorkItem(task_id, name, data))


def _timer(state: ShimState, plan: EpisodePlan, meta: dict[str, Any], now: datetime) -> None:
    timer_id = state.next_id
    state.next_id += 1
    state.tasks[timer_id] = meta
    fire_at = parse_time(meta["fire_at"])
    plan.new_events.append(event("TimerCreated", now, timer_id, FireAt=format_time(fire_at)))
    if not meta.get("canceled"):
        plan.timers.append((timer_id, fire_at))


def plan_episode(
    state: ShimState,
    batch: list[dict[str, Any]],
    answer: OrchestratorAnswer,
    now: datetime,
    orchestrator_name: str,
) -> EpisodePlan:
    """Apply the SDK's answer to `state`; return the events to append and the work to send."""
    plan = EpisodePlan()
    body = answer.state
    plan.custom_status = body.get("customStatus")
    leaves = flatten_actions(body.get("actions"))
    by_leaf = {meta["leaf"]: tid for tid, meta in state.tasks.items() if "leaf" in meta}
    for index, leaf in enumerate(leaves[: state.actions_seen]):
        if leaf.get("actionType") == 5 and leaf.get("isCanceled") and index in by_leaf:
            state.tasks[by_leaf[index]]["canceled"] = True
    for index, leaf in enumerate(leaves[state.actions_seen :], start=state.actions_seen):
        kind = leaf.get("actionType")
        if kind in _UNSUPPORTED:
            plan.status = "Failed"
            plan.output = (
                f"Orchestrator function '{orchestrator_name}' failed: {_UNSUPPORTED[kind]} "
                "are not supported by the local durable engine"
            )
            return plan
        if kind in ACTIVITY_ACTIONS:
            retry = leaf.get("retryOptions") or {}
            meta: dict[str, Any] = {"name": leaf["functionName"], "input": leaf.get("input")}
            meta["leaf"] = index
            if kind == 1:
                meta |= {
                    "kind": "retry",
                    "attempt": 1,
                    "retry": int(retry.get("maxNumberOfAttempts", 1)),
                    "delay_ms": int(retry.get("firstRetryIntervalInMilliseconds", 1000)),
                }
            else:
                meta["kind"] = "activity"
            _schedule(state, plan, meta, now)
        elif kind == 5:
            fire_at = leaf["fireAt"]
            meta = {"kind": "timer", "fire_at": fire_at, "leaf": index}
            meta["canceled"] = bool(leaf.get("isCanceled"))
            _timer(state, plan, meta, now)
        elif kind == 4:
            plan.continue_input = leaf.get("input")
    state.actions_seen = max(state.actions_seen, len(leaves))

    if batch and state.is_retry_event(batch[-1]) and answer.error is None:
        _follow_retry(state, plan, batch[-1], now)

    if answer.error is not None:
        plan.status = "Failed"
        plan.output = f"Orchestrator function '{orchestrator_name}' failed: {answer.error}"
    elif body.get("isDone"):
        if plan.continue_input is not None or any(x.get("actionType") == 4 for x in leaves):
            plan.status = "ContinuedAsNew"
        else:
            plan.status = "Completed"
            plan.output = body.get("output")
    if plan.status == "Running" and plan.custom_status is not None:
        size = len(json.dumps(plan.custom_status).encode())
        if size > CUSTOM_STATUS_MAX_BYTES:
            plan.status = "Failed"
            plan.output = (
                f"Orchestrator function '{orchestrator_name}' failed: the custom status is "
                f"{size} bytes; the limit is {CUSTOM_STATUS_MAX_BYTES} bytes (16 KB)"
            )
    return plan


def _follow_retry(state: ShimState, plan: EpisodePlan, ev: dict[str, Any], now: datetime) -> None:
    """DTFx's retry loop: after a failure, a back-off timer; after the timer, a re-run."""
    if ev["EventType"] == EVENT["TaskFailed"]:
        failed = state.tasks[ev["TaskScheduledId"]]
        delay = timedelta(milliseconds=failed["delay_ms"])
        meta = {k: failed[k] for k in ("name", "input", "attempt", "retry", "delay_ms")}
        meta |= {"kind": "retry_timer", "fire_at": format_time(now + delay)}
        _timer(state, plan, meta, now)
    else:
        timer = state.tasks[ev["TimerId"]]
        meta = {k: timer[k] for k in ("name", "input", "retry", "delay_ms")}
        meta |= {"kind": "retry", "attempt": timer["attempt"] + 1}
        _schedule(state, plan, meta, now)
