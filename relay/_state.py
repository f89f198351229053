"""Job status transitions, in one literal table (the way h11 keeps its state machine).

    queued ──▶ starting ──▶ running ──▶ completed
      │           │          │  ▲
      │           │          └──┘  a new attempt claims the job (retry)
      └───────────┴──────────┴────▶ canceled | failed

Decisions, with their reasons:
- No move goes backwards. In particular `starting -> queued` is refused: once the queue
  trigger has recorded `starting`, an orchestration with the job's id may already exist.
  A redelivered queue message finds the job `starting` and re-issues the (idempotent,
  instance id = job id) start instead of re-queueing; a job that never starts is failed
  by the sweeper (`starting -> failed`).
- `running -> running` is the one self-loop: every attempt (activity retry) claims the
  job again with a higher attempt number; the attempt number, not the status, tells
  attempts apart.
- Terminal states go nowhere, so a late or duplicate writer (a retried activity, a
  sweeper racing a finishing run) can never revive or re-finish a job.
"""

from __future__ import annotations

from typing import Final, Literal

from .errors import InvalidTransition

__all__ = [
    "ACTIVE",
    "CANCELED",
    "COMPLETED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STARTING",
    "STATUSES",
    "TERMINAL",
    "TRANSITIONS",
    "Status",
    "check_transition",
    "is_terminal",
]

Status = Literal["queued", "starting", "running", "completed", "failed", "canceled"]

QUEUED: Final = "queued"
STARTING: Final = "starting"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELED: Final = "canceled"

# fmt: off
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    QUEUED:    frozenset({STARTING, CANCELED, FAILED}),
    STARTING:  frozenset({RUNNING, CANCELED, FAILED}),
    RUNNING:   frozenset({RUNNING, COMPLETED, FAILED, CANCELED}),
    COMPLETED: frozenset(),
    FAILED:    frozenset(),
    CANCELED:  frozenset(),
}
# fmt: on

STATUSES: Final[tuple[str, ...]] = tuple(TRANSITIONS)
TERMINAL: Final[frozenset[str]] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
ACTIVE: Final[frozenset[str]] = frozenset(STATUSES) - TERMINAL


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def check_transition(current: str, new: str) -> None:
    """Raise `InvalidTransition` unless the table allows `current -> new`.

    Unknown statuses (a corrupt record, a typo) are refused the same way.
    """
    if new not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(current, new)
