"""JobStore against a real Azurite: transitions, ETag races, cancel, transcripts, erase, paging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relay.errors import (
    AttemptSuperseded,
    ConcurrencyConflict,
    InvalidTransition,
    JobCanceled,
    JobNotFound,
    LLMUnavailable,
    RunStopped,
    ValidationError,
)
from relay.jobs import ChatMessage, JobRequest, Target
from relay.settings import StorageConfig
from relay.store import JobStore, Metrics

pytestmark = pytest.mark.azurite

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True)
class B:
    seq: int
    text: str
    deltas: int = 1


def new_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def store(storage_connection_string: str) -> AsyncIterator[JobStore]:
    prefix = "t" + uuid.uuid4().hex[:12]
    s = JobStore.from_config(StorageConfig(connection_string=storage_connection_string), prefix)
    await s.ensure_tables()
    yield s
    await s.aclose()


async def make_job(store: JobStore, owner: str = "alice", prompt: str = "hello") -> str:
    job_id = new_id()
    req = JobRequest(prompt=prompt, messages=None, max_tokens=50)
    await store.create_job(job_id, owner, req, Target("user", owner), T0)
    return job_id


async def test_create_and_get(store: JobStore) -> None:
    job_id = await make_job(store, prompt="what is 2+2?")
    rec = await store.get_job(job_id)
    assert rec.status == "queued"
    assert rec.owner == "alice"
    assert rec.request == JobRequest(prompt="what is 2+2?", messages=None, max_tokens=50)
    assert rec.target == Target("user", "alice")
    assert rec.created_at == T0.timestamp()
    pub = rec.to_public_dict()
    assert pub["jobId"] == job_id
    assert pub["createdAt"] == "2026-01-02T03:04:05.000Z"
    assert pub["target"] == {"kind": "user", "id": "alice"}
    assert pub["metrics"] == {"ttftMs": None, "durationMs": None, "deltas": 0, "messages": 0}
    assert "prompt" not in str(pub)


async def test_ping_and_epoch_times(store: JobStore) -> None:
    assert await store.ping() is True
    job_id = new_id()
    req = JobRequest(prompt="p", messages=None)
    rec = await store.create_job(job_id, "erin", req, Target("user", "erin"), 1_700_000_000.25)
    assert rec.created_at == 1_700_000_000.25
    assert (await store.get_job(job_id)).to_public_dict()["createdAt"] == (
        "2023-11-14T22:13:20.250Z"
    )


async def test_missing_and_malformed_ids(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.get_job(new_id())
    for bad in ["", "a/b", "x" * 101, "a'b", "a b"]:
        with pytest.raises(JobNotFound):
            await store.get_job(bad)


async def test_duplicate_job_id_is_a_conflict(store: JobStore) -> None:
    job_id = await make_job(store)
    req = JobRequest(prompt="again", messages=None)
    with pytest.raises(ConcurrencyConflict):
        await store.create_job(job_id, "alice", req, Target("user", "alice"), T0)


async def test_transitions_follow_the_table(store: JobStore) -> None:
    job_id = await make_job(store)
    rec = await store.transition(job_id, "starting")
    assert rec.status == "starting"
    with pytest.raises(InvalidTransition):
        await store.transition(job_id, "queued")
    run = await store.claim_attempt(job_id)
    assert (run.attempt, run.record.status) == (1, "running")
    assert run.record.started_at is not None
    done = await store.finish(run, "completed", usage={"totalTokens": 3}, metrics=Metrics())
    assert done.status == "completed" and done.completed_at is not None
    assert done.usage == {"totalTokens": 3}
    for late in ["running", "failed", "canceled", "starting"]:
        with pytest.raises(InvalidTransition):
            await store.transition(job_id, late)
    assert (await store.get_job(job_id)).status == "completed"


async def test_transition_with_stale_etag(store: JobStore) -> None:
    job_id = await make_job(store)
    rec = await store.get_job(job_id)
    await store.transition(job_id, "starting", etag=rec.etag)
    with pytest.raises(ConcurrencyConflict):
        await store.transition(job_id, "failed", etag=rec.etag)
    assert (await store.get_job(job_id)).status == "starting"


async def test_concurrent_transitions_one_terminal_winner(store: JobStore) -> None:
    job_id = await make_job(store)
    await store.transition(job_id, "starting")
    results = await asyncio.gather(
        store.transition(job_id, "failed", error={"code": "timeout", "message": "late"}),
        store.transition(job_id, "canceled"),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert len(losers) == 1 and isinstance(losers[0], InvalidTransition)
    assert (await store.get_job(job_id)).status == winners[0].status


async def test_concurrent_claims_get_distinct_attempts(store: JobStore) -> None:
    job_id = await make_job(store)
    await store.transition(job_id, "starting")
    runs = await asyncio.gather(*(store.claim_attempt(job_id) for _ in range(4)))
    assert sorted(r.attempt for r in runs) == [1, 2, 3, 4]
    newest = max(runs, key=lambda r: r.attempt)
    for run in runs:
        if run is newest:
            await store.flush(run, [B(1, "ok")], Metrics(deltas=1, messages=1))
        else:
            with pytest.raises(AttemptSuperseded):
                await store.flush(run, [B(1, "stale")], Metrics())
    assert await store.text(job_id, newest.attempt) == "ok"
    for run in runs:
        if run is not newest:
            assert await store.text(job_id, run.attempt) == ""


async def test_claim_from_queued_and_refusals(store: JobStore) -> None:
    job_id = await make_job(store)
    run = await store.claim_attempt(job_id)  # queued -> (starting) -> running
    assert run.attempt == 1
    await store.finish(run, "failed", error=LLMUnavailable("down"))
    with pytest.raises(InvalidTransition):
        await store.claim_attempt(job_id)
    rec = await store.get_job(job_id)
    assert rec.error == {"code": "llm_unavailable", "message": "down"}
    canceled = await make_job(store)
    await store.request_cancel(canceled)
    with pytest.raises(JobCanceled):
        await store.claim_attempt(canceled)


async def test_flush_records_and_events_after_seq(store: JobStore) -> None:
    job_id = await make_job(store)
    run = await store.claim_attempt(job_id)
    run = await store.flush(run, [B(1, "Hel"), B(2, "lo")], Metrics(deltas=2, messages=2))
    run = await store.flush(run, [B(3, ", wor"), B(4, "ld")], Metrics(deltas=4, messages=4))
    rec = await store.get_job(job_id)
    assert rec.last_seq == 4 and rec.metrics.deltas == 4
    assert await store.text(job_id, 1) == "Hello, world"
    after = await store.events(job_id, 1, after_seq=2)
    assert [(e.seq, e.text) for e in after] == [(3, ", wor"), (4, "ld")]
    assert [e.seq for e in await store.events(job_id, 1, after_seq=0, limit=3)] == [1, 2, 3]
    assert await store.events(job_id, 1, after_seq=4) == []
    assert await store.events(job_id, 2) == []
    # A harmless write in between (a cancel that was already there is not one) is retried.
    await store.transition(job_id, "running")
    run = await store.flush(run, [B(5, "!")], Metrics(deltas=5, messages=5))
    assert await store.text(job_id, 1) == "Hello, world!"


async def test_large_flush_is_chunked(store: JobStore) -> None:
    job_id = await make_job(store)
    run = await store.claim_attempt(job_id)
    batches = [B(i, f"{i},") for i in range(1, 251)]
    await store.flush(run, batches, Metrics(deltas=250, messages=250))
    assert await store.text(job_id, 1) == "".join(f"{i}," for i in range(1, 251))
    assert (await store.get_job(job_id)).last_seq == 250


async def test_cancel_running_stops_the_next_flush(store: JobStore) -> None:
    job_id = await make_job(store)
    run = await store.claim_attempt(job_id)
    run = await store.flush(run, [B(1, "a")], Metrics())
    rec = await store.request_cancel(job_id)
    assert rec.status == "running" and rec.cancel_requested
    with pytest.raises(JobCanceled):
        await store.flush(run, [B(2, "b")], Metrics())
    assert await store.text(job_id, 1) == "a"
    done = await store.finish(run, "canceled")
    assert done.status == "canceled"
    again = await store.request_cancel(job_id)  # terminal: unchanged
    assert again.status == "canceled" and again.etag == done.etag


async def test_cancel_queued_is_immediate(store: JobStore) -> None:
    job_id = await make_job(store)
    rec = await store.request_cancel(job_id)
    assert rec.status == "canceled" and rec.completed_at is not None


async def test_flush_after_job_failed_elsewhere(store: JobStore) -> None:
    job_id = await make_job(store)
    run = await store.claim_attempt(job_id)
    await store.transition(job_id, "failed", error={"code": "timeout", "message": "t"})
    with pytest.raises(RunStopped):
        await store.flush(run, [B(1, "late")], Metrics())
    with pytest.raises(InvalidTransition):
        await store.finish(run, "completed")


async def test_note_error_keeps_running(store: JobStore) -> None:
    job_id = await make_job(store)
    run = await store.claim_attempt(job_id)
    await store.note_error(run, LLMUnavailable("stream cut"), Metrics(deltas=3))
    rec = await store.get_job(job_id)
    assert rec.status == "running"
    assert rec.error == {"code": "llm_unavailable", "message": "stream cut"}
    run2 = await store.claim_attempt(job_id)
    assert run2.attempt == 2 and run2.record.error is None
    assert (await store.get_job(job_id)).error is None


async def test_long_prompts_round_trip(store: JobStore) -> None:
    long_prompt = ("héllo 😀 " * 40_000)[:300_000]  # astral chars count double in UTF-16
    turns = tuple(
        ChatMessage("user" if i % 2 == 0 else "assistant", f"{i}:" + "x" * 31_990)
        for i in range(31)
    )
    for req in [
        JobRequest(prompt=long_prompt, messages=None, system="s" * 8000),
        JobRequest(prompt=None, messages=turns),
    ]:
        job_id = new_id()
        await store.create_job(job_id, "bob", req, Target("user", "bob"), T0)
        got = await store.get_job(job_id)
        assert got.request == req
        run = await store.claim_attempt(job_id)
        assert run.record.request == req
        await store.finish(run, "completed")
        erased = await store.erase(job_id)
        assert erased.erased and erased.request is None and erased.status == "completed"


async def test_erase(store: JobStore) -> None:
    job_id = await make_job(store, prompt="secret prompt")
    run = await store.claim_attempt(job_id)
    with pytest.raises(InvalidTransition):
        await store.erase(job_id)
    run = await store.flush(run, [B(1, "secret answer")], Metrics(deltas=1, messages=1))
    await store.finish(run, "completed", metrics=Metrics(deltas=1, messages=1, bytes=13))
    rec = await store.erase(job_id)
    assert rec.erased and rec.request is None
    assert rec.status == "completed" and rec.metrics.bytes == 13
    assert await store.text(job_id, 1) == ""
    entity = await store._jobs.get_entity(job_id, "job")
    assert not any("secret" in str(v) for v in entity.values())
    again = await store.erase(job_id)
    assert again.erased


async def test_list_jobs_pages_newest_first(store: JobStore) -> None:
    ids = []
    for i in range(7):
        job_id = new_id()
        req = JobRequest(prompt=f"p{i}", messages=None)
        await store.create_job(job_id, "carol", req, Target("user", "carol"), T0 + timedelta(i))
        ids.append(job_id)
    await make_job(store, owner="dave")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = await store.list_jobs("carol", limit=3, cursor=cursor)
        pages += 1
        seen += [r.job_id for r in page]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3
    assert (await store.list_jobs("nobody"))[0] == []
    with pytest.raises(ValidationError):
        await store.list_jobs("carol", cursor="garbage")
    with pytest.raises(ValidationError):
        await store.list_jobs("carol", limit=0)


async def test_owner_with_unsafe_characters(store: JobStore) -> None:
    job_id = await make_job(store, owner="a/b#c?d\\e")
    page, _ = await store.list_jobs("a/b#c?d\\e")
    assert [r.job_id for r in page] == [job_id]
    assert page[0].owner == "a/b#c?d\\e"


async def test_stuck_and_purge(store: JobStore) -> None:
    now = datetime.now(UTC)
    stuck = await make_job(store)
    await store.transition(stuck, "starting")
    found = await store.stuck_jobs("starting", now + timedelta(minutes=1))
    assert [r.job_id for r in found] == [stuck]
    assert await store.stuck_jobs("starting", now - timedelta(minutes=1)) == []
    done = await make_job(store)
    run = await store.claim_attempt(done)
    run = await store.flush(run, [B(1, "x")], Metrics())
    await store.finish(run, "completed")
    assert await store.purge_older_than(now - timedelta(minutes=1)) == 0
    assert await store.purge_older_than(now + timedelta(minutes=1)) == 1
    with pytest.raises(JobNotFound):
        await store.get_job(done)
    assert await store.text(done, 1) == ""
    assert (await store.get_job(stuck)).status == "starting"
    assert [r.job_id for r in (await store.list_jobs("alice"))[0]] == [stuck]


async def test_claim_lets_what_ready_started_run_before_its_write(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run opens its model request in `ready`; that request's first step must run
    before the claim's write is built, so the model's ttft overlaps the claim."""
    job_id = await make_job(store)
    order: list[str] = []

    async def model_request() -> None:
        order.append("model request sent")

    real_merge = store._merge

    async def merge(*args: Any, **kwargs: Any) -> str:
        order.append("claim write built")
        return await real_merge(*args, **kwargs)

    monkeypatch.setattr(store, "_merge", merge)
    started: list[asyncio.Task[None]] = []
    run = await store.claim_attempt(
        job_id, ready=lambda record: started.append(asyncio.ensure_future(model_request()))
    )
    await asyncio.gather(*started)
    assert run.attempt == 1
    assert order == ["model request sent", "claim write built"]
