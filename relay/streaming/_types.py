"""The run's boundaries as small protocols, its configuration and its outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..batcher import Batch
from ..errors import LLMError
from ..jobs import Profile, Target
from ..llm import StreamEvent
from ..store import JobRecord, Metrics, Run

__all__ = ["LLMSource", "RunResult", "RunStore", "Sender", "StreamConfig"]


class Sender(Protocol):
    async def send(self, target: Target, name: str, arguments: Sequence[Any]) -> None: ...


class LLMSource(Protocol):
    def stream(self, request: Mapping[str, Any]) -> AsyncIterator[StreamEvent]: ...


class RunStore(Protocol):
    """The part of `relay.store.JobStore` a run uses (unit tests pass a fake)."""

    async def claim_attempt(
        self, job_id: str, ready: Callable[[JobRecord], None] | None = None
    ) -> Run: ...
    async def flush(self, run: Run, batches: Sequence[Batch], metrics: Metrics) -> Run: ...
    async def note_error(
        self, run: Run, error: LLMError, metrics: Metrics, delivery: str = "ok"
    ) -> Run: ...
    async def finish(
        self,
        run: Run,
        status: str,
        *,
        usage: Mapping[str, int] | None = None,
        metrics: Metrics | None = None,
        error: Any = None,
        delivery: str = "ok",
    ) -> JobRecord: ...
    async def get_job(self, job_id: str, *, with_request: bool = True) -> JobRecord: ...
    async def transition(
        self, job_id: str, new_status: str, *, etag: str | None = None, **fields: Any
    ) -> JobRecord: ...


@dataclass(frozen=True)
class StreamConfig:
    window_s: float
    max_bytes: int
    profile: Profile = "chat"
    default_max_tokens: int = 1024
    heartbeat_s: float = 2.0  # idle runs flush this often (cancel checks, liveness)
    drain_timeout_s: float = 15.0  # longest wait for the last sends at the end of a run
    final_send_timeout_s: float = 5.0  # longest wait for a run's final status message


@dataclass(frozen=True)
class RunResult:
    """How a run ended. status: completed | canceled | superseded | stopped | failed.

    `metrics.messages` counts delta messages SignalR accepted; `last_seq` counts batches
    recorded (the two differ when delivery is degraded).
    """

    job_id: str
    status: str
    attempt: int
    last_seq: int = 0
    delivery: str = "ok"
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    metrics: Metrics = field(default_factory=Metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "status": self.status,
            "attempt": self.attempt,
            "lastSeq": self.last_seq,
            "delivery": self.delivery,
            "finishReason": self.finish_reason,
            "usage": self.usage,
            "metrics": self.metrics.to_dict(),
        }
