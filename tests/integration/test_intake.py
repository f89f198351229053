"""The jobs queue against a real Azurite: base64 on the wire, decoding, garbage refused."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from azure.storage.queue.aio import QueueClient

from relay.errors import StoreError, ValidationError
from relay.intake import JobQueue, QueueJob, decode_message, encode_message
from relay.settings import StorageConfig

pytestmark = pytest.mark.azurite


@pytest.fixture
async def queue(storage_connection_string: str) -> AsyncIterator[JobQueue]:
    name = "jobs-" + uuid.uuid4().hex[:10]
    q = JobQueue.from_config(StorageConfig(connection_string=storage_connection_string), name)
    await q.ensure()
    await q.ensure()  # idempotent
    yield q
    await q.aclose()


async def test_enqueue_is_base64_json(queue: JobQueue, storage_connection_string: str) -> None:
    await queue.enqueue("job1", "alice")
    await queue.enqueue("job2", "bob")
    assert await queue.position_in_line() == 2
    # Read raw, as the Functions host does: the wire text is base64 of the JSON.
    async with QueueClient.from_connection_string(storage_connection_string, queue.name) as raw:
        msgs = [m async for m in raw.receive_messages()]
    bodies = [base64.b64decode(m.content) for m in msgs]
    assert [json.loads(b) for b in bodies] == [
        {"jobId": "job1", "owner": "alice", "v": 1},
        {"jobId": "job2", "owner": "bob", "v": 1},
    ]
    # What the trigger's QueueMessage.get_body() returns is the decoded bytes.
    assert [decode_message(b) for b in bodies] == [
        QueueJob("job1", "alice"),
        QueueJob("job2", "bob"),
    ]
    # A host configured without base64 decoding hands over the base64 text itself.
    assert decode_message(msgs[0].content) == QueueJob("job1", "alice")


async def test_enqueue_refuses_bad_job_id(queue: JobQueue) -> None:
    with pytest.raises(ValidationError):
        await queue.enqueue("a/b", "alice")
    assert await queue.position_in_line() == 0


async def test_missing_queue_is_a_store_error(storage_connection_string: str) -> None:
    cfg = StorageConfig(connection_string=storage_connection_string)
    async with JobQueue.from_config(cfg, "nope-" + uuid.uuid4().hex[:8]) as q:
        with pytest.raises(StoreError):
            await q.enqueue("job1", "alice")


def test_round_trip_text() -> None:
    text = encode_message("abc", "o/w#ner")
    assert decode_message(text) == QueueJob("abc", "o/w#ner")
    assert decode_message(text.encode()) == QueueJob("abc", "o/w#ner")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "message"),
        (b"   ", "message"),
        (b"not json", "message"),
        (b"\xff\xfe", "message"),
        (b"[1,2]", "message"),
        (b'"str"', "message"),
        (b'{"jobId":"a","owner":"b"}', "message.v"),
        (b'{"jobId":"a","owner":"b","v":2}', "message.v"),
        (b'{"owner":"b","v":1}', "message.jobId"),
        (b'{"jobId":"a/b","owner":"b","v":1}', "message.jobId"),
        (b'{"jobId":7,"owner":"b","v":1}', "message.jobId"),
        (b'{"jobId":"a","owner":"","v":1}', "message.owner"),
        (b'{"jobId":"a","owner":null,"v":1}', "message.owner"),
        (b"x" * 70_000, "message"),
        (base64.b64encode(b"[]"), "message"),
    ],
)
def test_garbage_is_a_validation_error(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        decode_message(body)
    assert info.value.field == field


async def test_identity_based_clients_use_the_service_uris() -> None:
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    from relay.errors import SettingsError
    from relay.storage import StorageClients

    cfg = StorageConfig(
        queue_uri="https://acct.queue.core.windows.net",
        table_uri="https://acct.table.core.windows.net",
        client_id="00000000-0000-0000-0000-000000000001",
    )
    clients = StorageClients(cfg)
    assert isinstance(clients.credential(), ManagedIdentityCredential)
    assert clients.tables is clients.tables  # one shared pool
    assert clients.tables.url.startswith("https://acct.table.core.windows.net")
    q = clients.queue("jobs")
    assert q.url == "https://acct.queue.core.windows.net/jobs"
    assert type(q._message_encode_policy).__name__ == "TextBase64EncodePolicy"
    await q.close()
    await clients.aclose()
    default = StorageClients(StorageConfig(queue_uri=cfg.queue_uri, table_uri=cfg.table_uri))
    assert isinstance(default.credential(), DefaultAzureCredential)
    await default.aclose()
    with pytest.raises(SettingsError):
        _ = StorageClients(StorageConfig(queue_uri=cfg.queue_uri)).tables
