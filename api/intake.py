"""Queue intake: start one orchestration per job, at most once, whatever the queue does.

Queue messages arrive at least once. The job record decides: only a `queued` job moves
to `starting` (ETag-guarded) and gets an orchestration with instance id = job id. A
`starting` job (a retry after a crash between the two steps) is started only when no
orchestration exists; anything else is a duplicate and succeeds without effect. This
matters because the Durable extension *restarts* a finished instance whose id is reused.
"""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from relay.errors import ConcurrencyConflict, InvalidTransition, JobNotFound, ValidationError
from relay.intake import QueueJob, decode_message
from relay.services import Services, get_services
from relay.streaming import finalize_job
from relay.telemetry import job_scope

__all__ = ["ORCHESTRATOR", "bp", "start_orchestration"]

bp = df.Blueprint()
log = logging.getLogger("relay.intake")
ORCHESTRATOR = "job_orchestrator"
_LIVE = {"Pending", "Running", "ContinuedAsNew"}


async def start_orchestration(
    client: Any, job_id: str, spec: dict[str, Any], *, fresh: bool = False
) -> bool:
    """Start the job's orchestration unless one is live. True if started.

    The extension *restarts* a finished instance whose id is reused, so in general the
    instance's status is read first. `fresh` says the caller has just moved the job from
    queued to starting (ETag-guarded): no orchestration was started for it before, so the
    read is skipped and the start goes first. The start itself refuses a live instance
    (409 from the extension's HTTP API, surfaced by the SDK as a bare `Exception`); only
    then is the status read, to tell "already live" from a real failure.
    """
    if fresh:
        try:
            await client.start_new(ORCHESTRATOR, job_id, spec)
            return True
        except Exception:
            if await _runtime(client, job_id) in _LIVE:
                return False
            raise
    if await _runtime(client, job_id) in _LIVE:
        return False
    await client.start_new(ORCHESTRATOR, job_id, spec)
    return True


def _decode(msg: func.QueueMessage, queue: str) -> QueueJob | None:
    """The message's job, or None once a malformed one is logged: no retry can mend it."""
    try:
        return decode_message(msg.get_body())
    except ValidationError:
        log.warning("dropped a malformed %s message", queue, extra={"messageId": msg.id})
        return None


async def _runtime(client: Any, job_id: str) -> str | None:
    status = await client.get_status(job_id)
    value = getattr(getattr(status, "runtime_status", None), "value", None)
    return value if isinstance(value, str) else None


@bp.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def intake(msg: func.QueueMessage, client: Any) -> None:
    services = await get_services()
    job = _decode(msg, "jobs")
    if job is None:
        return
    with job_scope(job.job_id):
        await _start(services, client, job.job_id, {"dequeueCount": msg.dequeue_count})


async def _moved_as_created(services: Services, job_id: str) -> bool:
    """Move a job this process has just created to starting without reading it first.

    The write is guarded by the created record's ETag: a job changed since (canceled, or
    moved by another delivery) is refused, and the caller then reads and decides as for
    any other message. False when there is no such record here or the move was refused.
    """
    record = services.store.take_committed(job_id)
    if record is None or record.status != "queued":
        return False
    try:
        await services.store.transition_from(record, "starting")
    except ConcurrencyConflict:
        return False
    return True


async def _start(services: Services, client: Any, job_id: str, extra: dict[str, Any]) -> None:
    fresh = await _moved_as_created(services, job_id)
    if not fresh:
        try:
            record = await services.store.get_job(job_id)
        except JobNotFound:
            log.warning("jobs message for an unknown job", extra=extra)
            return
        fresh = record.status == "queued"
        if fresh:
            try:
                await services.store.transition_from(record, "starting")
            except InvalidTransition:
                log.info("job moved on meanwhile; nothing to start", extra=extra)
                return
        elif record.status != "starting":
            log.info("duplicate jobs message ignored (job is %s)", record.status, extra=extra)
            return
    spec = {
        "jobId": job_id,
        "maxAttempts": services.settings.job_max_attempts,
        "timeoutS": services.settings.job_timeout_seconds,
    }
    started = await start_orchestration(client, job_id, spec, fresh=fresh)
    log.info("orchestration %s", "started" if started else "already live", extra=extra)


@bp.queue_trigger(
    arg_name="msg", queue_name="%JOBS_QUEUE%-poison", connection="AzureWebJobsStorage"
)
async def intake_poison(msg: func.QueueMessage) -> None:
    """A jobs message that failed every try: fail its job if it never got going."""
    services = await get_services()
    job = _decode(msg, "poison")
    if job is None:
        return
    try:
        # Without the request: a record whose request cannot be read (one reason a message
        # ends up here) must still be failable.
        record = await services.store.get_job(job.job_id, with_request=False)
    except JobNotFound:
        return
    if record.status in ("queued", "starting"):
        error = {"code": "not_started", "message": "the job could not be started; try again"}
        await finalize_job(job.job_id, "failed", error, store=services.store,
                           sender=services.sender)  # fmt: skip
        await services.admission.release(record.owner, record.job_id)
        with job_scope(job.job_id):
            log.warning("job failed from the poison queue")
