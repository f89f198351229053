"""A job's attempts: claim one, record its batches, note its error, finish it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from .. import _state
from ..errors import (
    AttemptSuperseded,
    ConcurrencyConflict,
    InvalidTransition,
    JobCanceled,
    RelayError,
    RunStopped,
)
from . import _model as m
from ._base import TX_MAX, StoreBase
from ._errors import mapped_errors
from ._tx import submit_transaction

__all__ = ["RecordedBatch", "RunsMixin"]


class RecordedBatch(Protocol):
    """What `flush` needs of a batch (relay.batcher.Batch fits)."""

    @property
    def seq(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def deltas(self) -> int: ...


class RunsMixin(StoreBase):
    async def claim_attempt(
        self, job_id: str, ready: Callable[[m.JobRecord], None] | None = None
    ) -> m.Run:
        """Start a new attempt: attempt + 1, status running, lastSeq 0 (ETag-guarded).

        Two concurrent claims never get the same attempt number: the loser re-reads and
        claims the next one, and the earlier attempt is then superseded at its next flush.
        A queued job (its trigger's "starting" write was lost) goes through starting in the
        same write; both hops are checked against the state table. When this process moved
        the job to starting (`transition_from`), the first try uses that record and its
        ETag instead of reading it: one round trip fewer, the same guarded write.
        `ready(record)` is called once the record passed the checks, just before each try's
        write (the run uses it to open the model request while the claim is written).
        """
        # First try: the record this process moved to starting, if any (no read). Its
        # content is current exactly when its ETag is, and the claim's write is guarded by
        # that ETag: a changed record (a cancel, another claim) is refused and read again.
        kept = self._claimable.pop(job_id, None)
        for _ in range(self._retries):
            record = kept if kept is not None else await self._read(job_id, with_request=True)
            kept = None
            if record.status == _state.CANCELED or (
                record.cancel_requested and record.status not in _state.TERMINAL
            ):
                raise JobCanceled("the job was canceled")
            current = record.status
            if current == _state.QUEUED:
                _state.check_transition(current, _state.STARTING)
                current = _state.STARTING
            _state.check_transition(current, _state.RUNNING)
            now = self._stamp()
            props: dict[str, Any] = {
                "status": _state.RUNNING,
                "attempt": record.attempt + 1,
                "lastSeq": 0,
                "updatedAt": now,
                "metrics": "",
                "delivery": "ok",
                **m.error_props(None),
            }
            if record.started_at is None:
                props["startedAt"] = now
            if ready is not None:
                ready(record)
                # Let the request `ready` opened reach its transport before this write's
                # request is built: the model's time to first token then overlaps the
                # claim's CPU and round trip instead of following them.
                await asyncio.sleep(0)
            try:
                new_etag = await self._merge(job_id, props, record.etag)
            except ConcurrencyConflict:
                continue
            claimed = replace(
                record,
                status=_state.RUNNING,
                attempt=record.attempt + 1,
                last_seq=0,
                started_at=record.started_at or now.timestamp(),
                updated_at=now.timestamp(),
                metrics=m.Metrics(),
                delivery="ok",
                error=None,
                etag=new_etag,
            )
            return m.Run(job_id, claimed.attempt, new_etag, claimed)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting claims")

    def _check_run(self, run: m.Run, record: m.JobRecord) -> None:
        """Raise the reason `run` may no longer write (or return if it still may)."""
        if record.attempt != run.attempt:
            raise AttemptSuperseded(run.attempt, record.attempt)
        if record.status == _state.CANCELED or record.cancel_requested:
            raise JobCanceled("the job was canceled")
        if record.status in _state.TERMINAL:
            raise RunStopped(f"the job is already {record.status}")

    async def flush(
        self, run: m.Run, batches: Sequence[RecordedBatch], metrics: m.Metrics
    ) -> m.Run:
        """Record batches and the record's lastSeq/metrics in one transaction per 99 rows.

        On a lost If-Match the record is re-read: a cancel raises `JobCanceled`, a newer
        attempt `AttemptSuperseded`, a finished job `RunStopped`; any other change (a
        harmless merge) is retried with the new etag. Nothing of a refused run is recorded.
        """
        etag = run.etag
        chunks = [batches[i : i + TX_MAX - 1] for i in range(0, len(batches), TX_MAX - 1)]
        for chunk in chunks or [[]]:
            etag = await self._flush_chunk(run, chunk, metrics, etag)
        return replace(run, etag=etag)

    async def _flush_chunk(
        self, run: m.Run, chunk: Sequence[RecordedBatch], metrics: m.Metrics, etag: str
    ) -> str:
        now = self._stamp()
        ops: list[Any] = [
            (
                "upsert",
                {
                    "PartitionKey": run.job_id,
                    "RowKey": m.event_row(run.attempt, b.seq),
                    "text": b.text,
                    "deltas": b.deltas,
                    "at": now,
                },
                {"mode": UpdateMode.REPLACE},
            )
            for b in chunk
        ]
        props: dict[str, Any] = {
            "PartitionKey": run.job_id,
            "RowKey": m.RECORD_ROW,
            "metrics": json.dumps(metrics.to_dict()),
            "updatedAt": now,
        }
        if chunk:
            props["lastSeq"] = chunk[-1].seq
        for _ in range(3):
            guard: dict[str, Any] = {
                "mode": UpdateMode.MERGE,
                "etag": etag,
                "match_condition": MatchConditions.IfNotModified,
            }
            try:
                with mapped_errors():
                    result = await submit_transaction(self._jobs, [*ops, ("update", props, guard)])
                return str(result[-1]["etag"])
            except ConcurrencyConflict:
                record = await self._read(run.job_id)
                self._check_run(run, record)
                etag = record.etag
        raise ConcurrencyConflict("the record kept changing during a flush")

    async def note_error(
        self, run: m.Run, error: RelayError, metrics: m.Metrics, delivery: str = "ok"
    ) -> m.Run:
        """Record a failed attempt's error and metrics; the status stays running (the
        orchestrator decides on a retry or `finalize`). Guarded by the attempt."""
        for _ in range(self._retries):
            record = await self._read(run.job_id)
            if record.attempt != run.attempt:
                raise AttemptSuperseded(run.attempt, record.attempt)
            if record.status in _state.TERMINAL:
                return replace(run, record=record, etag=record.etag)
            props = {
                **m.error_props(error),
                "metrics": json.dumps(metrics.to_dict()),
                "delivery": delivery,
                "updatedAt": self._stamp(),
            }
            try:
                etag = await self._merge(run.job_id, props, record.etag)
            except ConcurrencyConflict:
                continue
            return replace(run, etag=etag)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting writes")

    async def finish(
        self,
        run: m.Run,
        status: str,
        *,
        usage: Mapping[str, int] | None = None,
        metrics: m.Metrics | None = None,
        error: RelayError | Mapping[str, str] | None = None,
        delivery: str = "ok",
    ) -> m.JobRecord:
        """End the run's attempt with a terminal status; `AttemptSuperseded` if a newer
        attempt owns the job, `InvalidTransition` if the job already ended."""
        if status not in _state.TERMINAL:
            raise InvalidTransition(_state.RUNNING, status)
        for _ in range(self._retries):
            record = await self._read(run.job_id)
            if record.attempt != run.attempt:
                raise AttemptSuperseded(run.attempt, record.attempt)
            _state.check_transition(record.status, status)
            now = self._stamp()
            props: dict[str, Any] = {
                "status": status,
                "completedAt": now,
                "updatedAt": now,
                "delivery": delivery,
                **m.error_props(error),
            }
            if usage is not None:
                props["usage"] = json.dumps(dict(usage))
            if metrics is not None:
                props["metrics"] = json.dumps(metrics.to_dict())
            try:
                await self._merge(run.job_id, props, record.etag)
            except ConcurrencyConflict:
                continue
            return await self._read(run.job_id)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting writes")
