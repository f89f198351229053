"""relay.store._direct against Azurite: the same stored entities, ETags and exceptions as
the SDK's methods for the same calls (entities read back with the SDK, types included)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EdmType, EntityProperty, TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from relay.storage import transport
from relay.store import _direct, _direct_queue

pytestmark = pytest.mark.asyncio

ETAG = re.compile(r"^W/\"datetime'\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d\.\d{7}Z'\"$")

# Every type the app stores, plus the odd ones: a key with a quote, unicode, int64s (the
# SDK writes them as EntityProperty), bytes, an aware datetime, None (omitted by the SDK).
VALUES: dict[str, Any] = {
    "s": "hé \"q\" 'x' <&>",
    "i32": 7,
    "i64": EntityProperty(2**40, EdmType.INT64),
    "i64small": EntityProperty(5, EdmType.INT64),
    "f": 1.5,
    "fint": 2.0,
    "b": True,
    "dt": datetime(2026, 11, 25, 12, 0, 1, 123456, tzinfo=UTC),
    "raw": b"\x00\x01bytes",
    "none": None,
}


@pytest.fixture
async def table(storage_connection_string: str) -> AsyncIterator[TableClient]:
    service = TableServiceClient.from_connection_string(
        storage_connection_string, transport=transport()
    )
    name = "direct" + uuid.uuid4().hex[:12]
    client = await service.create_table(name)
    try:
        yield client
    finally:
        await service.delete_table(name)
        await client.close()
        await service.close()


@pytest.fixture
def missing_table(storage_connection_string: str) -> TableClient:
    """A client of a table that does not exist (the test closes it)."""
    return TableClient.from_connection_string(
        storage_connection_string, "nosuch" + uuid.uuid4().hex[:8]
    )


@pytest.fixture
def missing_queue(storage_connection_string: str) -> QueueClient:
    """A client of a queue that does not exist (the test closes it)."""
    return QueueClient.from_connection_string(
        storage_connection_string, "nosuch" + uuid.uuid4().hex[:8]
    )


def _typed(entity: TableEntity) -> dict[str, tuple[type, Any]]:
    """What the SDK reads back, with the Python type of every value (int64s come back as
    EntityProperty, int32 as int: the stored odata type shows)."""
    return {k: (type(v), v) for k, v in entity.items() if k != "RowKey"}


async def _pair(table: TableClient, row: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"PartitionKey": "p'1", "RowKey": f"{row}-sdk", **VALUES},
        {"PartitionKey": "p'1", "RowKey": f"{row}-direct", **VALUES},
    )


async def _read_both(table: TableClient, a: dict[str, Any], b: dict[str, Any]) -> None:
    got_a = await table.get_entity(a["PartitionKey"], a["RowKey"])
    got_b = await table.get_entity(b["PartitionKey"], b["RowKey"])
    assert _typed(got_a) == _typed(got_b)
    assert "none" not in got_b
    assert got_b["i64"] == EntityProperty(2**40, EdmType.INT64)
    assert got_b["raw"] == b"\x00\x01bytes" and got_b["dt"] == VALUES["dt"]
    assert got_b["s"] == VALUES["s"] and type(got_b["i32"]) is int


async def test_create_stores_what_the_sdk_stores_and_returns_its_etag(table: TableClient) -> None:
    sdk, direct = await _pair(table, "create")
    meta = await table.create_entity(sdk)
    etag = await _direct.create_entity(table, direct)
    assert ETAG.match(str(meta["etag"])) and ETAG.match(etag)
    await _read_both(table, sdk, direct)
    read = await table.get_entity(direct["PartitionKey"], direct["RowKey"])
    assert read.metadata["etag"] == etag


async def test_create_on_an_existing_key_raises_as_the_sdk(table: TableClient) -> None:
    entity = {"PartitionKey": "p", "RowKey": "dup", "n": 1}
    await table.create_entity(entity)
    with pytest.raises(ResourceExistsError) as by_sdk:
        await table.create_entity(entity)
    with pytest.raises(ResourceExistsError) as by_direct:
        await _direct.create_entity(table, entity)
    assert type(by_direct.value) is type(by_sdk.value)
    assert by_direct.value.status_code == by_sdk.value.status_code == 409
    assert getattr(by_direct.value, "error_code", None) == getattr(by_sdk.value, "error_code", None)


async def test_writes_to_a_missing_table_raise_as_the_sdk(missing_table: TableClient) -> None:
    missing = missing_table
    entity = {"PartitionKey": "p", "RowKey": "r", "n": 1}
    async with missing:
        for by_sdk_call, by_direct_call in (
            (missing.create_entity, lambda: _direct.create_entity(missing, entity)),
            (missing.upsert_entity, lambda: _direct.upsert_entity(missing, entity)),
        ):
            with pytest.raises(ResourceNotFoundError) as by_sdk:
                await by_sdk_call(entity)
            with pytest.raises(ResourceNotFoundError) as by_direct:
                await by_direct_call()
            assert type(by_direct.value) is type(by_sdk.value)
            assert by_direct.value.status_code == by_sdk.value.status_code == 404
            assert getattr(by_direct.value, "error_code", None) == getattr(
                by_sdk.value, "error_code", None
            )


@pytest.mark.parametrize("replace", [False, True])
async def test_upsert_merges_or_replaces_as_the_sdk(table: TableClient, replace: bool) -> None:
    sdk, direct = await _pair(table, f"upsert{replace}")
    mode = UpdateMode.REPLACE if replace else UpdateMode.MERGE
    for entity in (sdk, direct):  # an existing row with one more property
        await table.create_entity({**entity, "extra": "kept unless replaced"})
    meta = await table.upsert_entity(sdk, mode=mode)
    etag = await _direct.upsert_entity(table, direct, replace=replace)
    assert ETAG.match(str(meta["etag"])) and ETAG.match(etag)
    await _read_both(table, sdk, direct)
    read = await table.get_entity(direct["PartitionKey"], direct["RowKey"])
    assert ("extra" in read) is (not replace)
    assert read.metadata["etag"] == etag
    # and an upsert of a new row inserts it
    fresh = {"PartitionKey": "p", "RowKey": f"new{replace}", "n": 3}
    await _direct.upsert_entity(table, fresh, replace=replace)
    assert (await table.get_entity("p", f"new{replace}"))["n"] == 3


@pytest.mark.parametrize("replace", [False, True])
async def test_update_with_if_match_as_the_sdk(table: TableClient, replace: bool) -> None:
    sdk, direct = await _pair(table, f"update{replace}")
    mode = UpdateMode.REPLACE if replace else UpdateMode.MERGE
    etags = {}
    for entity in (sdk, direct):
        etags[entity["RowKey"]] = (await table.create_entity({**entity, "extra": 1}))["etag"]
    meta = await table.update_entity(
        sdk, mode=mode, etag=etags[sdk["RowKey"]], match_condition=MatchConditions.IfNotModified
    )
    etag = await _direct.update_entity(table, direct, etags[direct["RowKey"]], replace=replace)
    assert ETAG.match(str(meta["etag"])) and ETAG.match(etag) and etag != etags[direct["RowKey"]]
    await _read_both(table, sdk, direct)
    assert ("extra" in await table.get_entity(direct["PartitionKey"], direct["RowKey"])) is (
        not replace
    )
    # The old ETag is now stale: 412, as the SDK raises it.
    stale = etags[direct["RowKey"]]
    with pytest.raises(ResourceModifiedError) as by_sdk:
        await table.update_entity(
            direct, mode=mode, etag=stale, match_condition=MatchConditions.IfNotModified
        )
    with pytest.raises(ResourceModifiedError) as by_direct:
        await _direct.update_entity(table, direct, stale, replace=replace)
    _same_error(by_sdk.value, by_direct.value, 412)
    # An absent entity: 404, as the SDK raises it.
    gone = {"PartitionKey": "p", "RowKey": "absent", "n": 1}
    with pytest.raises(ResourceNotFoundError) as by_sdk_404:
        await table.update_entity(
            gone, mode=mode, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    with pytest.raises(ResourceNotFoundError) as by_direct_404:
        await _direct.update_entity(table, gone, etag, replace=replace)
    _same_error(by_sdk_404.value, by_direct_404.value, 404)


def _same_error(by_sdk: HttpResponseError, by_direct: HttpResponseError, status: int) -> None:
    assert type(by_direct) is type(by_sdk)
    assert by_direct.status_code == by_sdk.status_code == status
    assert by_direct.error_code == by_sdk.error_code  # type: ignore[attr-defined]
    assert by_direct.error_code is not None  # type: ignore[attr-defined]


async def test_delete_removes_and_tolerates_absence_as_the_sdk(table: TableClient) -> None:
    await table.create_entity({"PartitionKey": "p", "RowKey": "del'q", "n": 1})
    await _direct.delete_entity(table, "p", "del'q")
    with pytest.raises(ResourceNotFoundError):
        await table.get_entity("p", "del'q")
    # Absent: the SDK returns None on 404, and so does this.
    assert await table.delete_entity("p", "del'q") is None
    assert await _direct.delete_entity(table, "p", "del'q") is None


@pytest.fixture
async def queues(
    storage_connection_string: str,
) -> AsyncIterator[tuple[QueueClient, QueueClient]]:
    """(base64 client as the app's, plain client as the durable engine's), one queue."""
    name = "direct" + uuid.uuid4().hex[:12]
    b64 = QueueClient.from_connection_string(
        storage_connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
        transport=transport(),
    )
    plain = QueueClient.from_connection_string(storage_connection_string, name)
    await b64.create_queue()
    try:
        yield b64, plain
    finally:
        await b64.delete_queue()
        await b64.close()
        await plain.close()


async def test_queue_send_as_the_sdk(queues: tuple[QueueClient, QueueClient]) -> None:
    b64, plain = queues
    text = '{"jobId":"j1","owner":"u <&> é","v":1}'
    by_sdk = await b64.send_message(text)
    by_direct = await _direct_queue.send_message(b64, text)
    assert by_direct.id and by_direct.id != by_sdk.id and by_direct.pop_receipt
    assert by_direct.inserted_on is not None and by_direct.expires_on is not None
    received = [m async for m in b64.receive_messages(max_messages=32, messages_per_page=32)]
    assert [m.content for m in received] == [text, text]  # base64 both, decoded alike
    # A plain (no encoding) client: XML special characters survive the body.
    await plain.clear_messages()
    await _direct_queue.send_message(plain, text)
    got = [m async for m in plain.receive_messages(max_messages=32, messages_per_page=32)]
    assert [m.content for m in got] == [text]


async def test_queue_send_invisible_returns_a_usable_receipt(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    b64, _ = queues
    sent = await _direct_queue.send_message(b64, "leased", visibility_timeout=60)
    assert sent.next_visible_on is not None and sent.inserted_on is not None
    assert (sent.next_visible_on - sent.inserted_on).total_seconds() >= 59
    assert [m async for m in b64.receive_messages(max_messages=32)] == []
    # The send's pop receipt renews and deletes it, as a received message's does.
    updated = await b64.update_message(sent.id, sent.pop_receipt, visibility_timeout=60)
    await b64.delete_message(sent.id, updated.pop_receipt)
    props = await b64.get_queue_properties()
    assert props.approximate_message_count == 0


async def test_queue_send_to_a_missing_queue_raises_as_the_sdk(missing_queue: QueueClient) -> None:
    missing = missing_queue
    async with missing:
        with pytest.raises(ResourceNotFoundError) as by_sdk:
            await missing.send_message("x")
        with pytest.raises(ResourceNotFoundError) as by_direct:
            await _direct_queue.send_message(missing, "x")
    _same_error(by_sdk.value, by_direct.value, 404)


async def test_query_rows_follows_pages_and_matches_the_sdk(table: TableClient) -> None:
    for n in range(5):
        await table.create_entity({"PartitionKey": "q'p", "RowKey": f"r{n}", "owner": f"u{n % 2}"})
    await table.create_entity({"PartitionKey": "other", "RowKey": "r9", "owner": "u1"})
    flt, params = "PartitionKey eq @pk and RowKey ge @lo", {"pk": "q'p", "lo": "r1"}
    by_sdk = [
        (e["RowKey"], e["owner"])
        async for e in table.query_entities(flt, parameters=params, select=["RowKey", "owner"])
    ]
    for per_page in (None, 2, 1):  # one page; three pages; four pages through continuations
        rows = [
            row
            async for row in _direct.query_rows(
                table, flt, parameters=params, select=["RowKey", "owner"], per_page=per_page
            )
        ]
        assert [(r["RowKey"], r["owner"]) for r in rows] == by_sdk
    assert by_sdk == [("r1", "u1"), ("r2", "u0"), ("r3", "u1"), ("r4", "u0")]


async def test_query_rows_encodes_values_that_mean_something_in_a_url(
    table: TableClient,
) -> None:
    """'+', '#', '&', '=', '%' and spaces in a parameter, and '+', '&', '=', '%' and spaces
    in a continuation key, reach the service as written, as with the SDK: sent raw they
    would end or change the filter."""
    tricky = "rate|a+b#c%41&x=1 y"
    for n in range(3):
        await table.create_entity({"PartitionKey": "p", "RowKey": f"k {n}+&=%41", "tag": tricky,
                                   "v": n})  # fmt: skip
    await table.create_entity({"PartitionKey": "p", "RowKey": "z", "tag": "rate|a b", "v": 9})
    flt, params = "PartitionKey eq 'p' and tag eq @t", {"t": tricky}
    by_sdk = [e["v"] async for e in table.query_entities(flt, parameters=params)]
    for per_page in (None, 1):  # pages of one: the continuation keys are the tricky keys
        rows = [r async for r in _direct.query_rows(table, flt, parameters=params,
                                                     select=["v"], per_page=per_page)]  # fmt: skip
        assert [r["v"] for r in rows] == by_sdk == [0, 1, 2]


async def test_query_rows_of_a_missing_table_raises_as_the_sdk(missing_table: TableClient) -> None:
    missing = missing_table
    async with missing:
        with pytest.raises(ResourceNotFoundError) as by_sdk:
            async for _ in missing.query_entities("PartitionKey eq 'a'"):
                pass
        with pytest.raises(ResourceNotFoundError) as by_direct:
            async for _ in _direct.query_rows(missing, "PartitionKey eq 'a'"):
                pass
    _same_error(by_sdk.value, by_direct.value, 404)


async def test_queue_delete_and_update_as_the_sdk(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    b64, _ = queues
    first = await _direct_queue.send_message(b64, "one", visibility_timeout=60)
    # A renewal answers a new receipt (the old one is stale from then on) and a later time.
    receipt, visible = await _direct_queue.update_message(b64, first.id, first.pop_receipt, 120)
    assert receipt and receipt != first.pop_receipt
    assert visible is not None and first.next_visible_on is not None
    assert visible > first.next_visible_on
    # A stale receipt: refused as the SDK refuses it (same type, status and error code).
    with pytest.raises(HttpResponseError) as by_sdk:
        await b64.update_message(first.id, first.pop_receipt, visibility_timeout=5)
    with pytest.raises(HttpResponseError) as by_direct:
        await _direct_queue.update_message(b64, first.id, first.pop_receipt, 5)
    _same_error(by_sdk.value, by_direct.value, by_sdk.value.status_code or 0)
    with pytest.raises(HttpResponseError) as by_sdk_del:
        await b64.delete_message(first.id, first.pop_receipt)
    with pytest.raises(HttpResponseError) as by_direct_del:
        await _direct_queue.delete_message(b64, first.id, first.pop_receipt)
    _same_error(by_sdk_del.value, by_direct_del.value, by_sdk_del.value.status_code or 0)
    # The current receipt deletes it; then it is gone (404, as the SDK raises it).
    await _direct_queue.delete_message(b64, first.id, receipt)
    assert (await b64.get_queue_properties()).approximate_message_count == 0
    with pytest.raises(ResourceNotFoundError) as by_sdk_404:
        await b64.delete_message(first.id, receipt)
    with pytest.raises(ResourceNotFoundError) as by_direct_404:
        await _direct_queue.delete_message(b64, first.id, receipt)
    _same_error(by_sdk_404.value, by_direct_404.value, 404)


async def test_queue_receive_in_one_request_as_the_sdk_reads_it(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    b64, plain = queues
    texts = ['{"n": 1, "s": "<&>"}', '{"n": 2}', '{"n": 3}']
    for text in texts:
        await b64.send_message(text)
    first = await _direct_queue.receive_messages(b64, 2, 60)
    second = await _direct_queue.receive_messages(b64, 32, 60)
    assert [m.content for m in first + second] == texts  # base64 decoded by the client's policy
    assert all(m.dequeue_count == 1 and m.pop_receipt for m in first + second)
    assert await _direct_queue.receive_messages(b64, 32, 60) == []  # all leased
    for m in first + second:  # each receipt deletes its message
        await _direct_queue.delete_message(b64, m.id, m.pop_receipt)
    assert (await b64.get_queue_properties()).approximate_message_count == 0
    # A plain client reads the text as stored (XML special characters unescaped).
    await plain.send_message(texts[0])
    (got,) = await _direct_queue.receive_messages(plain, 32, 1)
    assert got.content == texts[0] and got.next_visible_on is not None


async def test_queue_receive_of_a_missing_queue_raises_as_the_sdk(
    missing_queue: QueueClient,
) -> None:
    missing = missing_queue
    async with missing:
        with pytest.raises(ResourceNotFoundError) as by_sdk:
            async for _ in missing.receive_messages(max_messages=1):
                pass
        with pytest.raises(ResourceNotFoundError) as by_direct:
            await _direct_queue.receive_messages(missing, 1, 5)
    _same_error(by_sdk.value, by_direct.value, 404)
