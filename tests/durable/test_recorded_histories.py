"""SDK test scenarios, reproduced as data, replayed through our episode planner and the SDK.

Each file in data/ lists the episodes of one orchestration: the events that arrive (`in`) and
the events the extension appends for the actions the SDK returns (`out`, with their ids). For
every episode we build the context JSON as the engine does, run the SDK's own handler, and check
that the planner appends exactly the recorded events; the last episode's state must equal the
SDK's expected actions, completion and output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.durable._functions import Registry
from local.durable._replay import (
    EVENT,
    ShimState,
    build_context,
    event,
    parse_answer,
    plan_episode,
    take_batch,
)

from .apps import FUNCTIONS

DATA = Path(__file__).parent / "data"
BASE = datetime(2024, 1, 1, tzinfo=UTC)
NAMES = {v: k for k, v in EVENT.items()}
HANDLERS = Registry(FUNCTIONS).orchestrators


def _run(handler: Any, context: str) -> Any:
    try:
        return parse_answer(returned=handler(context))
    except Exception as exc:
        return parse_answer(raised=exc)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DATA.glob("*.json") if not p.name.startswith("sdk_")),
    ids=lambda p: p.stem,
)
def test_recorded_history_replays_to_the_sdk_expected_actions(path: Path) -> None:
    case = json.loads(path.read_text())
    handler = HANDLERS[case["orchestrator"]]
    history: list[dict[str, Any]] = []
    state = ShimState()
    answer = None
    for k, episode in enumerate(case["episodes"]):
        now = BASE + timedelta(seconds=k)
        arrived = [event(kind, now, **fields) for kind, fields in episode["in"]]
        if k == 0:
            opened, batch = [event("OrchestratorStarted", now), *arrived], []
        else:
            batch, used = take_batch(state, arrived)
            assert used == len(arrived) and batch == arrived, "one batch per recorded episode"
            opened = [event("OrchestratorStarted", now), *batch]
        answer = _run(handler, build_context(history + opened, "inst", case["input"]))
        plan = plan_episode(state, batch, answer, now, case["orchestrator"])
        got = [
            [NAMES[e["EventType"]], e["EventId"], {f: e.get(f) for f in fields}]
            for e, (_, _, fields) in zip(plan.new_events, episode["out"], strict=False)
        ]
        assert len(plan.new_events) == len(episode["out"]), f"episode {k}: {plan.new_events}"
        assert got == episode["out"], f"episode {k}"
        history += [*opened, *plan.new_events, event("OrchestratorCompleted", now)]
    assert answer is not None
    expected = case["expected"]
    assert answer.error is None
    assert answer.state["isDone"] is expected["isDone"]
    assert answer.state.get("output") == expected["output"]
    assert answer.state["actions"] == expected["actions"]


def test_context_marks_replayed_events_and_sends_schema_v2() -> None:
    now = BASE
    history = [
        event("OrchestratorStarted", now),
        event("ExecutionStarted", now, Name="sequence", Version="", Input=None),
        event("TaskScheduled", now, 0, Name="hello", _mid="private"),
        event("OrchestratorCompleted", now),
        event("OrchestratorStarted", now),
        event("TaskCompleted", now, TaskScheduledId=0, Result='"x"'),
    ]
    context = json.loads(build_context(history, "i", None))
    assert [e["IsPlayed"] for e in context["history"]] == [True] * 4 + [False] * 2
    assert all("_mid" not in e for e in context["history"])
    assert context["isReplaying"] is True
    assert context["upperSchemaVersion"] == 1 and context["upperSchemaVersionNew"] == 2


def test_failure_inside_out_of_proc_data_is_read() -> None:
    state = {"isDone": False, "actions": [[]], "error": "boom"}
    answer = parse_answer(raised=Exception(f"boom\n\n$OutOfProcData$:{json.dumps(state)}"))
    assert answer.error == "boom" and answer.state == state
