"""The routine the streaming activity runs: model stream -> batches -> record -> SignalR.

Three tasks per run, and nothing shared between jobs (no global locks):

- generate: reads the model stream and feeds the batcher with `clock()`; never waits on
  storage or SignalR, so a slow send never slows the model down;
- record:   takes the batches that closed (by size, by time at `next_deadline()`, or at
  the end) and writes them with `store.flush`, all that closed meanwhile in one call. A
  flush is also the run's check that it still owns the job: a cancel, a newer attempt or
  a finished job makes it raise, and the run stops. An idle run flushes every
  `heartbeat_s` so a cancel reaches it during a pause in the model stream, too;
- send:     sends recorded batches, in seq order, as `delta` messages. A batch is sent
  only after it was recorded, so a run whose claim was refused never sends it.

SignalR trouble never stops a run: after a failed send the backlog is skipped (it is
recorded, and clients catch up by seq from the job's events), later batches are still
tried, and the job ends with delivery "degraded".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import _state
from .batcher import Batch, Batcher
from .errors import (
    AttemptSuperseded,
    InvalidTransition,
    JobCanceled,
    LLMError,
    RunStopped,
    SignalRError,
    SignalRRequestError,
    ValidationError,
)
from .jobs import Profile, Target, build_chat_request
from .llm import StreamEnd, StreamEvent, TextDelta
from .store import JobRecord, Metrics, Run

__all__ = [
    "LLMSource",
    "RunResult",
    "RunStore",
    "Sender",
    "StreamConfig",
    "finalize_job",
    "run_job",
]

log = logging.getLogger("relay.streaming")


class Sender(Protocol):
    async def send(self, target: Target, name: str, arguments: Sequence[Any]) -> None: ...


class LLMSource(Protocol):
    def stream(self, request: Mapping[str, Any]) -> AsyncIterator[StreamEvent]: ...


class RunStore(Protocol):
    """The part of `relay.store.JobStore` a run uses (unit tests pass a fake)."""

    async def claim_attempt(self, job_id: str) -> Run: ...
    async def flush(self, run: Run, batches: Sequence[Batch], metrics: Metrics) -> Run: ...
    async def note_error(
        self, run: Run, error: LLMError, metrics: Metrics, delivery: str = "ok"
    ) -> Run: ...
    async def finish(
        self,
        run: Run,
        status: str,
        *,
        usage: Mapping[str, int] | None = None,
        metrics: Metrics | None = None,
        error: Any = None,
        delivery: str = "ok",
    ) -> JobRecord: ...
    async def get_job(self, job_id: str, *, with_request: bool = True) -> JobRecord: ...
    async def transition(
        self, job_id: str, new_status: str, *, etag: str | None = None, **fields: Any
    ) -> JobRecord: ...


@dataclass(frozen=True)
class StreamConfig:
    window_s: float
    max_bytes: int
    profile: Profile = "chat"
    default_max_tokens: int = 1024
    heartbeat_s: float = 2.0  # idle runs flush this often (cancel checks, liveness)
    drain_timeout_s: float = 15.0  # longest wait for the last sends at the end of a run


@dataclass(frozen=True)
class RunResult:
    """How a run ended. status: completed | canceled | superseded | stopped | failed.

    `metrics.messages` counts delta messages SignalR accepted; `last_seq` counts batches
    recorded (the two differ when delivery is degraded).
    """

    job_id: str
    status: str
    attempt: int
    last_seq: int = 0
    delivery: str = "ok"
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    metrics: Metrics = field(default_factory=Metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "status": self.status,
            "attempt": self.attempt,
            "lastSeq": self.last_seq,
            "delivery": self.delivery,
            "finishReason": self.finish_reason,
            "usage": self.usage,
            "metrics": self.metrics.to_dict(),
        }


def _status_args(
    record_or_run: JobRecord | Run, status: str, last_seq: int, **extra: Any
) -> list[dict[str, Any]]:
    body = {
        "jobId": record_or_run.job_id,
        "status": status,
        "attempt": record_or_run.attempt,
        "lastSeq": last_seq,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return [body]


async def _send_quietly(sender: Sender, target: Target, name: str, args: list[Any]) -> bool:
    """Send one message; SignalR trouble is logged (code only), never raised."""
    try:
        await sender.send(target, name, args)
    except SignalRError as exc:
        log.warning("signalr send of %s failed: %s", name, exc.code)
        return False
    return True


class _Run:
    """One attempt's state, shared by its three tasks (one event loop, no threads)."""

    def __init__(
        self,
        run: Run,
        target: Target,
        store: RunStore,
        sender: Sender,
        config: StreamConfig,
        clock: Callable[[], float],
        started: float,
    ) -> None:
        self.run, self.target, self.store, self.sender = run, target, store, sender
        self.config, self.clock, self.started = config, clock, started
        self.batcher = Batcher.for_job(run.job_id, run.attempt, config.window_s, config.max_bytes)
        self.closed: list[Batch] = []  # closed, not yet recorded
        self.recorded: list[Batch] = []  # recorded, not yet sent
        self.record_wake = asyncio.Event()
        self.send_wake = asyncio.Event()
        self.generating = True
        self.recording = True
        self.first_delta_at: float | None = None
        self.deltas = 0
        self.sent_messages = 0
        self.sent_bytes = 0
        self.last_seq = 0
        self.delivery = "ok"
        self.end: StreamEnd | None = None

    def metrics(self) -> Metrics:
        ttft = None if self.first_delta_at is None else (self.first_delta_at - self.started)
        return Metrics(
            ttft_ms=None if ttft is None else round(ttft * 1000, 1),
            duration_ms=round((self.clock() - self.started) * 1000, 1),
            deltas=self.deltas,
            messages=self.sent_messages,
            bytes=self.sent_bytes,
        )

    def _closed(self, batches: list[Batch]) -> None:
        if batches:
            self.closed.extend(batches)
            self.record_wake.set()

    async def generate(self, llm: LLMSource, request: Mapping[str, Any]) -> None:
        stream = llm.stream(request)
        try:
            async for event in stream:
                now = self.clock()
                if isinstance(event, TextDelta):
                    if self.first_delta_at is None:
                        self.first_delta_at = now
                    self.deltas += 1
                    was_open = self.batcher.next_deadline() is not None
                    self._closed(self.batcher.feed(event.text, now))
                    if not was_open and self.batcher.next_deadline() is not None:
                        self.record_wake.set()  # a batch opened: the recorder owns its deadline
                elif isinstance(event, StreamEnd):
                    self.end = event
        finally:
            # A stopped run closes the model stream (and its HTTP response) at once.
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            # Also on an LLM error: what was generated is recorded before the error counts.
            self._closed(self.batcher.finish(self.clock()))
            self.generating = False
            self.record_wake.set()

    async def record(self) -> None:
        last_write = self.clock()
        try:
            while True:
                now = self.clock()
                ready, self.closed = self.closed + self.batcher.poll(now), []
                if ready or now - last_write >= self.config.heartbeat_s:
                    self.run = await self.store.flush(self.run, ready, self.metrics())
                    last_write = self.clock()
                    if ready:
                        self.last_seq = ready[-1].seq
                        self.recorded.extend(ready)
                        self.send_wake.set()
                    continue
                if not self.generating and not self.closed:
                    return
                timeout = self.config.heartbeat_s - (now - last_write)
                deadline = self.batcher.next_deadline()
                if deadline is not None:
                    # The batcher closes a batch only once `now` is past its deadline.
                    timeout = min(timeout, max(deadline - now, 0.0) + 0.002)
                self.record_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.record_wake.wait(), max(timeout, 0.001))
        finally:
            self.recording = False
            self.send_wake.set()

    async def send(self) -> None:
        running = _status_args(self.run, "running", 0)
        failing = not await _send_quietly(self.sender, self.target, "status", running)
        if failing:
            self.delivery = "degraded"
        while True:
            if not self.recorded:
                if not self.recording:
                    return
                self.send_wake.clear()
                await self.send_wake.wait()
                continue
            batches, self.recorded = self.recorded, []
            if failing:
                batches = batches[-1:]  # the skipped ones are recorded: clients catch up
            for batch in batches:
                arguments = [
                    {
                        "jobId": self.run.job_id,
                        "seq": batch.seq,
                        "attempt": self.run.attempt,
                        "text": batch.text,
                    }
                ]
                try:
                    await self.sender.send(self.target, "delta", arguments)
                except SignalRRequestError as exc:
                    # Refused (4xx): sending more would be refused the same way.
                    log.warning("signalr refused deltas (%s); delivery degraded", exc.status)
                    self.delivery = "degraded"
                    return
                except SignalRError as exc:
                    log.warning("signalr send failed: %s; delivery degraded", exc.code)
                    self.delivery, failing = "degraded", True
                    break
                failing = False
                self.sent_messages += 1
                self.sent_bytes += len(json.dumps(arguments, ensure_ascii=False).encode())


async def _stop(*tasks: asyncio.Task[None]) -> None:
    """Cancel tasks and wait for them; their own errors no longer matter."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


def _usage(end: StreamEnd | None) -> dict[str, int] | None:
    if end is None or end.usage is None:
        return None
    u = end.usage
    return {
        "promptTokens": u.prompt_tokens,
        "completionTokens": u.completion_tokens,
        "totalTokens": u.total_tokens,
    }


async def run_job(
    job_id: str,
    *,
    store: RunStore,
    llm: LLMSource,
    sender: Sender,
    config: StreamConfig,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Run one attempt of a job to its end (see the module docstring).

    Returns the outcome for completed, canceled and superseded runs; raises the typed
    `LLMError` after recording a failed attempt's text and error (the orchestrator decides
    on a retry), and `StoreError` when the job cannot be recorded.
    """
    started = clock()
    try:
        run = await store.claim_attempt(job_id)
    except JobCanceled:
        record = await finalize_job(job_id, _state.CANCELED, None, store=store, sender=sender)
        return RunResult(job_id, record.status, record.attempt, record.last_seq)
    except InvalidTransition:
        record = await store.get_job(job_id, with_request=False)  # already ended: say how
        return RunResult(job_id, record.status, record.attempt, record.last_seq)
    extra = {"jobId": job_id, "attempt": run.attempt}
    log.info("stream attempt started", extra=extra)
    if run.record.request is None:
        erased = ValidationError("request", "the job's request was erased")
        await store.finish(run, _state.FAILED, error=erased)
        raise erased
    request = build_chat_request(run.record.request, config.profile, config.default_max_tokens)
    state = _Run(run, run.record.target, store, sender, config, clock, started)
    gen = asyncio.create_task(state.generate(llm, request))
    rec = asyncio.create_task(state.record())
    snd = asyncio.create_task(state.send())
    try:
        await rec
    except JobCanceled:
        await _stop(gen, snd)
        return await _end_canceled(state, extra)
    except RunStopped as stop:
        await _stop(gen, snd)
        log.info("stream attempt stopped: %s", stop.code, extra=extra)
        status = "superseded" if isinstance(stop, AttemptSuperseded) else "stopped"
        return RunResult(job_id, status, run.attempt, state.last_seq, state.delivery)
    except BaseException:
        await _stop(gen, snd)
        raise
    # Everything generated is recorded; let the last sends go out (bounded).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(snd), config.drain_timeout_s)
    if not snd.done():
        state.delivery = "degraded"
        await _stop(snd)
    error = gen.exception()
    if error is not None:
        return await _end_failed_attempt(state, error, extra)
    return await _end_completed(state, extra)


async def _end_completed(state: _Run, extra: dict[str, Any]) -> RunResult:
    usage, metrics = _usage(state.end), state.metrics()
    try:
        record = await state.store.finish(
            state.run, _state.COMPLETED, usage=usage, metrics=metrics, delivery=state.delivery
        )
    except (RunStopped, InvalidTransition) as exc:
        # Canceled, superseded or failed elsewhere after the last flush: theirs to report.
        log.info("stream attempt ended but the job moved on: %s", exc.code, extra=extra)
        return RunResult(state.run.job_id, "stopped", state.run.attempt, state.last_seq)
    args = _status_args(record, _state.COMPLETED, state.last_seq, usage=usage)
    await _send_quietly(state.sender, state.target, "status", args)
    log.info("stream attempt completed", extra={**extra, "delivery": state.delivery})
    return RunResult(
        state.run.job_id,
        _state.COMPLETED,
        state.run.attempt,
        state.last_seq,
        state.delivery,
        state.end.finish_reason if state.end else None,
        usage,
        metrics,
    )


async def _end_canceled(state: _Run, extra: dict[str, Any]) -> RunResult:
    metrics = state.metrics()
    with contextlib.suppress(RunStopped, InvalidTransition):  # someone else ended it
        await state.store.finish(
            state.run, _state.CANCELED, metrics=metrics, delivery=state.delivery
        )
    args = _status_args(state.run, _state.CANCELED, state.last_seq)
    await _send_quietly(state.sender, state.target, "status", args)
    log.info("stream attempt canceled", extra=extra)
    run = state.run
    return RunResult(
        run.job_id, _state.CANCELED, run.attempt, state.last_seq, state.delivery, metrics=metrics
    )


async def _end_failed_attempt(
    state: _Run, error: BaseException, extra: dict[str, Any]
) -> RunResult:
    if not isinstance(error, LLMError):
        raise error
    with contextlib.suppress(RunStopped):  # superseded meanwhile: the error is moot
        await state.store.note_error(state.run, error, state.metrics(), state.delivery)
    # The job is still running: the orchestrator may start another attempt.
    code = {"code": error.code, "message": error.message}
    args = _status_args(state.run, _state.RUNNING, state.last_seq, error=code)
    await _send_quietly(state.sender, state.target, "status", args)
    log.warning("stream attempt failed: %s", error.code, extra=extra)
    raise error


async def finalize_job(
    job_id: str,
    status: str,
    error: Mapping[str, str] | None,
    *,
    store: RunStore,
    sender: Sender,
) -> JobRecord:
    """The orchestrator's last word (failure, timeout, cancel between attempts): record
    `status` unless the job already ended, then tell the target the final status.

    The status message is sent even when the job had already ended (a finalizer retried
    after recording but before sending); clients treat a repeated final status as a no-op.
    """
    if status not in _state.TERMINAL:
        raise ValueError(f"finalize_job needs a terminal status, not {status!r}")
    record = await store.get_job(job_id, with_request=False)
    if record.status not in _state.TERMINAL:
        try:
            record = await store.transition(job_id, status, error=error)
        except InvalidTransition:
            record = await store.get_job(job_id, with_request=False)
    args = _status_args(record, record.status, record.last_seq, error=record.error)
    await _send_quietly(sender, record.target, "status", args)
    return record
