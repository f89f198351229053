"""run_job and finalize_job with fakes at the boundaries: store, model stream, SignalR.

Timing is virtual (tests/unit/virtual_time.py): the loop's clock moves only when nothing is
ready to run, the run's clock is that same clock, and each fake records when things
happened on it. So timing assertions are exact in principle and hold however loaded the
machine is (real time made them flaky: a slow-store run measured 0.75 s for 0.5 s of
generation under CPU load). The small slack left covers the run's own ordering only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from relay import _state
from relay.batcher import Batch
from relay.errors import (
    AttemptSuperseded,
    ConcurrencyConflict,
    InvalidTransition,
    JobCanceled,
    LLMUnavailable,
    RunStopped,
    SignalRRequestError,
    SignalRTransientError,
)
from relay.jobs import JobRequest, Target
from relay.llm import StreamEnd, StreamEvent, TextDelta, Usage
from relay.store import JobRecord, Metrics, Run
from relay.streaming import StreamConfig, finalize_job
from relay.streaming import run_job as _run_job

from .virtual_time import VirtualTimePolicy, virtual_now

JOB = "job1"
TARGET = Target("user", "alice")


@pytest.fixture(scope="module")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return VirtualTimePolicy()


async def test_the_clock_is_virtual_and_timers_keep_their_order() -> None:
    loop, fired = asyncio.get_running_loop(), []
    start = loop.time()
    loop.call_later(7200.0, fired.append, "late")
    loop.call_later(0.5, fired.append, "early")
    await asyncio.sleep(3600.0)  # an hour, at once: nothing else was ready to run
    assert loop.time() - start == 3600.0 and fired == ["early"]


def run_job(*args: Any, **kwargs: Any) -> Any:
    """relay.streaming.run_job on the loop's (virtual) clock."""
    kwargs.setdefault("clock", virtual_now)
    return _run_job(*args, **kwargs)


class FakeStore:
    """In-memory JobStore with the same refusal rules for runs."""

    def __init__(self, status: str = "starting", flush_delay: float = 0.0) -> None:
        self.record = JobRecord(
            job_id=JOB,
            owner="alice",
            status=status,
            target=TARGET,
            request=JobRequest(prompt="hi", messages=None),
            attempt=0,
            last_seq=0,
            created_at=0.0,
        )
        self.rows: dict[tuple[int, int], str] = {}
        self.flush_sizes: list[int] = []
        self.flush_delay = flush_delay
        self.noted: Any = None
        self.claim_delay = 0.0  # the claim write's round trip, after `ready`
        self.claim_error: Exception | None = None  # the write is refused
        self.claimed_at: float | None = None

    def cancel(self) -> None:
        self.record = replace(self.record, cancel_requested=True)

    def supersede(self) -> None:
        self.record = replace(self.record, attempt=self.record.attempt + 1)

    def text(self, attempt: int = 1) -> str:
        return "".join(t for (a, _), t in sorted(self.rows.items()) if a == attempt)

    async def claim_attempt(
        self, job_id: str, ready: Callable[[JobRecord], None] | None = None
    ) -> Run:
        if self.record.status == "canceled" or self.record.cancel_requested:
            raise JobCanceled()
        current = "starting" if self.record.status == "queued" else self.record.status
        _state.check_transition(current, "running")
        if ready is not None:
            ready(self.record)
        await asyncio.sleep(self.claim_delay)  # the write: the model request may go first
        if self.claim_error is not None:
            raise self.claim_error
        self.claimed_at = virtual_now()
        self.record = replace(self.record, status="running", attempt=self.record.attempt + 1)
        return Run(job_id, self.record.attempt, "e", self.record)

    def _check(self, run: Run) -> None:
        if self.record.attempt != run.attempt:
            raise AttemptSuperseded(run.attempt, self.record.attempt)
        if self.record.cancel_requested or self.record.status == "canceled":
            raise JobCanceled()
        if self.record.status in _state.TERMINAL:
            raise RunStopped("ended")

    async def flush(self, run: Run, batches: Sequence[Batch], metrics: Metrics) -> Run:
        await asyncio.sleep(self.flush_delay)
        self._check(run)
        self.flush_sizes.append(len(batches))
        for b in batches:
            self.rows[(run.attempt, b.seq)] = b.text
        if batches:
            self.record = replace(self.record, last_seq=batches[-1].seq, metrics=metrics)
        return run

    async def note_error(self, run: Run, error: Any, metrics: Metrics, delivery: str = "ok") -> Run:
        if self.record.attempt != run.attempt:
            raise AttemptSuperseded(run.attempt, self.record.attempt)
        self.noted = error
        self.record = replace(self.record, error={"code": error.code, "message": error.message})
        return run

    async def finish(self, run: Run, status: str, **kw: Any) -> JobRecord:
        if self.record.attempt != run.attempt:
            raise AttemptSuperseded(run.attempt, self.record.attempt)
        _state.check_transition(self.record.status, status)
        self.record = replace(
            self.record,
            status=status,
            usage=kw.get("usage"),
            metrics=kw.get("metrics") or Metrics(),
            delivery=kw.get("delivery", "ok"),
        )
        return self.record

    async def get_job(self, job_id: str, *, with_request: bool = True) -> JobRecord:
        return self.record

    async def transition(self, job_id: str, new_status: str, **fields: Any) -> JobRecord:
        _state.check_transition(self.record.status, new_status)
        self.record = replace(self.record, status=new_status, error=fields.get("error"))
        return self.record


@dataclass
class FakeLLM:
    """Yields scripted (delay_s, text) deltas, then a StreamEnd, or raises `error`."""

    script: list[tuple[float, str]]
    error: Exception | None = None
    yielded_at: list[float] = field(default_factory=list)
    closed: bool = False
    calls: int = 0

    async def stream(self, request: Mapping[str, Any]) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        assert request["messages"] == [{"role": "user", "content": "hi"}]
        try:
            for delay, text in self.script:
                await asyncio.sleep(delay)
                self.yielded_at.append(virtual_now())
                yield TextDelta(text)
            if self.error is not None:
                raise self.error
            yield StreamEnd("stop", Usage(3, len(self.script), 3 + len(self.script)))
        finally:
            self.closed = True


@dataclass
class FakeSender:
    delay: float = 0.0
    fail: Exception | None = None
    sent: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    attempts: int = 0
    delta_attempts: int = 0

    async def send(self, target: Target, name: str, arguments: Sequence[Any]) -> None:
        assert target == TARGET
        self.attempts += 1
        self.delta_attempts += name == "delta"
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        self.sent.append((virtual_now(), name, dict(arguments[0])))

    def deltas(self) -> list[dict[str, Any]]:
        return [a for _, n, a in self.sent if n == "delta"]

    def statuses(self) -> list[dict[str, Any]]:
        return [a for _, n, a in self.sent if n == "status"]


def config(window_s: float = 0.05, heartbeat_s: float = 2.0) -> StreamConfig:
    return StreamConfig(window_s=window_s, max_bytes=2048, heartbeat_s=heartbeat_s)


async def test_order_and_exact_text() -> None:
    words = ["Hel", "lo", ", ", "wörld", " 😀", "!"] * 20
    llm = FakeLLM([(0.004, w) for w in words])
    store, sender = FakeStore(), FakeSender()
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    expected = "".join(words)
    deltas = sender.deltas()
    assert "".join(d["text"] for d in deltas) == expected
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert all(d["jobId"] == JOB and d["attempt"] == 1 for d in deltas)
    assert 1 < len(deltas) < len(words)  # coalesced, but not into one
    assert store.text() == expected
    statuses = sender.statuses()
    assert statuses[0] == {"jobId": JOB, "status": "running", "attempt": 1, "lastSeq": 0}
    usage = {"promptTokens": 3, "completionTokens": 120, "totalTokens": 123}
    assert statuses[-1] == {
        "jobId": JOB,
        "status": "completed",
        "attempt": 1,
        "lastSeq": len(deltas),
        "usage": usage,
    }
    assert result.status == "completed" and result.delivery == "ok"
    assert result.metrics.deltas == len(words)
    assert result.metrics.messages == len(deltas)
    assert result.metrics.ttft_ms is not None and result.metrics.ttft_ms >= 4
    assert store.record.status == "completed" and store.record.usage == usage
    assert store.record.last_seq == len(deltas)


async def test_first_delta_goes_out_at_once() -> None:
    llm = FakeLLM([(0.1, "first"), (0.01, "second"), (0.01, "third")])
    sender = FakeSender()
    await run_job(JOB, store=FakeStore(), llm=llm, sender=sender, config=config(window_s=1.0))
    first_sent = next(t for t, n, a in sender.sent if n == "delta" and a["seq"] == 1)
    assert first_sent - llm.yielded_at[0] < 0.05  # no window on time to first token
    assert sender.deltas()[0]["text"] == "first"


async def test_pause_in_the_stream_still_flushes_on_time() -> None:
    llm = FakeLLM([(0.0, "a"), (0.01, "b"), (0.01, "c"), (0.8, "d")])
    sender = FakeSender()
    store = FakeStore()
    await run_job(JOB, store=store, llm=llm, sender=sender, config=config(window_s=0.1))
    by_text = {a["text"]: t for t, n, a in sender.sent if n == "delta"}
    assert set(by_text) == {"a", "bc", "d"}
    # "b" arrived at yielded_at[1]; it waited at most about one window, not for "d".
    assert by_text["bc"] - llm.yielded_at[1] < 0.1 + 0.06
    assert by_text["bc"] < llm.yielded_at[3]
    assert store.flush_sizes.count(0) == 0  # no empty flushes: no polling while idle


async def test_cancel_mid_stream_stops_within_a_window() -> None:
    llm = FakeLLM([(0.02, "x")] * 200)  # 4 s of answer
    store, sender = FakeStore(), FakeSender()
    task = asyncio.create_task(
        run_job(JOB, store=store, llm=llm, sender=sender, config=config(window_s=0.05))
    )
    await asyncio.sleep(0.3)
    store.cancel()
    canceled_at = virtual_now()
    result = await asyncio.wait_for(task, 2)
    assert virtual_now() - canceled_at < 0.05 + 0.1
    assert result.status == "canceled"
    assert store.record.status == "canceled"
    assert llm.closed and len(llm.yielded_at) < 40
    assert sender.statuses()[-1]["status"] == "canceled"
    assert all(t <= canceled_at + 0.02 for t, n, _ in sender.sent if n == "delta")
    recorded = store.text()
    assert recorded == "x" * len(recorded) and len(recorded) >= 10


async def test_cancel_during_a_pause_is_seen_by_the_heartbeat() -> None:
    llm = FakeLLM([(0.0, "a"), (3.0, "b")])
    store, sender = FakeStore(), FakeSender()
    task = asyncio.create_task(
        run_job(JOB, store=store, llm=llm, sender=sender, config=config(heartbeat_s=0.2))
    )
    await asyncio.sleep(0.1)
    store.cancel()
    result = await asyncio.wait_for(task, 1.0)
    assert result.status == "canceled" and store.text() == "a"


async def test_superseded_run_stops_sending_silently() -> None:
    llm = FakeLLM([(0.02, "y")] * 200)
    store, sender = FakeStore(), FakeSender()
    task = asyncio.create_task(run_job(JOB, store=store, llm=llm, sender=sender, config=config()))
    await asyncio.sleep(0.3)
    store.supersede()
    at = virtual_now()
    result = await asyncio.wait_for(task, 2)
    assert result.status == "superseded"
    assert llm.closed
    assert all(t <= at + 0.02 for t, _, _ in sender.sent)
    assert [s["status"] for s in sender.statuses()] == ["running"]
    assert store.record.status == "running"  # the newer attempt owns it


async def test_signalr_down_completes_degraded_with_full_transcript() -> None:
    words = [f"w{i} " for i in range(60)]
    llm = FakeLLM([(0.005, w) for w in words])
    store = FakeStore()
    sender = FakeSender(fail=SignalRTransientError("down", status=503), delay=0.12)
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert result.status == "completed" and result.delivery == "degraded"
    assert store.text() == "".join(words)
    assert store.record.status == "completed" and store.record.delivery == "degraded"
    assert result.metrics.messages == 0
    # It kept trying (not once), but skipped the backlog instead of replaying all of it.
    batches = store.record.last_seq
    assert 1 < sender.delta_attempts < batches
    # Generation was not held up by the failing sends.
    assert llm.yielded_at[-1] - llm.yielded_at[0] < 60 * 0.005 + 0.2


async def test_signalr_refusal_stops_sending_but_not_the_job() -> None:
    llm = FakeLLM([(0.01, "z")] * 20)
    store = FakeStore()
    sender = FakeSender(fail=SignalRRequestError("forbidden", status=403))
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert result.status == "completed" and result.delivery == "degraded"
    assert store.text() == "z" * 20
    assert sender.attempts <= 3  # running status, one refused delta, completed status


async def test_slow_signalr_does_not_slow_generation() -> None:
    llm = FakeLLM([(0.01, "s")] * 50)
    sender, store = FakeSender(delay=0.15), FakeStore()
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert llm.yielded_at[-1] - llm.yielded_at[0] < 50 * 0.01 + 0.2
    assert "".join(d["text"] for d in sender.deltas()) == "s" * 50
    assert result.status == "completed" and result.delivery == "ok"
    assert store.flush_sizes == [1] * len(store.flush_sizes)  # recording did not wait


async def test_slow_store_gets_batches_together_and_does_not_slow_generation() -> None:
    llm = FakeLLM([(0.01, "s")] * 50)
    sender, store = FakeSender(), FakeStore(flush_delay=0.15)
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert llm.yielded_at[-1] - llm.yielded_at[0] < 50 * 0.01 + 0.2
    assert max(store.flush_sizes) > 1  # batches that closed during a flush went together
    assert len(store.flush_sizes) < store.record.last_seq
    assert "".join(d["text"] for d in sender.deltas()) == "s" * 50
    assert [d["seq"] for d in sender.deltas()] == list(range(1, store.record.last_seq + 1))
    assert result.status == "completed"


async def test_llm_error_mid_stream_keeps_partial_text_and_raises() -> None:
    llm = FakeLLM([(0.0, "abc"), (0.01, "def")], error=LLMUnavailable("cut", status=None))
    store, sender = FakeStore(), FakeSender()
    with pytest.raises(LLMUnavailable):
        await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert store.text() == "abcdef"
    assert store.record.status == "running"  # the orchestrator decides
    assert store.record.error == {"code": "llm_unavailable", "message": "cut"}
    last = sender.statuses()[-1]
    assert last["status"] == "running" and last["error"]["code"] == "llm_unavailable"
    assert "".join(d["text"] for d in sender.deltas()) == "abcdef"


async def test_claim_refused_for_canceled_and_finished_jobs() -> None:
    store, sender, llm = FakeStore(), FakeSender(), FakeLLM([(0.0, "never")])
    store.cancel()
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert result.status == "canceled" and store.record.status == "canceled"
    assert sender.statuses()[-1]["status"] == "canceled"
    done = FakeStore(status="completed")
    result = await run_job(JOB, store=done, llm=llm, sender=FakeSender(), config=config())
    assert result.status == "completed"
    assert llm.calls == 0


async def test_finalize_job_records_once_and_reports() -> None:
    store, sender = FakeStore(status="running"), FakeSender()
    error = {"code": "timeout", "message": "the job ran out of time"}
    record = await finalize_job(JOB, "failed", error, store=store, sender=sender)
    assert record.status == "failed" and store.record.error == error
    assert sender.statuses()[-1]["error"] == error
    again = await finalize_job(JOB, "canceled", None, store=store, sender=sender)
    assert again.status == "failed"  # terminal: unchanged
    assert [s["status"] for s in sender.statuses()] == ["failed", "failed"]
    with pytest.raises(ValueError):
        await finalize_job(JOB, "running", None, store=store, sender=sender)


async def test_finalize_survives_signalr_down() -> None:
    store = FakeStore(status="queued")
    sender = FakeSender(fail=SignalRTransientError("down"))
    record = await finalize_job(JOB, "failed", None, store=store, sender=sender)
    assert record.status == "failed"


async def test_jobs_do_not_block_each_other() -> None:
    slow_store = FakeStore(flush_delay=0.5)
    fast_store = FakeStore()
    slow = asyncio.create_task(
        run_job(JOB, store=slow_store, llm=FakeLLM([(0.0, "a")]), sender=FakeSender(),
                config=config())
    )  # fmt: skip
    t0 = virtual_now()
    fast = await run_job(
        JOB, store=fast_store, llm=FakeLLM([(0.0, "b")]), sender=FakeSender(), config=config()
    )
    assert fast.status == "completed" and virtual_now() - t0 < 0.3
    assert (await slow).status == "completed"


def test_invalid_transition_is_what_the_fake_raises() -> None:
    # The fake store must refuse what the real one refuses, or the tests above prove little.
    with pytest.raises(InvalidTransition):
        _state.check_transition("completed", "running")


async def test_the_model_is_asked_while_the_claim_is_written() -> None:
    store, sender = FakeStore(), FakeSender()
    store.claim_delay = 0.2
    llm = FakeLLM([(0.0, "first"), (0.01, "second")])
    result = await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert result.status == "completed" and llm.calls == 1
    assert store.claimed_at is not None
    assert llm.yielded_at[0] < store.claimed_at  # the stream opened during the claim
    # ... but nothing was recorded or sent before the claim was written.
    assert min(t for t, _, _ in sender.sent) >= store.claimed_at
    assert "".join(d["text"] for d in sender.deltas()) == "firstsecond"


async def test_a_refused_claim_closes_the_model_request_unsent() -> None:
    store, sender = FakeStore(), FakeSender()
    store.claim_delay, store.claim_error = 0.05, ConcurrencyConflict("lost the claim")
    llm = FakeLLM([(0.0, "first"), (0.01, "second")])
    with pytest.raises(ConcurrencyConflict):
        await run_job(JOB, store=store, llm=llm, sender=sender, config=config())
    assert llm.calls == 1 and llm.closed
    assert sender.sent == [] and store.rows == {}
