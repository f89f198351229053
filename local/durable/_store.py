"""Task hub state in Azure Storage (Azurite): instance and history tables, control and work queues.

Named like the Azure Storage provider's: tables `{Hub}Instances` and `{Hub}History`, queues
`{hub}-control-00` (one partition) and `{hub}-workitems`. Storage SDK errors are mapped to
`StoreUnavailable` here and re-raised `from exc`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

__all__ = ["Message", "StoreUnavailable", "TaskHubStore"]

# Azure Storage queues cap a message's visibility timeout at 7 days.
MAX_VISIBILITY_S = 7 * 24 * 3600 - 60


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
        self._tables = TableServiceClient.from_connection_string(connection_string)
        self._queues = QueueServiceClient.from_connection_string(connection_string)
        self.instances = self._tables.get_table_client(f"{hub}Instances")
        self.history = self._tables.get_table_client(f"{hub}History")
        self.control = self._queues.get_queue_client(f"{hub.lower()}-control-00")
        self.workitems = self._queues.get_queue_client(f"{hub.lower()}-workitems")

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
    async def get_instance(self, instance_id: str) -> dict[str, Any] | None:
        async with _mapped():
            try:
                return dict(await self.instances.get_entity(instance_id, ""))
            except ResourceNotFoundError:
                return None

    async def put_instance(self, row: dict[str, Any]) -> None:
        async with _mapped():
            await self.instances.upsert_entity(row, mode=UpdateMode.REPLACE)

    async def list_instances(self) -> list[dict[str, Any]]:
        async with _mapped():
            return [dict(e) async for e in self.instances.list_entities()]

    async def delete_instance(self, instance_id: str) -> bool:
        async with _mapped():
            found = await self.get_instance(instance_id) is not None
            await self.instances.delete_entity(instance_id, "")
            await self.delete_history(instance_id)
            return found

    # --- history ---------------------------------------------------------------------
    async def load_history(self, instance_id: str, execution_id: str) -> list[dict[str, Any]]:
        query = "PartitionKey eq @pk and ExecutionId eq @x"
        params = {"pk": instance_id, "x": execution_id}
        async with _mapped():
            rows = [dict(e) async for e in self.history.query_entities(query, parameters=params)]
        rows.sort(key=lambda r: str(r["RowKey"]))
        return [json.loads(r["Event"]) for r in rows]

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
        async with _mapped():
            for at in range(0, len(ops), 100):
                await self.history.submit_transaction(ops[at : at + 100])

    async def delete_history(self, instance_id: str) -> None:
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
    async def send(self, queue: str, body: dict[str, Any], delay_s: float = 0) -> None:
        client = self.control if queue == "control" else self.workitems
        delay = max(0, min(int(delay_s + 0.999), MAX_VISIBILITY_S))
        async with _mapped():
            await client.send_message(json.dumps(body), visibility_timeout=delay or None)

    async def receive(self, queue: str, count: int, visibility_s: float) -> list[Message]:
        client = self.control if queue == "control" else self.workitems
        out: list[Message] = []
        if count <= 0:
            return out
        async with _mapped():
            async for msg in client.receive_messages(
                messages_per_page=min(count, 32),
                max_messages=min(count, 32),
                visibility_timeout=max(1, int(visibility_s)),
            ):
                out.append(
                    Message(msg.id, msg.pop_receipt or "", json.loads(msg.content),
                            int(msg.dequeue_count or 0))
                )  # fmt: skip
        return out

    async def delete(self, queue: str, message: Message) -> None:
        client = self.control if queue == "control" else self.workitems
        async with _mapped():
            # Already gone, or our lease expired and another worker owns it now.
            with suppress(ResourceNotFoundError):
                await client.delete_message(message.id, message.pop_receipt)

    async def extend(self, queue: str, message: Message, visibility_s: float) -> Message:
        """Keep a message invisible while it is being worked on; returns the new receipt."""
        client = self.control if queue == "control" else self.workitems
        async with _mapped():
            updated = await client.update_message(
                message.id, message.pop_receipt, visibility_timeout=max(1, int(visibility_s))
            )
        return Message(message.id, updated.pop_receipt or "", message.body, message.dequeue_count)
