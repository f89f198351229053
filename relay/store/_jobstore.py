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
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.data.tables import UpdateMode

from .. import _state
from ..errors import ConcurrencyConflict, ValidationError
from ..jobs import JobRequest, Target
from ..settings import StorageConfig
from ..storage import StorageClients
from . import _direct
from . import _model as m
from ._errors import mapped_errors
from ._maintenance import MaintenanceMixin
from ._runs import RunsMixin
from ._transcripts import TranscriptsMixin
from ._tx import submit_transaction

__all__ = ["JobStore", "NewJob"]

_OVERFLOW_ROWS_PER_TX = 16  # 16 x 60 KB stays well under the 4 MiB transaction payload


@dataclass(frozen=True)
class NewJob:
    """A job's rows before they are written (`JobStore.new_job`)."""

    job_id: str
    entity: dict[str, Any]  # the record
    index: dict[str, Any]  # the owner's index row
    overflow: tuple[str, ...]  # request pieces past the record's inline ones


async def _all(calls: list[Awaitable[Any]]) -> None:
    """Await side by side; the first failure is raised once all have ended."""
    for outcome in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


class JobStore(RunsMixin, TranscriptsMixin, MaintenanceMixin):
    @classmethod
    def from_config(cls, config: StorageConfig, prefix: str = "relay") -> JobStore:
        clients = StorageClients(config)
        return cls(clients.tables, prefix, owned=clients)

    async def create_job(
        self, job_id: str, owner: str, request: JobRequest, target: Target, now: datetime | float
    ) -> m.JobRecord:
        """Record a new job, status queued, and list it under its owner."""
        new = self.new_job(job_id, owner, request, target, now)
        await self.stage_job(new)
        return await self.commit_job(new)

    def new_job(
        self, job_id: str, owner: str, request: JobRequest, target: Target, now: datetime | float
    ) -> NewJob:
        """The rows of a new job (nothing written): `stage_job`, then `commit_job`."""
        if not m.valid_job_id(job_id):
            raise ValidationError("jobId", "must be 1-100 of A-Z a-z 0-9 _ -")
        pieces = m.split_units(json.dumps(request.to_dict(), ensure_ascii=False))
        inline, overflow = pieces[: m.INLINE_PIECES], pieces[m.INLINE_PIECES :]
        now = m.to_datetime(now)
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
        index = {"PartitionKey": m.owner_key(owner), "RowKey": index_row, "jobId": job_id}
        return NewJob(job_id, entity, index, tuple(overflow))

    async def stage_job(self, new: NewJob) -> None:
        """Write a new job's index and overflow rows (side by side: they are independent).

        A staged job does not exist yet: a dangling index row is skipped when listing, and
        overflow rows without a record are never read. Independent writes of the caller
        may run side by side with this one.
        """
        writes: list[Awaitable[Any]] = [_direct.upsert_entity(self._index, new.index)]
        for start in range(0, len(new.overflow), _OVERFLOW_ROWS_PER_TX):
            ops: list[Any] = [
                (
                    "upsert",
                    {"PartitionKey": new.job_id, "RowKey": m.request_row(n), "piece": piece},
                    {"mode": UpdateMode.REPLACE},
                )
                for n, piece in enumerate(
                    new.overflow[start : start + _OVERFLOW_ROWS_PER_TX], start=start
                )
            ]
            writes.append(submit_transaction(self._jobs, ops))
        with mapped_errors():
            await _all(writes)

    async def commit_job(self, new: NewJob) -> m.JobRecord:
        """Write the record, once `stage_job` has returned: this is what makes the job
        exist (it may run side by side with admission's counts; a refused job's record is
        then taken back with `discard_job`). Create, not upsert: an existing id is refused
        (`ConcurrencyConflict`)."""
        with mapped_errors():
            etag = await _direct.create_entity(self._jobs, new.entity)
        record = m.record_from_entity(new.entity, etag, list(new.overflow))
        self._keep_committed(record)  # the intake that follows skips its read
        return record

    async def discard_job(self, new: NewJob) -> None:
        """Delete the record `commit_job` wrote for a job that was then refused (idempotent).

        Only for a job that was never enqueued: nothing else knows its id, so nothing else
        can have written its record. A record left behind by a failed discard is `queued`
        without an admission row, which the sweeper fails instead of enqueueing.
        """
        self._committed.pop(new.job_id, None)
        with mapped_errors():
            await _direct.delete_entity(self._jobs, new.job_id, m.RECORD_ROW)

    async def unstage_job(self, new: NewJob) -> None:
        """Delete a staged job's rows (best effort, idempotent): it was not admitted."""
        deletes: list[Awaitable[Any]] = [
            _direct.delete_entity(self._index, new.index["PartitionKey"], new.index["RowKey"])
        ]
        deletes += [
            _direct.delete_entity(self._jobs, new.job_id, m.request_row(n))
            for n in range(len(new.overflow))
        ]
        with mapped_errors():
            await _all(deletes)

    async def transition(
        self, job_id: str, new_status: str, *, etag: str | None = None, **fields: Any
    ) -> m.JobRecord:
        """Move a job to `new_status` (checked against the state table).

        With `etag`, the move happens only if the record is unchanged since that read
        (`ConcurrencyConflict` otherwise); without, a lost race is retried on a fresh read,
        and the state table is checked again against what the winner wrote.
        Fields: error, usage, metrics, delivery, cancel_requested.
        A caller that holds the record it read should use `transition_from` (no re-read).
        """
        for _ in range(self._retries):
            record = await self._read(job_id)
            if etag is not None and record.etag != etag:
                raise ConcurrencyConflict("the record changed since it was read")
            _state.check_transition(record.status, new_status)
            props = self._transition_props(record, new_status, fields)
            try:
                await self._merge(job_id, props, record.etag)
            except ConcurrencyConflict:
                if etag is not None:
                    raise
                continue
            return await self._read(job_id)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting writes")

    async def transition_from(
        self, record: m.JobRecord, new_status: str, **fields: Any
    ) -> m.JobRecord:
        """`transition(record.job_id, new_status, etag=record.etag, ...)` in one round trip.

        The caller's record is what the state table is checked against; the write is one
        merge guarded by its ETag, so a record changed since that read is refused with
        `ConcurrencyConflict` exactly as with `transition(etag=...)`. Returns the record as
        written (new status, times, fields and ETag), without reading it back. A record
        moved to `starting` with its request is also kept for `claim_attempt` (see there).
        """
        _state.check_transition(record.status, new_status)
        props = self._transition_props(record, new_status, fields)
        new_etag = await self._merge(record.job_id, props, record.etag)
        moved = _applied(record, props, new_etag)
        if new_status == _state.STARTING and moved.request is not None:
            self._keep_claimable(moved)  # the claim that follows skips its read
        return moved

    def _transition_props(
        self, record: m.JobRecord, new_status: str, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        now = self._stamp()
        props: dict[str, Any] = {"status": new_status, "updatedAt": now}
        props.update(_field_props(fields))
        if new_status in _state.TERMINAL:
            props["completedAt"] = now
        if new_status == _state.RUNNING and record.started_at is None:
            props["startedAt"] = now
        return props

    async def request_cancel(self, job_id: str) -> m.JobRecord:
        """Cancel a job: queued/starting jobs end `canceled` at once; a running job gets
        `cancel_requested` (its run sees it at its next flush and ends the job `canceled`);
        a finished job is returned unchanged, so cancel is idempotent for the caller."""
        for _ in range(self._retries):
            record = await self._read(job_id)
            now = self._stamp()
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


def _applied(record: m.JobRecord, props: Mapping[str, Any], etag: str) -> m.JobRecord:
    """The record after a merge of `props` (as `record_from_entity` would read it back)."""
    entity: dict[str, Any] = {
        "PartitionKey": record.job_id,
        "owner": record.owner,
        "status": record.status,
        "targetKind": record.target.kind,
        "targetId": record.target.id,
        "attempt": record.attempt,
        "lastSeq": record.last_seq,
        "createdAt": m.to_datetime(record.created_at),
        "usage": json.dumps(record.usage) if record.usage is not None else "",
        "metrics": json.dumps(record.metrics.to_dict()),
        "delivery": record.delivery,
        "cancelRequested": record.cancel_requested,
        "erased": record.erased,
        **m.error_props(record.error),
    }
    for key, value in (
        ("startedAt", record.started_at),
        ("completedAt", record.completed_at),
        ("updatedAt", record.updated_at),
    ):
        if value is not None:
            entity[key] = m.to_datetime(value)
    entity.update(props)
    # The request is not part of any merge: carried over as read (None if not read).
    return replace(m.record_from_entity(entity, etag), request=record.request)


def _field_props(fields: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "error":
            props.update(m.error_props(value))
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
