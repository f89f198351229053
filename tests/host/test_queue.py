"""Queue triggers and queue output bindings against a real Azurite."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue.aio import QueueServiceClient

from local.host import Host

from .conftest import StartHost, read_records, wait_for

pytestmark = pytest.mark.azurite


@pytest.fixture
async def queues(storage_connection_string: str) -> AsyncIterator[QueueServiceClient]:
    async with QueueServiceClient.from_connection_string(storage_connection_string) as svc:
        yield svc


@dataclass
class QueueApp:
    """The queue fixture app (fixture_apps/queue_app) on fresh queues, not yet started.

    Every invocation appends a JSON line to `records`; `settings` may be changed before
    `start`.
    """

    settings: dict[str, str]
    records: Path
    queues: QueueServiceClient
    start_host: StartHost

    @property
    def work_queue(self) -> str:
        return self.settings["WORK_QUEUE"]

    async def start(self, **options: Any) -> Host:
        return await self.start_host("queue_app", self.settings, **options)

    def calls(self, fn: str | None = None) -> list[dict[str, Any]]:
        """The recorded invocations, of function `fn` only if given."""
        return [r for r in read_records(self.records) if fn is None or r["fn"] == fn]

    async def send(self, text: str, *, encode: bool = True) -> str:
        """Put `text` on the work queue (base64, as the host expects, unless told not to)."""
        client = self.queues.get_queue_client(self.work_queue)
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()
        content = base64.b64encode(text.encode()).decode() if encode else text
        return str((await client.send_message(content)).id)

    async def peek(self, queue: str) -> list[str]:
        client = self.queues.get_queue_client(queue)
        try:
            return [m.content for m in await client.peek_messages(max_messages=32)]
        except Exception:  # not created yet
            return []

    async def work_queue_empty(self) -> bool:
        client = self.queues.get_queue_client(self.work_queue)
        return (await client.get_queue_properties()).approximate_message_count == 0


@pytest.fixture
def app(
    start_host: StartHost,
    queues: QueueServiceClient,
    storage_connection_string: str,
    tmp_path: Path,
) -> QueueApp:
    work = f"work{uuid.uuid4().hex[:10]}"
    records = tmp_path / "records.jsonl"
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "RECORD_FILE": str(records),
        "WORK_QUEUE": work,
        "POISON_QUEUE": f"{work}-poison",
        "WAKE_QUEUE": f"wake{uuid.uuid4().hex[:10]}",
    }
    return QueueApp(settings, records, queues, start_host)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll the async `check` until true; fail the test if it is not within `within` s."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.1)


async def test_base64_message_is_decoded_with_its_metadata_and_deleted(app: QueueApp) -> None:
    await app.start()
    sent_id = await app.send("héllo")
    await wait_for(lambda: bool(app.calls("work")))
    (rec,) = app.calls("work")
    assert rec["body"] == "héllo"
    assert rec["id"] == sent_id
    assert rec["dequeue_count"] == 1
    assert rec["pop_receipt"]
    assert rec["insertion_time"] != "None" and rec["next_visible"] != "None"
    await eventually(app.work_queue_empty, within=5)


async def test_invalid_base64_goes_to_poison_queue_without_invocation(app: QueueApp) -> None:
    app.settings["POISON_QUEUE"] = "unrelated-poison"  # so no function takes the poison
    await app.start()
    await app.send("not base64 at all!", encode=False)
    poison = f"{app.work_queue}-poison"

    async def poisoned() -> bool:
        return bool(await app.peek(poison))

    await eventually(poisoned)
    assert await app.peek(poison) == ["not base64 at all!"]  # moved unchanged
    assert app.calls("work") == []


async def test_failing_message_is_retried_then_poisoned_after_max_dequeue_count(
    app: QueueApp,
) -> None:
    await app.start()
    await app.send("fail-always")
    await wait_for(lambda: bool(app.calls("poisoned")), within=20)
    assert [r["dequeue_count"] for r in app.calls("work")] == [1, 2, 3]  # maxDequeueCount 3
    assert [p["body"] for p in app.calls("poisoned")] == ["fail-always"]


async def test_batches_respect_batch_size_and_new_batch_threshold(app: QueueApp) -> None:
    for i in range(12):
        await app.send(f"slow:0.4#{i}")
    await app.start()
    await wait_for(lambda: len(app.calls()) == 12, within=20)
    work = app.calls()
    assert sorted(r["body"] for r in work) == sorted(f"slow:0.4#{i}" for i in range(12))
    peak = max(r["running"] for r in work)
    assert 2 <= peak <= 4 + 2  # batchSize 4 in flight, refetched at newBatchThreshold 2


async def test_output_binding_wakes_an_idle_listener_at_once(app: QueueApp) -> None:
    # From a 20 s minimum the first idle wait is already maxPollingInterval (30 s, host.json):
    # the message is picked up well before the listener's next poll only if the write woke it.
    host = await app.start(queue_min_polling=20.0)
    wake_listener = next(q for q in host.queue_listeners if q.queue == app.settings["WAKE_QUEUE"])
    backoff = wake_listener.backoff
    assert backoff.maximum == 30.0
    await wait_for(lambda: backoff.current == backoff.maximum)  # idle, waiting 30 s
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.port}") as c:
        r = await c.post("/api/enqueue", content=b"ping")
        assert r.status_code == 202
    await wait_for(lambda: bool(app.calls("woken")), within=10)
    assert [w["body"] for w in app.calls("woken")] == ["ping"]


async def test_long_running_function_keeps_its_message_invisible(app: QueueApp) -> None:
    # Fetched messages stay invisible 2 s; renewal every 1 s must carry a 3.5 s invocation.
    await app.start(queue_fetch_visibility=2.0)
    await app.send("slow:3.5")
    await wait_for(lambda: bool(app.calls()))
    await asyncio.sleep(5.0)
    assert [r["dequeue_count"] for r in app.calls("work")] == [1]
    await eventually(app.work_queue_empty, within=5)
