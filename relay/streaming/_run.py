"""One attempt's three tasks: generate (model -> batcher), record (flush), send (SignalR)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..batcher import Batch, Batcher
from ..errors import SignalRError, SignalRRequestError
from ..jobs import Target
from ..llm import StreamEnd, TextDelta
from ..store import JobRecord, Metrics, Run
from ._types import LLMSource, RunStore, Sender, StreamConfig

__all__ = ["RunState", "send_quietly", "status_args"]

log = logging.getLogger("relay.streaming")


def status_args(
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


async def send_quietly(
    sender: Sender, target: Target, name: str, args: list[Any], timeout_s: float | None = None
) -> bool:
    """Send one message; SignalR trouble is logged (code only), never raised.

    `timeout_s` bounds the whole send, the client's own retries included: the final status
    of a run must not hold the run (and the user's admission slot) while SignalR hangs;
    clients learn the final status from the status endpoint as well.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await sender.send(target, name, args)
    except SignalRError as exc:
        log.warning("signalr send of %s failed: %s", name, exc.code)
        return False
    except TimeoutError:
        log.warning("signalr send of %s gave up after %ss", name, timeout_s)
        return False
    return True


class RunState:
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
        running = status_args(self.run, "running", 0)
        failing = not await send_quietly(self.sender, self.target, "status", running)
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
