"""The status table, enumerated: every pair is either allowed or refused, as documented."""

from __future__ import annotations

import itertools

import pytest

from relay import _state
from relay.errors import InvalidTransition

ALLOWED = {
    ("queued", "starting"),
    ("queued", "canceled"),
    ("queued", "failed"),
    ("starting", "running"),
    ("starting", "canceled"),
    ("starting", "failed"),
    ("running", "running"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "canceled"),
}
STATUSES = ["queued", "starting", "running", "completed", "failed", "canceled"]


def test_statuses_are_the_six() -> None:
    assert list(_state.STATUSES) == STATUSES


@pytest.mark.parametrize(("current", "new"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair(current: str, new: str) -> None:
    if (current, new) in ALLOWED:
        _state.check_transition(current, new)
    else:
        with pytest.raises(InvalidTransition) as info:
            _state.check_transition(current, new)
        assert info.value.current == current
        assert info.value.new == new
        assert info.value.code == "invalid_transition"


def test_terminal_and_active() -> None:
    assert {"completed", "failed", "canceled"} == _state.TERMINAL
    assert {"queued", "starting", "running"} == _state.ACTIVE
    assert all(_state.is_terminal(s) for s in _state.TERMINAL)
    assert not any(_state.is_terminal(s) for s in _state.ACTIVE)


def test_no_way_back_to_queued() -> None:
    assert not any("queued" in nxt for nxt in _state.TRANSITIONS.values())


@pytest.mark.parametrize("bad", ["", "QUEUED", "done", "paused"])
def test_unknown_statuses_refused(bad: str) -> None:
    with pytest.raises(InvalidTransition):
        _state.check_transition(bad, "running")
    with pytest.raises(InvalidTransition):
        _state.check_transition("running", bad)
