"""Erasure and the sweeper's queries, kept apart from the hot path of `JobStore`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from .. import _state
from ..errors import ConcurrencyConflict, InvalidTransition, JobNotFound
from . import _model as m
from ._base import TX_MAX, StoreBase
from ._errors import mapped_errors
from ._tx import submit_transaction

__all__ = ["MaintenanceMixin"]


class MaintenanceMixin(StoreBase):
    async def _delete_rows(self, job_id: str, *, keep_record: bool) -> int:
        """Delete a job's partition (all but the record if `keep_record`), 100 per call."""
        query = "PartitionKey eq @pk" + (" and RowKey ne @rec" if keep_record else "")
        with mapped_errors():
            rows = self._jobs.query_entities(
                query, parameters={"pk": job_id, "rec": m.RECORD_ROW}, select=["RowKey"]
            )
            keys = [str(row["RowKey"]) async for row in rows]
            for start in range(0, len(keys), TX_MAX):
                ops: list[Any] = [
                    ("delete", {"PartitionKey": job_id, "RowKey": key})
                    for key in keys[start : start + TX_MAX]
                ]
                await submit_transaction(self._jobs, ops)
        return len(keys)

    async def erase(self, job_id: str) -> m.JobRecord:
        """Remove a finished job's prompt and transcript; keep its status and metrics.

        Only terminal jobs can be erased (`InvalidTransition` otherwise: cancel first), so
        no run writes transcript rows after the erasure. The record is rewritten first,
        so the prompt is gone even if deleting the rows fails half-way; erasing again
        finishes the job.
        """
        for _ in range(self._retries):
            record = await self._read(job_id)
            if record.status not in _state.TERMINAL:
                raise InvalidTransition(record.status, "erased")
            with mapped_errors():
                entity = await self._jobs.get_entity(job_id, m.RECORD_ROW)
            kept = {k: v for k, v in entity.items() if not k.startswith("req")}
            kept.update(reqInline=0, reqRows=0, erased=True, updatedAt=self._stamp())
            try:
                with mapped_errors():
                    await self._jobs.update_entity(
                        kept,
                        mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except ConcurrencyConflict:
                continue
            await self._delete_rows(job_id, keep_record=True)
            return await self._read(job_id)
        raise ConcurrencyConflict(f"gave up after {self._retries} conflicting writes")

    async def purge_older_than(self, cutoff: datetime | float) -> int:
        """Delete finished jobs completed before `cutoff` (record, rows, index entry).

        Active jobs are never purged here: the sweeper fails stuck ones first.
        """
        purged = 0
        with mapped_errors():
            rows = self._jobs.query_entities(
                "RowKey eq @rec and completedAt lt @cutoff",
                parameters={"rec": m.RECORD_ROW, "cutoff": m.to_datetime(cutoff)},
                select=["PartitionKey", "status", "owner", "indexRow"],
            )
            found = [row async for row in rows]
        for row in found:
            if row.get("status") not in _state.TERMINAL:
                continue
            job_id = str(row["PartitionKey"])
            with mapped_errors():
                if row.get("indexRow"):
                    await self._index.delete_entity(
                        m.owner_key(str(row.get("owner", ""))), str(row["indexRow"])
                    )
            await self._delete_rows(job_id, keep_record=False)
            purged += 1
        return purged

    async def stuck_jobs(self, status: str, older_than: datetime | float) -> list[m.JobRecord]:
        """Jobs in `status` whose last write is older than `older_than` (for the sweeper)."""
        if status not in _state.STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with mapped_errors():
            rows = self._jobs.query_entities(
                "RowKey eq @rec and status eq @status and updatedAt lt @t",
                parameters={"rec": m.RECORD_ROW, "status": status, "t": m.to_datetime(older_than)},
                select=["PartitionKey"],
            )
            ids = [str(row["PartitionKey"]) async for row in rows]
        records: list[m.JobRecord] = []
        for job_id in ids:
            try:
                records.append(await self._read(job_id))
            except JobNotFound:
                continue
        return records
