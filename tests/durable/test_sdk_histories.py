"""The durable SDK's own orchestrator tests, replayed through our engine's episode planner.

Each file data/sdk_*.json reproduces, in our own notation, the recorded histories of one test
module of Azure/azure-functions-durable-python (tests/orchestrator/test_*.py, built there with
tests/test_utils/ContextBuilder.py), each case naming its test function. The orchestrators are
in sdk_apps.py. For every case we feed the history's arriving events (ExecutionStarted, task
results, timer firings, external events) episode by episode through `take_batch`,
`build_context`, the SDK's own handler and `plan_episode`, exactly as the engine does, then check:

- the TaskScheduled / TimerCreated events our engine appends carry the ids the SDK's history
  uses (plus `extra`: those the SDK test leaves out of its hand-built history, such as the
  next activity of the last episode);
- the SDK's answer to the engine's history has the SDK test's expected actions, completion,
  output, error and custom status (the actions in the test's replay schema: schema-1 tests are
  answered once more with a schema-1 context, as an older extension would send), and our
  engine's status for it.

Event notation: "start", "sched ID NAME", "timer ID", "done ID [RESULT]", "fail ID REASON|DETAILS",
"fired ID [FIREAT]", "event NAME [INPUT]". Action notation: "call NAME [INPUT]",
"retry NAME INPUT FIRSTMSxATTEMPTS", "timer [canceled]", "wait NAME", "continue INPUT",
{"any": [...]}, {"all": [...]}. `schema` is the SDK test's ReplaySchema (V1 unless stated).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.durable._functions import Registry
from local.durable._replay import (
    ShimState,
    build_context,
    event,
    parse_answer,
    plan_episode,
    take_batch,
)

from .sdk_apps import FUNCTIONS

DATA = Path(__file__).parent / "data"
BASE = datetime(2024, 1, 1, tzinfo=UTC)
HANDLERS = Registry(FUNCTIONS).orchestrators
FILES = sorted(DATA.glob("sdk_*.json"))
CASES = [
    pytest.param(path, case, id=f"{path.stem}::{case['test']}")
    for path in FILES
    for case in json.loads(path.read_text())["cases"]
]


def _arrival(text: str, now: datetime, state: ShimState) -> dict[str, Any]:
    kind, _, rest = text.partition(" ")
    head, _, tail = rest.partition(" ")
    if kind == "done":
        return event("TaskCompleted", now, TaskScheduledId=int(head), Result=tail or None)
    if kind == "fail":
        reason, _, details = tail.partition("|")
        return event("TaskFailed", now, TaskScheduledId=int(head), Reason=reason, Details=details)
    if kind == "fired":
        fire_at = tail or state.tasks.get(int(head), {}).get("fire_at")
        return event("TimerFired", now, TimerId=int(head), FireAt=fire_at)
    if kind == "event":
        return event("EventRaised", now, Name=head, Input=tail or None)
    raise AssertionError(f"not an arriving event: {text}")


def _action(action: dict[str, Any]) -> Any:
    kind = action["actionType"]
    if kind in (11, 12):
        return {"any" if kind == 11 else "all": [_action(a) for a in action["compoundActions"]]}
    parts: list[str] = []
    if kind == 0:
        parts = ["call", action["functionName"]]
        parts += [action["input"]] if action.get("input") is not None else []
    elif kind == 1:
        retry = action["retryOptions"]
        first, attempts = retry["firstRetryIntervalInMilliseconds"], retry["maxNumberOfAttempts"]
        parts = ["retry", action["functionName"], action["input"], f"{first}x{attempts}"]
    elif kind == 4:
        parts = ["continue", action["input"]]
    elif kind == 5:
        parts = ["timer", *(["canceled"] if action.get("isCanceled") else [])]
    elif kind == 6:
        parts = ["wait", action["externalEventName"]]
    else:
        parts = [f"action {kind}"]
    return " ".join(parts)


def _leaves(actions: Any) -> list[str]:
    out: list[str] = []
    for item in actions:
        if isinstance(item, list):
            out += _leaves(item)
        elif isinstance(item, dict):
            out += _leaves(next(iter(item.values())))
        else:
            out.append(item)
    return out


def _answer(name: str, context: str) -> Any:
    try:
        return parse_answer(returned=HANDLERS[name](context))
    except Exception as exc:
        return parse_answer(raised=exc)


def _replay(case: dict[str, Any]) -> tuple[Any, str, list[str], list[dict[str, Any]]]:
    """Run the case's arrivals as the engine would; return the last answer, status, the
    scheduling events appended (as notation, in id order) and the last context's history."""
    name, data = case["orchestrator"], case.get("input")
    state, history, appended = ShimState(), [], []
    answer, status, last = None, "Running", []
    tick = 0
    for k, episode in enumerate(case["history"]):
        arriving = [e for e in episode if e.split(" ")[0] not in ("sched", "timer")]
        if k == 0:
            assert arriving[:1] == ["start"], "a history begins with ExecutionStarted"
            arriving = arriving[1:]
        pending_text = list(arriving)
        first = k == 0
        while (first or pending_text) and status == "Running":
            now = BASE + timedelta(seconds=tick)
            tick += 1
            if first:
                batch: list[dict[str, Any]] = []
                opened = [
                    event("OrchestratorStarted", now),
                    event("ExecutionStarted", now, Name=name, Version="", Input=data),
                ]
                first = False
            else:
                pending = [_arrival(t, now, state) for t in pending_text]
                batch, used = take_batch(state, pending)
                pending_text = pending_text[used:]
                if not batch:
                    continue
                opened = [event("OrchestratorStarted", now), *batch]
            last = history + opened
            answer = _answer(name, build_context(last, "sdk", data))
            plan = plan_episode(state, batch, answer, now, name)
            status = plan.status
            for e in plan.new_events:
                label = "sched" if e["EventType"] == 4 else "timer"
                appended.append(
                    f"{label} {e['EventId']}" + (f" {e['Name']}" if "Name" in e else "")
                )
            history = [*last, *plan.new_events, event("OrchestratorCompleted", now)]
    appended.sort(key=lambda text: int(text.split(" ")[1]))
    return answer, status, appended, last


@pytest.mark.parametrize(("path", "case"), CASES)
def test_sdk_history_replays_to_the_sdk_expected_state(path: Path, case: dict[str, Any]) -> None:
    answer, status, appended, last = _replay(case)
    recorded = [
        e for episode in case["history"] for e in episode if e.split(" ")[0] in ("sched", "timer")
    ]
    wanted = sorted([*recorded, *case.get("extra", [])], key=lambda t: int(t.split(" ")[1]))
    assert appended == wanted, "event ids differ from the SDK's history"

    expected = case["expected"]
    assert status == expected["status"]
    body = answer.state
    assert body.get("isDone", False) is (status in ("Completed", "ContinuedAsNew"))
    assert body.get("output") == expected.get("output")
    assert body.get("error") == expected.get("error")
    assert answer.error == expected.get("error")
    assert body.get("customStatus") == expected.get("customStatus")
    got = [_action(a) for a in (body["actions"][0] if body["actions"] else [])]
    assert _leaves([got]) == _leaves(expected["actions"]), "the engine's schema (V3)"
    schema = {"V1": 0, "V2": 1}[case.get("schema", "V1")]
    own = _answer(case["orchestrator"], build_context(last, "sdk", case.get("input"), schema))
    shaped = [[_action(a) for a in group] for group in own.state["actions"]]
    assert shaped == expected["actions"], "the SDK test's own schema"
    if schema == 1:  # V2 and V3 shape actions alike
        assert [got] == expected["actions"]


def test_every_data_file_names_its_source_tests() -> None:
    assert len(FILES) >= 8
    for path in FILES:
        raw = json.loads(path.read_text())
        assert raw["source"]["repo"] == "Azure/azure-functions-durable-python"
        assert raw["source"]["path"].startswith("tests/orchestrator/test_")
        assert raw["cases"] and all(c["test"].startswith("test_") for c in raw["cases"])
