"""`run_job` and `finalize_job`: how an attempt starts, and every way it ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import _state
from ..errors import (
    AttemptSuperseded,
    InvalidTransition,
    JobCanceled,
    LLMError,
    RunStopped,
    ValidationError,
)
from ..jobs import build_chat_request
from ..llm import StreamEnd
from ..store import JobRecord, Run
from ..telemetry import job_scope
from ._prefetch import Prefetch
from ._run import RunState, send_quietly, status_args
from ._types import LLMSource, RunResult, RunStore, Sender, StreamConfig

__all__ = ["finalize_job", "run_job"]

log = logging.getLogger("relay.streaming")
FINAL_SEND_TIMEOUT_S = 5.0  # finalize_job's bound on its status message (see send_quietly)


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
    on a retry), and `StoreError` when the job cannot be recorded. Every log record of the
    run carries the job id (`relay.telemetry.job_scope`).
    """
    with job_scope(job_id):
        return await _run_job(
            job_id, store=store, llm=llm, sender=sender, config=config, clock=clock
        )


async def _run_job(
    job_id: str,
    *,
    store: RunStore,
    llm: LLMSource,
    sender: Sender,
    config: StreamConfig,
    clock: Callable[[], float],
) -> RunResult:
    started = clock()
    opened: list[tuple[Mapping[str, Any], Prefetch]] = []

    def ready(record: JobRecord) -> None:
        # The claim's checks passed: ask the model while the claim is written (see
        # _prefetch). Nothing is recorded or sent before the claim has been written.
        if opened or record.request is None:
            return
        try:
            request = build_chat_request(record.request, config.profile, config.default_max_tokens)
        except Exception:
            return  # raised again below, after the claim, where it is handled
        opened.append((request, Prefetch(llm, request)))

    try:
        run = await store.claim_attempt(job_id, ready)
    except BaseException as exc:
        for _, prefetch in opened:
            await prefetch.aclose()
        if isinstance(exc, JobCanceled):
            record = await finalize_job(job_id, _state.CANCELED, None, store=store, sender=sender)
            return RunResult(job_id, record.status, record.attempt, record.last_seq)
        if isinstance(exc, InvalidTransition):
            record = await store.get_job(job_id, with_request=False)  # ended: say how
            return RunResult(job_id, record.status, record.attempt, record.last_seq)
        raise
    try:
        return await _run_claimed(run, opened, store=store, llm=llm, sender=sender,
                                  config=config, clock=clock, started=started)  # fmt: skip
    finally:
        for _, prefetch in opened:  # idempotent; also when the run never read it
            await prefetch.aclose()


async def _run_claimed(
    run: Run,
    opened: list[tuple[Mapping[str, Any], Prefetch]],
    *,
    store: RunStore,
    llm: LLMSource,
    sender: Sender,
    config: StreamConfig,
    clock: Callable[[], float],
    started: float,
) -> RunResult:
    job_id = run.job_id
    # No `jobId` in `extra`: the job scope puts it on every record, and logging raises
    # KeyError when `extra` names an attribute the record already has.
    extra = {"attempt": run.attempt}
    log.info("stream attempt started", extra=extra)
    if run.record.request is None:
        erased = ValidationError("request", "the job's request was erased")
        await store.finish(run, _state.FAILED, error=erased)
        raise erased
    source: LLMSource = llm
    if opened:
        request, source = opened[0]
    else:
        request = build_chat_request(run.record.request, config.profile, config.default_max_tokens)
    state = RunState(run, run.record.target, store, sender, config, clock, started)
    gen = asyncio.create_task(state.generate(source, request))
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


async def _end_completed(state: RunState, extra: dict[str, Any]) -> RunResult:
    usage, metrics = _usage(state.end), state.metrics()
    try:
        record = await state.store.finish(
            state.run, _state.COMPLETED, usage=usage, metrics=metrics, delivery=state.delivery
        )
    except (RunStopped, InvalidTransition) as exc:
        # Canceled, superseded or failed elsewhere after the last flush: theirs to report.
        log.info("stream attempt ended but the job moved on: %s", exc.code, extra=extra)
        return RunResult(state.run.job_id, "stopped", state.run.attempt, state.last_seq)
    args = status_args(record, _state.COMPLETED, state.last_seq, usage=usage)
    await send_quietly(
        state.sender, state.target, "status", args, state.config.final_send_timeout_s
    )
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


async def _end_canceled(state: RunState, extra: dict[str, Any]) -> RunResult:
    metrics = state.metrics()
    with contextlib.suppress(RunStopped, InvalidTransition):  # someone else ended it
        await state.store.finish(
            state.run, _state.CANCELED, metrics=metrics, delivery=state.delivery
        )
    args = status_args(state.run, _state.CANCELED, state.last_seq)
    await send_quietly(
        state.sender, state.target, "status", args, state.config.final_send_timeout_s
    )
    log.info("stream attempt canceled", extra=extra)
    run = state.run
    return RunResult(
        run.job_id, _state.CANCELED, run.attempt, state.last_seq, state.delivery, metrics=metrics
    )


async def _end_failed_attempt(
    state: RunState, error: BaseException, extra: dict[str, Any]
) -> RunResult:
    if not isinstance(error, LLMError):
        raise error
    with contextlib.suppress(RunStopped):  # superseded meanwhile: the error is moot
        await state.store.note_error(state.run, error, state.metrics(), state.delivery)
    # The job is still running: the orchestrator may start another attempt.
    code = {"code": error.code, "message": error.message}
    args = status_args(state.run, _state.RUNNING, state.last_seq, error=code)
    await send_quietly(
        state.sender, state.target, "status", args, state.config.final_send_timeout_s
    )
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
    args = status_args(record, record.status, record.last_seq, error=record.error)
    await send_quietly(sender, record.target, "status", args, FINAL_SEND_TIMEOUT_S)
    return record
