"""Reading transcripts and listing a user's jobs."""

from __future__ import annotations

import asyncio

from ..errors import JobNotFound, ValidationError
from . import _model as m
from ._base import StoreBase
from ._errors import mapped_errors

__all__ = ["TranscriptsMixin"]


class TranscriptsMixin(StoreBase):
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
