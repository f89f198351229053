"""The sweeper: reconcile jobs stuck where they cannot be, and purge what has expired.

Runs every minute. A job can be stuck when an enqueue was lost (queued too long), when a
host died between recording `starting` and starting the orchestration, or when a host
died mid-run and the orchestration is gone. Each case is reconciled with the
orchestration's own status, or failed with a reason. Finished jobs, transcripts,
idempotency keys and durable history older than RETENTION_DAYS are purged.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from relay.errors import ConcurrencyConflict, InvalidTransition, RelayError
from relay.services import Services, get_services
from relay.streaming import finalize_job

from .intake import start_orchestration

__all__ = ["bp", "sweep"]

bp = df.Blueprint()
log = logging.getLogger("relay.sweeper")

QUEUED_GRACE = timedelta(minutes=2)
_NOT_ADMITTED = {
    "code": "not_admitted",
    "message": "the job holds no admission (refused, or queued past its expiry); submit it again",
}
_LIVE = {"Pending", "Running", "ContinuedAsNew"}
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


async def _runtime(client: Any, job_id: str) -> str | None:
    status = await client.get_status(job_id)
    return getattr(getattr(status, "runtime_status", None), "value", None)


async def sweep(services: Services, client: Any, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    counts = {"requeued": 0, "restarted": 0, "failed": 0, "purged": 0}
    s = services.settings
    admission = services.admission
    within: dict[str, bool] = {}  # owner -> within limits; once a sweep (enqueues count nothing)
    for record in await services.store.stuck_jobs("queued", now - QUEUED_GRACE):
        if await admission.holds(record.job_id, now.timestamp()):
            # Admitted and its enqueue lost. Enqueued again only while the live admissions
            # are within the limits: more means rows of refused jobs whose clean-up failed
            # are still there, and this job may be one of them (its row expires).
            if record.owner not in within:
                within[record.owner] = await admission.within_limits(record.owner, now.timestamp())
            if within[record.owner]:
                await services.queue.enqueue(record.job_id, record.owner)  # idempotent
                counts["requeued"] += 1
            continue
        # No live admission: a refused job whose record could not be taken back (see
        # Services.accept_job), or one queued past its admission's expiry. Enqueueing it
        # would run it past the limits, so it fails; guarded by the ETag read just now, so
        # a job the intake has just taken is left alone.
        try:
            await services.store.transition_from(record, "failed", error=_NOT_ADMITTED)
        except (ConcurrencyConflict, InvalidTransition):
            continue
        await finalize_job(record.job_id, "failed", _NOT_ADMITTED, store=services.store,
                           sender=services.sender)  # fmt: skip  # recorded: tells the target
        counts["failed"] += 1
    for record in await services.store.stuck_jobs("starting", now - QUEUED_GRACE):
        spec = {"jobId": record.job_id, "maxAttempts": s.job_max_attempts,
                "timeoutS": s.job_timeout_seconds}  # fmt: skip
        if await start_orchestration(client, record.job_id, spec):
            counts["restarted"] += 1
    overdue = now - timedelta(seconds=s.job_timeout_seconds + 120)
    for record in await services.store.stuck_jobs("running", overdue):
        if await _runtime(client, record.job_id) in _LIVE:
            continue  # the orchestration's own timeout will end it
        error = {"code": "lost", "message": "the job's run was lost; submit it again"}
        await finalize_job(record.job_id, "failed", error, store=services.store,
                           sender=services.sender)  # fmt: skip
        await services.admission.release(record.owner, record.job_id)
        counts["failed"] += 1
    cutoff = now - timedelta(days=s.retention_days)
    purged_ids = await services.store.purge_older_than(cutoff)
    counts["purged"] = purged_ids
    await services.idempotency.purge_older_than(cutoff.timestamp())
    done = [df.OrchestrationRuntimeStatus.Completed, df.OrchestrationRuntimeStatus.Failed,
            df.OrchestrationRuntimeStatus.Terminated]  # fmt: skip
    try:
        await client.purge_instance_history_by(
            created_time_from=_EPOCH, created_time_to=cutoff, runtime_status=done
        )
    except Exception as exc:  # purging history is housekeeping; never fail the sweep for it
        log.warning("durable history purge failed: %s", type(exc).__name__)
    await services.admission.sweep(time.time())
    return counts


@bp.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def sweeper(timer: func.TimerRequest, client: Any) -> None:
    services = await get_services()
    try:
        counts = await sweep(services, client)
    except RelayError as exc:
        log.warning("sweep incomplete: %s", exc.code)
        return
    if any(counts.values()):
        log.info("sweep: %s", counts)
