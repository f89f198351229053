"""The job orchestrator replayed through the durable SDK's own handler, on built histories.

Histories are built here from the replay protocol (shared/notes/durable.md), independently
of the local durable engine: ids follow the SDK's order (each task gets the next id when
its action is first yielded; an external-event wait takes none).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrations.job import job_orchestrator
from orchestrations.policy import retry_delay

HANDLE = job_orchestrator._function.get_user_function()
JOB = "a" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {"jobId": JOB, "maxAttempts": 3, "timeoutS": 600}


def _ts(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class History:
    def __init__(self, spec: dict[str, Any] = SPEC) -> None:
        self.spec = spec
        self.now = T0
        self.events: list[dict[str, Any]] = []
        self._add(12)
        self._add(0, Name="job_orchestrator", Version="", Input=json.dumps(spec))

    def _add(self, kind: int, event_id: int = -1, **fields: Any) -> None:
        ev = {"EventType": kind, "EventId": event_id, "IsPlayed": False, "Timestamp": _ts(self.now)}
        ev.update(fields)
        self.events.append(ev)

    def episode(self, seconds: float = 0.0) -> None:
        """Close the episode and open the next one, `seconds` later."""
        self._add(13)
        self.now += timedelta(seconds=seconds)
        self._add(12)

    def scheduled(self, n: int, name: str = "stream_job") -> None:
        self._add(4, n, Name=name)

    def timer_created(self, n: int, fire_at: datetime) -> None:
        self._add(10, n, FireAt=_ts(fire_at))

    def completed(self, n: int, result: Any) -> None:
        self._add(5, -1, TaskScheduledId=n, Result=json.dumps(result))

    def failed(self, n: int, details: dict[str, Any]) -> None:
        self._add(6, -1, TaskScheduledId=n, Reason=json.dumps(details), Details="trace")

    def fired(self, n: int, fire_at: datetime) -> None:
        self._add(11, -1, TimerId=n, FireAt=_ts(fire_at))

    def raised(self, name: str, value: Any = None) -> None:
        self._add(15, -1, Name=name, Input=json.dumps(value))

    def run(self) -> dict[str, Any]:
        for ev in self.events[:-1]:
            ev["IsPlayed"] = True
        ctx = {"history": self.events, "input": json.dumps(self.spec), "instanceId": JOB,
               "isReplaying": False, "parentInstanceId": None,
               "upperSchemaVersion": 1, "upperSchemaVersionNew": 2}  # fmt: skip
        return json.loads(HANDLE(json.dumps(ctx)))


def _leaves(state: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(items: list[Any]) -> None:
        for a in items:
            if isinstance(a, list):
                walk(a)
            elif a.get("compoundActions"):
                walk(a["compoundActions"])
            else:
                out.append(a)

    walk(state["actions"])
    return out


DEADLINE = T0 + timedelta(seconds=600)


def _first_attempt(h: History) -> None:
    """Episode 1: the first stream_job (id 0) racing cancel and the timeout timer (id 1)."""
    h.episode()
    h.scheduled(0)
    h.timer_created(1, DEADLINE)


def test_first_episode_schedules_stream_cancel_wait_and_timeout() -> None:
    state = History().run()
    kinds = [a["actionType"] for a in _leaves(state)]
    assert kinds == [0, 6, 5]  # CallActivity, WaitForExternalEvent, CreateTimer
    assert _leaves(state)[2]["fireAt"].startswith("2026-01-01T00:10:00")
    assert state["isDone"] is False


def test_happy_path_returns_the_activity_result() -> None:
    h = History()
    _first_attempt(h)
    h.episode(5)
    h.completed(0, {"jobId": JOB, "status": "completed"})
    state = h.run()
    assert state["isDone"] is True
    assert state["output"] == {"jobId": JOB, "status": "completed"}
    timers = [a for a in _leaves(state) if a["actionType"] == 5]
    assert timers and timers[-1]["isCanceled"] is True  # the timeout timer is canceled


def test_retryable_failure_backs_off_then_retries_and_succeeds() -> None:
    h = History()
    _first_attempt(h)
    h.episode(1)
    h.failed(0, {"code": "llm_unavailable", "message": "500", "retryable": True})
    state = h.run()
    backoff = [a for a in _leaves(state) if a["actionType"] == 5][-1]
    fire = datetime.fromisoformat(backoff["fireAt"].replace("Z", "+00:00"))
    assert fire - h.now == timedelta(seconds=2)  # first backoff step
    h.timer_created(2, fire)
    h.episode(2)
    h.fired(2, fire)
    state = h.run()
    assert [a["functionName"] for a in _leaves(state) if a["actionType"] == 0] == [
        "stream_job",
        "stream_job",
    ]
    h.scheduled(3)
    h.episode(3)
    h.completed(3, {"jobId": JOB, "status": "completed", "attempt": 2})
    state = h.run()
    assert state["isDone"] and state["output"]["attempt"] == 2


def test_retry_after_from_the_service_wins_over_backoff() -> None:
    h = History()
    _first_attempt(h)
    h.episode(1)
    h.failed(0, {"code": "llm_rate_limited", "retryable": True, "retryAfter": 17})
    state = h.run()
    backoff = [a for a in _leaves(state) if a["actionType"] == 5][-1]
    fire = datetime.fromisoformat(backoff["fireAt"].replace("Z", "+00:00"))
    assert fire - h.now == timedelta(seconds=17)


def test_non_retryable_failure_finalizes_failed() -> None:
    h = History()
    _first_attempt(h)
    h.episode(1)
    h.failed(0, {"code": "llm_rejected", "message": "bad request", "retryable": False})
    state = h.run()
    final = [a for a in _leaves(state) if a["actionType"] == 0][-1]
    assert final["functionName"] == "finalize_job"
    payload = json.loads(final["input"])
    assert payload["status"] == "failed" and payload["error"]["code"] == "llm_rejected"


def test_retries_exhausted_finalizes_failed() -> None:
    h = History({**SPEC, "maxAttempts": 2})
    _first_attempt(h)
    h.episode(1)
    h.failed(0, {"code": "llm_unavailable", "retryable": True})
    h.timer_created(2, h.now + timedelta(seconds=2))
    h.episode(2)
    h.fired(2, h.now)
    h.scheduled(3)
    h.episode(1)
    h.failed(3, {"code": "llm_unavailable", "retryable": True})
    state = h.run()
    final = [a for a in _leaves(state) if a["actionType"] == 0][-1]
    assert final["functionName"] == "finalize_job"
    assert json.loads(final["input"])["error"]["code"] == "llm_unavailable"


def test_timeout_finalizes_failed_with_timeout() -> None:
    h = History()
    _first_attempt(h)
    h.episode(600)
    h.fired(1, DEADLINE)
    state = h.run()
    final = [a for a in _leaves(state) if a["actionType"] == 0][-1]
    assert final["functionName"] == "finalize_job"
    assert json.loads(final["input"])["error"]["code"] == "timeout"


def test_cancel_event_finalizes_canceled() -> None:
    h = History()
    _first_attempt(h)
    h.episode(2)
    h.raised("cancel")
    state = h.run()
    final = [a for a in _leaves(state) if a["actionType"] == 0][-1]
    assert final["functionName"] == "finalize_job"
    assert json.loads(final["input"])["status"] == "canceled"
    h.scheduled(2, "finalize_job")
    h.episode(1)
    h.completed(2, {"jobId": JOB, "status": "canceled"})
    state = h.run()
    assert state["isDone"] and state["output"]["status"] == "canceled"


def test_policy() -> None:
    assert retry_delay({"retryable": False}, 1, 3) is None
    assert retry_delay({"retryable": True}, 3, 3) is None
    assert retry_delay({"retryable": True}, 1, 3) == 2.0
    assert retry_delay({"retryable": True}, 2, 3) == 4.0
    assert retry_delay({"retryable": True, "retryAfter": 30}, 1, 3) == 30.0
    assert retry_delay({"retryable": True}, 30, 99) == 60.0
