"""The store's shared core: clients, clock, reads and ETag-guarded merges of a job record."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Self

from azure.data.tables.aio import TableClient, TableServiceClient

from ..errors import JobNotFound
from ..storage import StorageClients
from . import _direct
from . import _model as m
from ._errors import mapped_errors

__all__ = ["TX_MAX", "StoreBase"]

TX_MAX = 100  # operations per entity-group transaction (service limit)
_CLAIMABLE_MAX = 256  # records kept for a claim (prompts included): a small, bounded cache
_COMMITTED_MAX = 64  # records kept for the intake that follows a submission: likewise


class StoreBase:
    """Holds the table clients; the mixins of `JobStore` build on these few methods.

    A store closes its `TableServiceClient` only if it made it (`JobStore.from_config`);
    a client passed in belongs to the caller, who may share it with other components.
    """

    def __init__(
        self,
        service: TableServiceClient,
        prefix: str = "relay",
        *,
        clock: Callable[[], float] = time.time,
        max_conflict_retries: int = 8,
        owned: StorageClients | None = None,
    ) -> None:
        self._service = service
        self._names = (f"{prefix}jobs", f"{prefix}userjobs")
        self._jobs: TableClient = service.get_table_client(self._names[0])
        self._index: TableClient = service.get_table_client(self._names[1])
        self._clock = clock
        self._retries = max_conflict_retries
        self._owned = owned
        # Records this process has just moved to `starting` (request included, with the
        # ETag of that write), for the claim that usually follows in the same process.
        # Only ever used under If-Match: a record changed since is refused (412) and read
        # again, so a stale entry costs one round trip and can never be acted on.
        self._claimable: OrderedDict[str, m.JobRecord] = OrderedDict()
        # Records this process has just created (`commit_job`), for the queue intake that
        # usually follows in the same process (the host wakes its listener on the output
        # binding's write). The same rule: used only under If-Match, so a job changed
        # since (canceled) is refused and read again; never acted on stale.
        self._committed: OrderedDict[str, m.JobRecord] = OrderedDict()

    def _keep_claimable(self, record: m.JobRecord) -> None:
        _keep(self._claimable, record, _CLAIMABLE_MAX)

    def _keep_committed(self, record: m.JobRecord) -> None:
        _keep(self._committed, record, _COMMITTED_MAX)

    def take_committed(self, job_id: str) -> m.JobRecord | None:
        """The record as this process created it, once (None if not kept here).

        Only for an ETag-guarded write (`transition_from`): the job may have changed since.
        """
        return self._committed.pop(job_id, None)

    def _stamp(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def ensure_tables(self) -> None:
        with mapped_errors():
            for name in self._names:
                await self._service.create_table_if_not_exists(name)

    async def ping(self) -> bool:
        """Readiness: the jobs table answers a one-row query."""
        with mapped_errors():
            async for _ in self._jobs.query_entities(
                "PartitionKey eq @pk", parameters={"pk": "ping"}, results_per_page=1
            ):
                break
        return True

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()

    async def __aenter__(self) -> Self:
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
            # The SDK's MERGE with If-Match, built lean (relay.store._direct): same request,
            # same errors (412 -> ResourceModifiedError -> ConcurrencyConflict).
            return await _direct.update_entity(self._jobs, entity, etag)


def _keep(cache: OrderedDict[str, m.JobRecord], record: m.JobRecord, limit: int) -> None:
    cache.pop(record.job_id, None)
    cache[record.job_id] = record
    while len(cache) > limit:
        cache.popitem(last=False)
