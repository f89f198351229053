"""Task hub state in Azure Storage (Azurite): instance and history tables, control and work queues.

Named like the Azure Storage provider's: tables `{Hub}Instances` and `{Hub}History`, queues
`{hub}-control-00` (one partition) and `{hub}-workitems`. Storage SDK errors are mapped to
`StoreUnavailable` here and re-raised `from exc`.

Instance rows and histories the orchestration runner reads (`cached=True`) are kept in
memory, so an episode of an instance this process has just written costs no read. Coherence
rests on the engine's documented rule of one engine per task hub; storage remains the truth:
- a row enters the cache from a write this process made (with the ETag storage returned) or
  from a cached read during which no write began (a write counter, so a slow read cannot
  put back a row older than a write that overtook it);
- the runner's row writes are conditional on the cached ETag: another writer is detected
  (412), the entry dropped and the episode failed as StoreUnavailable, so its messages are
  redelivered and re-read from storage;
- any failed write drops the instance's entries (the write may have applied or not);
- a finished instance (Completed, Failed, Terminated) is dropped; a restarted process starts
  empty. Status queries from the client API always read storage.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

# The app's lean storage calls, on the path of every orchestration start: an episode's
# history append as an entity-group transaction with the same bytes as the SDK's, without
# the `email` package's ~2.5 ms of CPU per call (_tx); the instance row writes and the
# control/work sends, deletes and renewals as the SDK's own requests through its pipeline,
# without its generated layer's ~0.2 ms of CPU per call (_direct, _direct_queue). That CPU
# is an artifact of Python, not a cost the extension has.
from relay.store import _direct, _direct_queue
from relay.store._tx import submit_transaction

__all__ = ["Message", "StoreUnavailable", "TaskHubStore"]

# Azure Storage queues cap a message's visibility timeout at 7 days.
MAX_VISIBILITY_S = 7 * 24 * 3600 - 60
_CACHE_MAX = 2000  # instances; oldest entries go first
_FINISHED = ("Completed", "Failed", "Terminated", "Canceled")


class StoreUnavailable(Exception):
    """Azure Storage refused or failed a request."""


@dataclass(frozen=True)
class Message:
    id: str
    pop_receipt: str
    body: dict[str, Any]
    dequeue_count: int


@asynccontextmanager
async def _mapped() -> AsyncIterator[None]:
    try:
        yield
    except (ResourceNotFoundError, ResourceExistsError):
        raise
    except AzureError as exc:
        raise StoreUnavailable(f"storage request failed: {type(exc).__name__}") from exc


class TaskHubStore:
    def __init__(self, connection_string: str, hub: str) -> None:
        self.hub = hub
        # use_env_settings=False (aiohttp's trust_env): with it on, every request looks up
        # netrc and proxy settings in a worker thread, a thread hop per storage call on the
        # engine's hot path. The engine stands in for the extension, which does no such thing.
        self._tables = TableServiceClient.from_connection_string(
            connection_string, transport=AioHttpTransport(use_env_settings=False)
        )
        self._queues = QueueServiceClient.from_connection_string(
            connection_string, transport=AioHttpTransport(use_env_settings=False)
        )
        self.instances = self._tables.get_table_client(f"{hub}Instances")
        self.history = self._tables.get_table_client(f"{hub}History")
        self.control = self._queues.get_queue_client(f"{hub.lower()}-control-00")
        self.workitems = self._queues.get_queue_client(f"{hub.lower()}-workitems")
        # instance id -> (row, ETag); instance id -> (execution id, events); see the docstring
        self._rows: dict[str, tuple[dict[str, Any], str]] = {}
        self._histories: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._writes = 0  # writes begun; see _changing

    async def create(self) -> None:
        async with _mapped():
            for table in (self.instances, self.history):
                with suppress(ResourceExistsError):
                    await table.create_table()
            for queue in (self.control, self.workitems):
                with suppress(ResourceExistsError):
                    await queue.create_queue()

    async def close(self) -> None:
        for client in (self.instances, self.history, self.control, self.workitems):
            await client.close()
        await self._tables.close()
        await self._queues.close()

    # --- instances -------------------------------------------------------------------
    def _changing(self, instance_id: str) -> None:
        """A write begins: reads already in flight must not be cached.

        One counter for all instances (bounded memory); a read overtaken by any write is
        simply not cached, which only costs a later read.
        """
        self._writes += 1

    def forget(self, instance_id: str) -> None:
        self._rows.pop(instance_id, None)
        self._histories.pop(instance_id, None)

    def _remember(self, row: dict[str, Any], etag: str | None) -> None:
        instance_id = str(row["PartitionKey"])
        if etag is None or row.get("RuntimeStatus") in _FINISHED:
            self.forget(instance_id)
            return
        self._rows.pop(instance_id, None)
        self._rows[instance_id] = (dict(row), etag)
        while len(self._rows) > _CACHE_MAX:
            self.forget(next(iter(self._rows)))

    async def get_instance(self, instance_id: str, cached: bool = False) -> dict[str, Any] | None:
        if cached and instance_id in self._rows:
            return dict(self._rows[instance_id][0])
        writes = self._writes
        async with _mapped():
            try:
                entity = await self.instances.get_entity(instance_id, "")
            except ResourceNotFoundError:
                return None
        row = dict(entity)
        if cached and self._writes == writes:
            self._remember(row, entity.metadata.get("etag"))
        return row

    async def insert_instance(self, row: dict[str, Any]) -> bool:
        """Create the row; False when one already exists (one round trip for a new id)."""
        instance_id = str(row["PartitionKey"])
        self._changing(instance_id)
        try:
            async with _mapped():
                etag = await _direct.create_entity(self.instances, row)
        except ResourceExistsError:
            return False
        except BaseException:
            self.forget(instance_id)
            raise
        self._remember(row, etag)
        return True

    async def put_instance(self, row: dict[str, Any], checked: bool = False) -> None:
        """Replace the row. `checked`: only if unchanged since this process cached it."""
        instance_id = str(row["PartitionKey"])
        known = self._rows.get(instance_id) if checked else None
        self._changing(instance_id)
        try:
            async with _mapped():
                try:
                    if known is not None:  # PUT with If-Match: the cached ETag
                        etag = await _direct.update_entity(
                            self.instances, row, known[1], replace=True
                        )
                    else:  # PUT without a condition (insert or replace)
                        etag = await _direct.upsert_entity(self.instances, row, replace=True)
                except (ResourceModifiedError, ResourceNotFoundError) as exc:
                    raise StoreUnavailable(
                        "the instance changed in storage since this engine read it "
                        "(is another engine running on this task hub?)"
                    ) from exc
        except BaseException:
            self.forget(instance_id)
            raise
        self._remember(row, etag)

    async def list_instances(self) -> list[dict[str, Any]]:
        async with _mapped():
            return [dict(e) async for e in self.instances.list_entities()]

    async def delete_instance(self, instance_id: str) -> bool:
        self._changing(instance_id)
        self.forget(instance_id)
        async with _mapped():
            found = await self.get_instance(instance_id) is not None
            await self.instances.delete_entity(instance_id, "")
            await self.delete_history(instance_id)
            return found

    # --- history ---------------------------------------------------------------------
    async def load_history(
        self, instance_id: str, execution_id: str, cached: bool = False
    ) -> list[dict[str, Any]]:
        known = self._histories.get(instance_id) if cached else None
        if known is not None and known[0] == execution_id:
            return list(known[1])
        writes = self._writes
        query = "PartitionKey eq @pk and ExecutionId eq @x"
        params = {"pk": instance_id, "x": execution_id}
        async with _mapped():
            rows = [dict(e) async for e in self.history.query_entities(query, parameters=params)]
        rows.sort(key=lambda r: str(r["RowKey"]))
        events = [json.loads(r["Event"]) for r in rows]
        if cached and instance_id in self._rows and self._writes == writes:
            self._histories[instance_id] = (execution_id, list(events))
        return events

    async def append_history(
        self, instance_id: str, execution_id: str, start: int, events: list[dict[str, Any]]
    ) -> None:
        ops: list[Any] = []
        for offset, ev in enumerate(events):
            row = {
                "PartitionKey": instance_id,
                "RowKey": f"{execution_id}.{start + offset:07d}",
                "ExecutionId": execution_id,
                "EventType": int(ev["EventType"]),
                "Event": json.dumps(ev),
            }
            ops.append(("upsert", row))
        known = self._histories.pop(instance_id, None)
        self._changing(instance_id)
        try:
            async with _mapped():
                for at in range(0, len(ops), 100):
                    await submit_transaction(self.history, ops[at : at + 100])
        except BaseException:
            self.forget(instance_id)
            raise
        if start == 0:
            self._histories[instance_id] = (execution_id, list(events))
        elif known is not None and known[0] == execution_id and len(known[1]) == start:
            self._histories[instance_id] = (execution_id, known[1] + list(events))

    async def delete_history(self, instance_id: str) -> None:
        self._changing(instance_id)
        self._histories.pop(instance_id, None)
        async with _mapped():
            keys = [
                ("delete", {"PartitionKey": instance_id, "RowKey": e["RowKey"]})
                async for e in self.history.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": instance_id}, select=["RowKey"]
                )
            ]
            for at in range(0, len(keys), 100):
                await self.history.submit_transaction(keys[at : at + 100])

    # --- queues ----------------------------------------------------------------------
    async def send(self, queue: str, body: dict[str, Any], delay_s: float = 0) -> Message:
        """Enqueue `body`, invisible for `delay_s`.

        The returned message carries the pop receipt of the send, which deletes or renews
        it like a received message's: a message sent invisible is leased to this process
        from birth (see the engine's local dispatch).
        """
        client = self.control if queue == "control" else self.workitems
        delay = max(0, min(int(delay_s + 0.999), MAX_VISIBILITY_S))
        async with _mapped():
            sent = await _direct_queue.send_message(
                client, json.dumps(body), visibility_timeout=delay or None
            )
        return Message(sent.id, sent.pop_receipt or "", body, 0)

    async def receive(self, queue: str, count: int, visibility_s: float) -> list[Message]:
        client = self.control if queue == "control" else self.workitems
        out: list[Message] = []
        if count <= 0:
            return out
        async with _mapped():
            # One GET, as the extension's receive (the SDK's pager asks again until empty).
            received = await _direct_queue.receive_messages(
                client, min(count, 32), max(1, int(visibility_s))
            )
        for msg in received:
            out.append(Message(msg.id, msg.pop_receipt, json.loads(msg.content), msg.dequeue_count))
        return out

    async def delete(self, queue: str, message: Message) -> None:
        client = self.control if queue == "control" else self.workitems
        async with _mapped():
            # Already gone, or our lease expired and another worker owns it now.
            with suppress(ResourceNotFoundError):
                await _direct_queue.delete_message(client, message.id, message.pop_receipt)

    async def extend(self, queue: str, message: Message, visibility_s: float) -> Message:
        """Keep a message invisible while it is being worked on; returns the new receipt."""
        client = self.control if queue == "control" else self.workitems
        async with _mapped():
            receipt, _ = await _direct_queue.update_message(
                client, message.id, message.pop_receipt, max(1, int(visibility_s))
            )
        return Message(message.id, receipt, message.body, message.dequeue_count)
