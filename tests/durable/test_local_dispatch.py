"""Local dispatch and the instance cache: fast paths that keep the queue as the backstop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.durable_functions import DurableOrchestrationClient

from local.durable import DurableEngine
from local.durable._store import Message, StoreUnavailable, TaskHubStore

from .conftest import EngineFactory, wait_done

pytestmark = pytest.mark.azurite

LAZY_POLLS = {"storageProvider": {"maxQueuePollingInterval": "00:00:30"}}


def count_deliveries(engine: DurableEngine) -> dict[str, int]:
    """Messages the engine's pollers received from the queues, by queue."""
    counts = {"control": 0, "work": 0}
    receive = engine.store.receive

    async def counted(queue: str, count: int, visibility_s: float) -> list[Message]:
        got = await receive(queue, count, visibility_s)
        counts[queue] += len(got)
        return got

    engine.store.receive = counted  # type: ignore[method-assign]
    return counts


async def queued(store: TaskHubStore) -> int:
    """Messages in both queues, invisible (leased) ones included."""
    total = 0
    for client in (store.control, store.workitems):
        total += (await client.get_queue_properties()).approximate_message_count or 0
    return total


async def test_own_starts_results_and_work_items_run_without_a_queue_poll(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(**LAZY_POLLS)
    counts = count_deliveries(engine)
    client = DurableOrchestrationClient(engine.client_binding_json())
    iid = await client.start_new("sequence", None, None)
    status = await wait_done(client, iid)
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert counts == {"control": 0, "work": 0}  # every message was handed over in process
    for _ in range(40):  # the messages still went through the queues and were deleted
        if await queued(engine.store) == 0:
            break
        await asyncio.sleep(0.05)
    assert await queued(engine.store) == 0


async def test_a_start_lost_before_the_hand_over_is_run_from_the_queue(
    make_engine: EngineFactory,
) -> None:
    first = await make_engine()
    first._deliver = lambda messages: None  # type: ignore[method-assign]  # "crash" here
    client = DurableOrchestrationClient(first.client_binding_json())
    iid = await client.start_new("sequence", None, None)
    await asyncio.sleep(0.3)
    assert (await client.get_status(iid)).runtime_status.name == "Pending"
    await first.kill()
    second = await make_engine()
    client = DurableOrchestrationClient(second.client_binding_json())
    # The start message was leased from birth: it reappears after the 3 s visibility timeout.
    status = await wait_done(client, iid, within_s=20)
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_a_row_changed_by_another_writer_is_reread_not_overwritten(
    engine: DurableEngine,
    client: DurableOrchestrationClient,
    storage_connection_string: str,
    hub: str,
) -> None:
    iid = await client.start_new("approval", None, None)
    for _ in range(100):
        if (await client.get_status(iid)).custom_status == {"stage": "waiting"}:
            break
        await asyncio.sleep(0.05)
    other = TaskHubStore(storage_connection_string, hub)
    try:
        row = await other.get_instance(iid)
        assert row is not None
        await other.put_instance(row | {"Marker": "outside"})
        await client.raise_event(iid, "approve", "yes")
        status = await wait_done(client, iid, within_s=20)
        assert status.runtime_status.name == "Completed" and status.output == "yes"
        final = await other.get_instance(iid)
    finally:
        await other.close()
    # The episode's conditional write failed (412), so the row was read again, not replaced
    # with the engine's cached copy.
    assert final is not None and final["Marker"] == "outside"


@pytest.fixture
async def store(storage_connection_string: str, hub: str) -> Any:
    store = TaskHubStore(storage_connection_string, hub)
    await store.create()
    yield store
    await store.close()


def _row(iid: str, status: str = "Running") -> dict[str, Any]:
    return {"PartitionKey": iid, "RowKey": "", "RuntimeStatus": status, "ExecutionId": "x1"}


def _no_reads(store: TaskHubStore) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read storage")

    store.instances.get_entity = refuse  # type: ignore[method-assign]
    store.history.query_entities = refuse  # type: ignore[method-assign]


async def test_insert_refuses_an_existing_id_and_writes_fill_the_cache(
    store: TaskHubStore,
) -> None:
    assert await store.insert_instance(_row("a"))
    assert not await store.insert_instance(_row("a", "Pending"))
    await store.append_history("a", "x1", 0, [{"EventType": 12, "n": 1}])
    await store.append_history("a", "x1", 1, [{"EventType": 13, "n": 2}])
    _no_reads(store)
    assert (await store.get_instance("a", cached=True) or {})["RuntimeStatus"] == "Running"
    assert [e["n"] for e in await store.load_history("a", "x1", cached=True)] == [1, 2]
    with pytest.raises(AssertionError, match="read storage"):
        await store.get_instance("a")  # client status reads always go to storage


async def test_a_finished_instance_leaves_the_cache(store: TaskHubStore) -> None:
    await store.put_instance(_row("b"))
    await store.put_instance(_row("b", "Completed"), checked=True)
    _no_reads(store)
    with pytest.raises(AssertionError, match="read storage"):
        await store.get_instance("b", cached=True)


async def test_a_read_overtaken_by_a_write_is_not_cached(store: TaskHubStore) -> None:
    await TaskHubStore.put_instance(store, _row("c", "Pending"))
    store.forget("c")
    get_entity = store.instances.get_entity
    release = asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Any:
        entity = await get_entity(*args, **kwargs)  # the old row, read before the write
        await release.wait()
        return entity

    store.instances.get_entity = slow  # type: ignore[method-assign]
    read = asyncio.create_task(store.get_instance("c", cached=True))
    await asyncio.sleep(0.05)
    await store.put_instance(_row("c", "Running"))
    release.set()
    assert (await read or {})["RuntimeStatus"] == "Pending"
    _no_reads(store)
    assert (await store.get_instance("c", cached=True) or {})["RuntimeStatus"] == "Running"


async def test_a_conditional_write_over_a_changed_row_fails_and_forgets(
    store: TaskHubStore, storage_connection_string: str, hub: str
) -> None:
    await store.put_instance(_row("d"))
    other = TaskHubStore(storage_connection_string, hub)
    try:
        await other.put_instance(_row("d") | {"Marker": "outside"})
    finally:
        await other.close()
    with pytest.raises(StoreUnavailable, match="another engine"):
        await store.put_instance(_row("d", "Completed"), checked=True)
    row = await store.get_instance("d", cached=True)
    assert row is not None and row["Marker"] == "outside" and row["RuntimeStatus"] == "Running"


async def test_the_store_ignores_proxy_settings_and_appends_history_in_one_transaction(
    storage_connection_string: str, hub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that is not there: an env-honouring client could not reach Azurite.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    store = TaskHubStore(storage_connection_string, hub)
    try:
        await store.create()
        await store.put_instance(_row("px"))
        events = [{"EventType": 12, "Timestamp": "2026-01-01T00:00:00Z", "n": n} for n in range(3)]
        await store.append_history("px", "x1", 0, events)
        store.forget("px")
        assert await store.load_history("px", "x1") == events
    finally:
        await store.close()
