"""`JobStore`: job records, attempts and transcripts on Azure Table storage.

Every write to a job record is guarded by its ETag (If-Match), and every status change is
checked against `relay._state`, so a late or duplicate writer (a redelivered activity, a
sweeper racing a finishing run) can never move a job backwards. A run's transcript rows and
the record's lastSeq/metrics are written in one entity-group transaction per flush (same
partition), so a transcript row exists exactly when the record says it was recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .. import _state
from ..errors import (
    AttemptSuperseded,
    ConcurrencyConflict,
    InvalidTransition,
    JobCanceled,
    JobNotFound,
    RelayError,
    RunStopped,
    ValidationError,
)
from ..jobs import JobRequest, Target
from ..settings import StorageConfig
from ..storage import StorageClients
from . import _model as m
from ._errors import mapped_errors
from ._maintenance import MaintenanceMixin

__all__ = ["JobStore", "RecordedBatch"]

_TX_MAX = 100  # operations per entity-group transaction (service limit)
_OVERFLOW_ROWS_PER_TX = 16  # 16 x 60 KB stays well under the 4 MiB transaction payload


class RecordedBatch(Protocol):
    """What `flush` needs of a batch (relay.batcher.Batch fits)."""

    @property
    def seq(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def deltas(self) -> int: ...


def _error_props(error: RelayError | Mapping[str, str] | None) -> dict[str, str]:
    if error is None:
        return {"errorCode": "", "errorMessage": ""}
    if isinstance(error, RelayError):
        return {"errorCode": error.code, "errorMessage": error.message[:1000]}
    return {"errorCode": str(error["code"]), "errorMessage": str(error.get("message", ""))[:1000]}


class JobStore(MaintenanceMixin):
    def __init__(
        self,
        service: TableServiceClient,
        prefix: str = "relay",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_conflict_retries: int = 8,
        owned: StorageClients | None = None,
    ) -> None:
        self._service = service
        self._names = (f"{prefix}jobs", f"{prefix}userjobs")
        self._jobs: TableClient = service.get_table_client(self._names[0])
        self._index: TableClient = service.get_table_client(self._names[1])
        self._now = clock
        self._retries = max_conflict_retries
        self._owned = owned

    @classmethod
    def from_config(cls, config: StorageConfig, prefix: str = "relay") -> JobStore:
        clients = StorageClients(config)
        return cls(clients.tables(), prefix, owned=clients)

    async def ensure_tables(self) -> None:
        with mapped_errors():
            for name in self._names:
                await self._service.create_table_if_not_exists(name)

    async def aclose(self) -> None:
        await self._service.close()
        if self._owned is not None:
            await self._owned.aclose()

    async def __aenter__(self) -> JobStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- reading ---------------------------------------------------------------------

    async def _read(self, job_id: str, *, with_request: bool = False) -> m.JobRecord:
        if not m.valid_job_id(job_id):
            raise JobNotFound("no such job")
        with mapped_errors():
            entity = await self._jobs.get_entity(job_id, m.RECORD_ROW)
            overflow: list[str] | None = None
            if with_request:
                overflow = []
                if int(entity.get("reqRows") or 0) and not entity.get("erased"):
                    rows = self._jobs.query_entities(
                        "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                        parameters={"pk": job_id, "lo": "r|", "hi": "r|~"},
                    )
                    overflow = [str(row.get("piece") or "") async for row in rows]
        return m.record_from_entity(entity, str(entity.metadata["etag"]), overflow)

    async def get_job(self, job_id: str, *, with_request: bool = True) -> m.JobRecord:
        """The record (request included unless asked not to); `JobNotFound` if absent."""
        return await self._read(job_id, with_request=with_request)

    # --- writing ---------------------------------------------------------------------

    async def _merge(self, job_id: str, props: Mapping[str, Any], etag: str) -> str:
        entity = {"PartitionKey": job_id, "RowKey": m.RECORD_ROW, **props}
        with mapped_errors():
            meta = await self._jobs.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        return str(meta["etag"])

    async def create_job(
        self, job_id: str, owner: str, request: JobRequest, target: Target, now: datetime
    ) -> m.JobRecord:
        """Record a new job, status queued, and list it under its owner."""
        if not m.valid_job_id(job_id):
            raise ValidationError("jobId", "must be 1-100 of A-Z a-z 0-9 _ -")
        pieces = m.split_units(json.dumps(request.to_dict(), ensure_ascii=False))
        inline, overflow = pieces[: m.INLINE_PIECES], pieces[m.INLINE_PIECES :]
        index_row = m.index_row(now, job_id)
        entity: dict[str, Any] = {
            "PartitionKey": job_id,
            "RowKey": m.RECORD_ROW,
            "owner": owner,
            "status": _state.QUEUED,
            "targetKind": target.kind,
            "targetId": target.id,
            "attempt": 0,
            "lastSeq": 0,
            "createdAt": now,
            "updatedAt": now,
            "cancelRequested": False,
            "erased": False,
            "delivery": "ok",
            "indexRow": index_row,
            "reqInline": len(inline),
            "reqRows": len(overflow),
            **{f"req{i}": piece for i, piece in enumerate(inline)},
        }
        with mapped_errors():
            # Index and overflow first: a dangling index row is skipped when listing, and
            # the record (written last) is what makes the job exist.
            await self._index.upsert_entity(
                {"PartitionKey": m.owner_key(owner), "RowKey": index_row, "jobId": job_id}
            )
            for start in range(0, len(overflow), _OVERFLOW_ROWS_PER_TX):
                ops: list[Any] = [
                    (
                        "upsert",
                        {"PartitionKey": job_id, "RowKey": m.request_row(n), "piece": piece},
                        {"mode": UpdateMode.REPLACE},
                    )
                    for n, piece in enumerate(
                        overflow[start : start + _OVERFLOW_ROWS_PER_TX], start=start
                    )
                ]
                await self._jobs.submit_transaction(ops)
            meta = await self._jobs.create_entity(entity)
        return m.record_from_entity(entity, str(meta["etag"]), overflow)

    async def transition(
        self, job_id: str, new_status: str, *, etag: str | None = None, **fields: Any
    ) -> m.JobRecord:
        """Move a job to `new_status` (checked against the state table).

        With `etag`, the move happens only if the record is unchanged since that read
        (`ConcurrencyConflict` otherwise); without, a lost race is retried on a fresh read,
        and the state table is checked again against what the winner wrote.
        Fields: error, usage, metrics, delivery, cancel_requested.
        """
        for _ in range(self._retries):
            record = await self._read(job_id)
            if etag is not None and record.etag != etag:
                raise ConcurrencyConflict("the record changed since it was read")
            _state.check_transition(record.status, new_status)
            now = self._now()
            props: dict[str, Any] = {"status": new_status, "updatedAt": now}
            props.update(_field_props(fields))
            if new_status in _state.TERMINAL:
                props["completedAt"] = now
            if new_status == _state.RUNNING and record.started_at is None:
                props["startedAt"] = now
            try:
                await self._merge(job_id, props, record.etag)
            except ConcurrencyConflict:
                if etag is not None:
                    raise
                continue
            return await self._read(job_id)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting writes")

    async def claim_attempt(self, job_id: str) -> m.Run:
        """Start a new attempt: attempt + 1, status running, lastSeq 0 (ETag-guarded).

        Two concurrent claims never get the same attempt number: the loser re-reads and
        claims the next one, and the earlier attempt is then superseded at its next flush.
        A queued job (its trigger's "starting" write was lost) goes through starting in the
        same write; both hops are checked against the state table.
        """
        for _ in range(self._retries):
            record = await self._read(job_id, with_request=True)
            if record.status == _state.CANCELED or (
                record.cancel_requested and record.status not in _state.TERMINAL
            ):
                raise JobCanceled("the job was canceled")
            current = record.status
            if current == _state.QUEUED:
                _state.check_transition(current, _state.STARTING)
                current = _state.STARTING
            _state.check_transition(current, _state.RUNNING)
            now = self._now()
            props: dict[str, Any] = {
                "status": _state.RUNNING,
                "attempt": record.attempt + 1,
                "lastSeq": 0,
                "updatedAt": now,
                "metrics": "",
                "delivery": "ok",
                **_error_props(None),
            }
            if record.started_at is None:
                props["startedAt"] = now
            try:
                new_etag = await self._merge(job_id, props, record.etag)
            except ConcurrencyConflict:
                continue
            claimed = replace(
                record,
                status=_state.RUNNING,
                attempt=record.attempt + 1,
                last_seq=0,
                started_at=record.started_at or now,
                updated_at=now,
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
        chunks = [batches[i : i + _TX_MAX - 1] for i in range(0, len(batches), _TX_MAX - 1)]
        for chunk in chunks or [[]]:
            etag = await self._flush_chunk(run, chunk, metrics, etag)
        return replace(run, etag=etag)

    async def _flush_chunk(
        self, run: m.Run, chunk: Sequence[RecordedBatch], metrics: m.Metrics, etag: str
    ) -> str:
        now = self._now()
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
                    result = await self._jobs.submit_transaction([*ops, ("update", props, guard)])
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
                **_error_props(error),
                "metrics": json.dumps(metrics.to_dict()),
                "delivery": delivery,
                "updatedAt": self._now(),
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
            now = self._now()
            props: dict[str, Any] = {
                "status": status,
                "completedAt": now,
                "updatedAt": now,
                "delivery": delivery,
                **_error_props(error),
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

    async def request_cancel(self, job_id: str) -> m.JobRecord:
        """Cancel a job: queued/starting jobs end `canceled` at once; a running job gets
        `cancel_requested` (its run sees it at its next flush and ends the job `canceled`);
        a finished job is returned unchanged, so cancel is idempotent for the caller."""
        for _ in range(self._retries):
            record = await self._read(job_id)
            now = self._now()
            if record.status in (_state.QUEUED, _state.STARTING):
                _state.check_transition(record.status, _state.CANCELED)
                props: dict[str, Any] = {
                    "status": _state.CANCELED,
                    "cancelRequested": True,
                    "completedAt": now,
                    "updatedAt": now,
                }
            elif record.status == _state.RUNNING and not record.cancel_requested:
                props = {"cancelRequested": True, "updatedAt": now}
            else:
                return record
            try:
                await self._merge(job_id, props, record.etag)
            except ConcurrencyConflict:
                continue
            return await self._read(job_id)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting writes")

    # --- transcripts -----------------------------------------------------------------

    async def events(
        self, job_id: str, attempt: int, after_seq: int = 0, limit: int = 1000
    ) -> list[m.Event]:
        """Recorded batches of one attempt with seq > after_seq, in seq order."""
        if not m.valid_job_id(job_id):
            raise JobNotFound("no such job")
        lo, hi = m.event_rows_range(attempt, max(after_seq, 0))
        out: list[m.Event] = []
        with mapped_errors():
            rows = self._jobs.query_entities(
                "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
                parameters={"pk": job_id, "lo": lo, "hi": hi},
                select=["RowKey", "text"],
                results_per_page=min(max(limit, 1), 1000),
            )
            async for row in rows:
                seq = int(str(row["RowKey"]).rsplit("|", 1)[1])
                out.append(m.Event(seq, attempt, str(row.get("text") or "")))
                if len(out) >= limit:
                    break
        return out

    async def text(self, job_id: str, attempt: int) -> str:
        """The recorded text of one attempt, concatenated in seq order."""
        return "".join(e.text for e in await self.events(job_id, attempt, 0, 10**9))

    # --- listing ---------------------------------------------------------------------

    async def list_jobs(
        self, owner: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[m.JobRecord], str | None]:
        """The owner's jobs, newest first; pass the returned cursor for the next page."""
        if not 1 <= limit <= 100:
            raise ValidationError("limit", "must be between 1 and 100")
        if cursor is not None and not m.valid_cursor(cursor):
            raise ValidationError("cursor", "is not a cursor this service returned")
        query = "PartitionKey eq @pk" + (" and RowKey gt @after" if cursor else "")
        ids: list[tuple[str, str]] = []
        with mapped_errors():
            rows = self._index.query_entities(
                query,
                parameters={"pk": m.owner_key(owner), "after": cursor or ""},
                results_per_page=limit + 1,
            )
            async for row in rows:
                ids.append((str(row["RowKey"]), str(row["jobId"])))
                if len(ids) > limit:
                    break
        page = ids[:limit]
        next_cursor = page[-1][0] if len(ids) > limit else None
        found = await asyncio.gather(
            *(self._read(job_id) for _, job_id in page), return_exceptions=True
        )
        records: list[m.JobRecord] = []
        for item in found:
            if isinstance(item, m.JobRecord):
                records.append(item)
            elif not isinstance(item, JobNotFound):  # a dangling index row is skipped
                raise item
        return records, next_cursor


def _field_props(fields: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "error":
            props.update(_error_props(value))
        elif key == "usage":
            props["usage"] = json.dumps(dict(value)) if value is not None else ""
        elif key == "metrics":
            props["metrics"] = json.dumps(value.to_dict()) if value is not None else ""
        elif key == "delivery":
            props["delivery"] = "degraded" if value == "degraded" else "ok"
        elif key == "cancel_requested":
            props["cancelRequested"] = bool(value)
        else:
            raise TypeError(f"transition() got an unknown field {key!r}")
    return props
