"""run_job with the real JobStore on Azurite (model stream and SignalR faked at the boundary)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from relay.errors import LLMUnavailable
from relay.jobs import JobRequest, Target
from relay.settings import StorageConfig
from relay.store import JobStore, Metrics
from relay.streaming import StreamConfig, finalize_job, run_job
from tests.integration.test_store import B
from tests.unit.test_streaming import FakeLLM, FakeSender

pytestmark = pytest.mark.azurite

CONFIG = StreamConfig(window_s=0.05, max_bytes=2048, heartbeat_s=0.5)


@pytest.fixture
async def store(storage_connection_string: str) -> AsyncIterator[JobStore]:
    prefix = "s" + uuid.uuid4().hex[:12]
    s = JobStore.from_config(StorageConfig(connection_string=storage_connection_string), prefix)
    await s.ensure_tables()
    yield s
    await s.aclose()


async def new_job(store: JobStore) -> str:
    job_id = uuid.uuid4().hex
    req = JobRequest(prompt="hi", messages=None)
    await store.create_job(job_id, "alice", req, Target("user", "alice"), time.time())
    await store.transition(job_id, "starting")
    return job_id


async def test_full_run_is_recorded(store: JobStore) -> None:
    job_id = await new_job(store)
    words = [f"tok{i} " for i in range(200)]
    llm, sender = FakeLLM([(0.002, w) for w in words]), FakeSender()
    result = await run_job(job_id, store=store, llm=llm, sender=sender, config=CONFIG)
    assert result.status == "completed"
    rec = await store.get_job(job_id)
    assert rec.status == "completed" and rec.attempt == 1 and rec.delivery == "ok"
    assert rec.last_seq == result.last_seq == len(sender.deltas())
    assert rec.usage == {"promptTokens": 3, "completionTokens": 200, "totalTokens": 203}
    assert rec.metrics.deltas == 200 and rec.metrics.messages == rec.last_seq
    assert rec.metrics.ttft_ms is not None and rec.metrics.duration_ms is not None
    assert await store.text(job_id, 1) == "".join(words)
    sent = [(d["seq"], d["text"]) for d in sender.deltas()]
    events = await store.events(job_id, 1, after_seq=0)
    assert [(e.seq, e.text) for e in events] == sent
    tail = await store.events(job_id, 1, after_seq=rec.last_seq - 2)
    assert [e.seq for e in tail] == [rec.last_seq - 1, rec.last_seq]


async def _first_delta_sent(sender: FakeSender, task: asyncio.Task[object]) -> None:
    """The run is streaming (a fixed sleep raced a slow start on a loaded machine)."""
    for _ in range(3000):  # up to 30 s
        if sender.deltas() or task.done():
            break
        await asyncio.sleep(0.01)
    assert sender.deltas() and not task.done()


async def test_cancel_reaches_the_running_job(store: JobStore) -> None:
    job_id = await new_job(store)
    llm, sender = FakeLLM([(0.01, "c")] * 400), FakeSender()
    task = asyncio.create_task(run_job(job_id, store=store, llm=llm, sender=sender, config=CONFIG))
    await _first_delta_sent(sender, task)
    await store.request_cancel(job_id)
    # Reached the run: it stopped before its 400 deltas (checked below), not at their end.
    # No time bound here: a benchmark's job, not a test's on a shared machine.
    result = await asyncio.wait_for(task, 60)
    assert result.status == "canceled"
    rec = await store.get_job(job_id)
    assert rec.status == "canceled" and rec.cancel_requested
    assert sender.statuses()[-1]["status"] == "canceled"
    text = await store.text(job_id, 1)
    assert 0 < len(text) < 400 and set(text) == {"c"}
    # What was sent is exactly what was recorded, in order, no gaps.
    assert "".join(d["text"] for d in sender.deltas()) == text[: len(text)]


async def test_duplicate_delivery_one_attempt_wins(store: JobStore) -> None:
    job_id = await new_job(store)
    first_llm, first_sender = FakeLLM([(0.01, "a")] * 100), FakeSender()
    first = asyncio.create_task(
        run_job(job_id, store=store, llm=first_llm, sender=first_sender, config=CONFIG)
    )
    await _first_delta_sent(first_sender, first)
    second_llm, second_sender = FakeLLM([(0.005, "b")] * 40), FakeSender()
    second = await run_job(job_id, store=store, llm=second_llm, sender=second_sender, config=CONFIG)
    old = await asyncio.wait_for(first, 60)
    assert old.status == "superseded" and old.attempt == 1
    assert second.status == "completed" and second.attempt == 2
    assert first_llm.closed and len(first_llm.yielded_at) < 100
    rec = await store.get_job(job_id)
    assert rec.status == "completed" and rec.attempt == 2
    assert await store.text(job_id, 2) == "b" * 40
    assert set(await store.text(job_id, 1)) <= {"a"}
    assert not [s for s in first_sender.statuses() if s["status"] != "running"]


async def test_failed_attempt_then_retry(store: JobStore) -> None:
    job_id = await new_job(store)
    broken = FakeLLM([(0.0, "part"), (0.01, "ial")], error=LLMUnavailable("cut"))
    with pytest.raises(LLMUnavailable):
        await run_job(job_id, store=store, llm=broken, sender=FakeSender(), config=CONFIG)
    rec = await store.get_job(job_id)
    assert rec.status == "running" and rec.error is not None
    assert rec.error["code"] == "llm_unavailable"
    assert await store.text(job_id, 1) == "partial"
    sender = FakeSender()
    ok = FakeLLM([(0.0, "whole "), (0.01, "answer")])
    result = await run_job(job_id, store=store, llm=ok, sender=sender, config=CONFIG)
    assert result.status == "completed" and result.attempt == 2
    rec = await store.get_job(job_id)
    assert rec.error is None and rec.attempt == 2
    assert await store.text(job_id, 2) == "whole answer"
    assert await store.text(job_id, 1) == "partial"
    assert all(d["attempt"] == 2 for d in sender.deltas())


async def test_finalize_after_failed_attempts(store: JobStore) -> None:
    job_id = await new_job(store)
    broken = FakeLLM([(0.0, "x")], error=LLMUnavailable("down"))
    with pytest.raises(LLMUnavailable):
        await run_job(job_id, store=store, llm=broken, sender=FakeSender(), config=CONFIG)
    sender = FakeSender()
    err = {"code": "llm_unavailable", "message": "down"}
    record = await finalize_job(job_id, "failed", err, store=store, sender=sender)
    assert record.status == "failed" and record.error == err
    assert sender.statuses() == [
        {"jobId": job_id, "status": "failed", "attempt": 1, "lastSeq": 1, "error": err}
    ]
    # A late activity for a finished job neither runs nor changes it.
    late = FakeLLM([(0.0, "late")])
    result = await run_job(job_id, store=store, llm=late, sender=FakeSender(), config=CONFIG)
    assert result.status == "failed" and late.calls == 0


async def test_flush_cost(store: JobStore) -> None:
    """One storage call per flush: time 50 flushes of 3 batches each against Azurite."""
    job_id = await new_job(store)
    run = await store.claim_attempt(job_id)
    t0 = time.perf_counter()
    for i in range(50):
        batches = [B(3 * i + k, "word ") for k in (1, 2, 3)]
        run = await store.flush(run, batches, Metrics(deltas=3 * i + 3))
    per_flush_ms = (time.perf_counter() - t0) / 50 * 1000
    print(f"flush of 3 batches against Azurite: {per_flush_ms:.1f} ms")
    assert per_flush_ms < 200
    assert await store.text(job_id, 1) == "word " * 150
