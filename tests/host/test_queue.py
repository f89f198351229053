"""Queue triggers and queue output bindings against a real Azurite."""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueServiceClient

from .conftest import StartHost, read_records, wait_for

pytestmark = pytest.mark.azurite


@pytest.fixture
async def queues(storage_connection_string: str) -> AsyncIterator[QueueServiceClient]:
    async with QueueServiceClient.from_connection_string(storage_connection_string) as svc:
        yield svc


async def send(svc: QueueServiceClient, queue: str, text: str, *, encode: bool = True) -> str:
    client = svc.get_queue_client(queue)
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()
    content = base64.b64encode(text.encode()).decode() if encode else text
    return str((await client.send_message(content)).id)


async def peek(svc: QueueServiceClient, queue: str) -> list[str]:
    client = svc.get_queue_client(queue)
    try:
        return [m.content for m in await client.peek_messages(max_messages=32)]
    except Exception:
        return []


def env(conn: str, records: Path, **extra: str) -> dict[str, str]:
    work = f"work{uuid.uuid4().hex[:10]}"
    return {
        "AzureWebJobsStorage": conn,
        "RECORD_FILE": str(records),
        "WORK_QUEUE": work,
        "POISON_QUEUE": f"{work}-poison",
        "WAKE_QUEUE": f"wake{uuid.uuid4().hex[:10]}",
        **extra,
    }


async def test_base64_message_is_decoded_with_its_metadata_and_deleted(
    start_host: StartHost,
    queues: QueueServiceClient,
    storage_connection_string: str,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    settings = env(storage_connection_string, records)
    await start_host("queue_app", settings)
    sent_id = await send(queues, settings["WORK_QUEUE"], "héllo")
    await wait_for(lambda: any(r["fn"] == "work" for r in read_records(records)))
    (rec,) = [r for r in read_records(records) if r["fn"] == "work"]
    assert rec["body"] == "héllo"
    assert rec["id"] == sent_id
    assert rec["dequeue_count"] == 1
    assert rec["pop_receipt"]
    assert rec["insertion_time"] != "None" and rec["next_visible"] != "None"
    await wait_for(lambda: True)
    assert await wait_for_empty(queues, settings["WORK_QUEUE"])


async def wait_for_empty(svc: QueueServiceClient, queue: str) -> bool:
    props_client = svc.get_queue_client(queue)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        props = await props_client.get_queue_properties()
        if props.approximate_message_count == 0:
            return True
        await asyncio_sleep(0.1)
    return False


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_invalid_base64_goes_to_poison_queue_without_invocation(
    start_host: StartHost,
    queues: QueueServiceClient,
    storage_connection_string: str,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    settings = env(storage_connection_string, records, POISON_QUEUE="unrelated-poison")
    await start_host("queue_app", settings)
    await send(queues, settings["WORK_QUEUE"], "not base64 at all!", encode=False)
    poison = f"{settings['WORK_QUEUE']}-poison"
    contents: list[str] = []

    def arrived() -> bool:
        return bool(contents)

    for _ in range(100):
        contents = await peek(queues, poison)
        if arrived():
            break
        await asyncio_sleep(0.1)
    assert contents == ["not base64 at all!"]  # moved unchanged
    assert [r for r in read_records(records) if r["fn"] == "work"] == []


async def test_failing_message_is_retried_then_poisoned_after_max_dequeue_count(
    start_host: StartHost,
    queues: QueueServiceClient,
    storage_connection_string: str,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    settings = env(storage_connection_string, records)
    await start_host("queue_app", settings)
    await send(queues, settings["WORK_QUEUE"], "fail-always")
    await wait_for(lambda: any(r["fn"] == "poisoned" for r in read_records(records)), within=20)
    attempts = [r["dequeue_count"] for r in read_records(records) if r["fn"] == "work"]
    assert attempts == [1, 2, 3]  # host.json maxDequeueCount is 3
    poisoned = [r for r in read_records(records) if r["fn"] == "poisoned"]
    assert [p["body"] for p in poisoned] == ["fail-always"]


async def test_batches_respect_batch_size_and_new_batch_threshold(
    start_host: StartHost,
    queues: QueueServiceClient,
    storage_connection_string: str,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    settings = env(storage_connection_string, records)
    for i in range(12):
        await send(queues, settings["WORK_QUEUE"], f"slow:0.4#{i}")
    await start_host("queue_app", settings)
    await wait_for(lambda: len(read_records(records)) == 12, within=20)
    work = read_records(records)
    assert sorted(r["body"] for r in work) == sorted(f"slow:0.4#{i}" for i in range(12))
    peak = max(r["running"] for r in work)
    assert 2 <= peak <= 4 + 2  # batchSize 4 in flight, refetched at newBatchThreshold 2


async def test_output_binding_wakes_an_idle_listener_at_once(
    start_host: StartHost, storage_connection_string: str, tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    settings = env(storage_connection_string, records)
    host = await start_host("queue_app", settings, queue_min_polling=1.0)
    wake_listener = next(q for q in host.queue_listeners if q.queue == settings["WAKE_QUEUE"])
    # Let the idle backoff grow (1 s, ~2 s, ~4 s ...) well past the pickup bound asserted below.
    await wait_for(lambda: wake_listener.backoff.current >= 3.5, within=15)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.port}") as c:
        started = time.monotonic()
        r = await c.post("/api/enqueue", content=b"ping")
        assert r.status_code == 202
    await wait_for(lambda: any(r["fn"] == "woken" for r in read_records(records)), within=10)
    latency = time.monotonic() - started
    assert latency < 1.0, f"picked up after {latency:.2f}s; idle interval was >= 3.5 s"


async def test_long_running_function_keeps_its_message_invisible(
    start_host: StartHost,
    queues: QueueServiceClient,
    storage_connection_string: str,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    settings = env(storage_connection_string, records)
    # Fetched messages stay invisible 2 s; renewal every 1 s must carry a 3.5 s invocation.
    await start_host("queue_app", settings, queue_fetch_visibility=2.0)
    await send(queues, settings["WORK_QUEUE"], "slow:3.5")
    await wait_for(lambda: bool(read_records(records)))
    await asyncio_sleep(5.0)
    work = [r for r in read_records(records) if r["fn"] == "work"]
    assert [r["dequeue_count"] for r in work] == [1]
    assert await wait_for_empty(queues, settings["WORK_QUEUE"])
