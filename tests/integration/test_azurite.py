"""The test session's Azurite is real: queue and table round trips."""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient

pytestmark = pytest.mark.azurite


def test_queue_round_trip(storage_connection_string: str) -> None:
    q = QueueClient.from_connection_string(storage_connection_string, "smoke")
    q.create_queue()
    q.send_message("hello")
    [msg] = list(q.receive_messages())
    assert msg.content == "hello"


def test_table_round_trip(storage_connection_string: str) -> None:
    svc = TableServiceClient.from_connection_string(storage_connection_string)
    table = svc.create_table_if_not_exists("smoke")
    table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "n": 1})
    assert table.get_entity("p", "r")["n"] == 1
