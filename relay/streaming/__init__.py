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

from ._routine import finalize_job, run_job
from ._types import LLMSource, RunResult, RunStore, Sender, StreamConfig

__all__ = [
    "LLMSource",
    "RunResult",
    "RunStore",
    "Sender",
    "StreamConfig",
    "finalize_job",
    "run_job",
]
