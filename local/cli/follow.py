"""The client side of the stream contract, with no I/O (web/contract.js in Python).

Batches arrive as `delta` {jobId, seq, attempt, text}, possibly out of order or twice. A
follower keeps only the highest attempt, applies batches in seq order, drops duplicates,
holds early ones, and reports a gap (to fill from the events endpoint) while a batch is
missing before a held one or behind the last known `lastSeq`. `apply` and `apply_status`
return what became visible: `("text", s)` to append, `("attempt", n)` when a newer attempt
restarts the answer.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["TERMINAL", "Change", "Follower"]

TERMINAL = frozenset({"completed", "failed", "canceled"})
Change = tuple[Literal["text", "attempt"], Any]


class Follower:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.attempt = 0
        self.seq = 0  # last seq applied, in order
        self.parts: list[str] = []
        self.pending: dict[int, str] = {}  # seq -> text, arrived ahead of a gap
        self.status: str | None = None
        self.last_seq: int | None = None
        self.error: Any = None
        self.usage: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _reset(self, attempt: int, out: list[Change]) -> None:
        if self.attempt or self.parts:
            out.append(("attempt", attempt))
        self.attempt, self.seq, self.parts, self.last_seq = attempt, 0, [], None
        self.pending.clear()

    def apply(self, delta: Any) -> list[Change]:
        out: list[Change] = []
        if not isinstance(delta, dict) or delta.get("jobId") != self.job_id:
            return out
        seq, attempt = delta.get("seq"), delta.get("attempt")
        if type(seq) is not int or type(attempt) is not int or attempt < self.attempt:
            return out
        if attempt > self.attempt:
            self._reset(attempt, out)
        if seq <= self.seq or seq in self.pending:
            return out
        self.pending[seq] = str(delta.get("text") or "")
        start = len(self.parts)
        while self.seq + 1 in self.pending:
            self.seq += 1
            self.parts.append(self.pending.pop(self.seq))
        if len(self.parts) > start:
            out.append(("text", "".join(self.parts[start:])))
        return out

    def apply_status(self, status: Any) -> list[Change]:
        """A `status` message, or the status endpoint's answer (same fields)."""
        out: list[Change] = []
        if not isinstance(status, dict) or status.get("jobId", self.job_id) != self.job_id:
            return out
        attempt = status.get("attempt")
        if type(attempt) is int:
            if attempt < self.attempt:
                return out
            if attempt > self.attempt:
                self._reset(attempt, out)
        self.status = str(status.get("status"))
        if type(status.get("lastSeq")) is int:
            self.last_seq = status["lastSeq"]
        self.error = status.get("error") or self.error
        self.usage = status.get("usage") or self.usage
        return out

    def has_gap(self) -> bool:
        return bool(self.pending) or (self.last_seq is not None and self.seq < self.last_seq)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL and not self.has_gap()
