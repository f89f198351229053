"""The jobs API: submit, read, follow, cancel, list and erase jobs.

A job is visible only to its owner; to anyone else it does not exist (404, the same
answer as an unknown id), so ids cannot be probed.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from relay.errors import JobNotFound
from relay.identity import Caller
from relay.intake import encode_message
from relay.jobs import parse_job_request
from relay.limits import IdempotencyKeyReused
from relay.services import Services
from relay.store import JobRecord
from relay.telemetry import job_scope

from ._http import (
    ApiError,
    endpoint,
    endpoint_with_client,
    endpoint_with_output,
    json_response,
    read_json,
)
from ._schemas import EVENTS_AFTER, EVENTS_ATTEMPT, EVENTS_LIMIT, JOBS_LIMIT, IntParam
from .targets import authorize_target

__all__ = ["bp"]

bp = df.Blueprint()
log = logging.getLogger("relay.api.jobs")

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_TERMINAL = {"completed", "failed", "canceled"}
_ANON = func.AuthLevel.ANONYMOUS


def _links(job_id: str) -> dict[str, str]:
    return {"statusUrl": f"/api/jobs/{job_id}", "eventsUrl": f"/api/jobs/{job_id}/events"}


async def _visible_job(services: Services, caller: Caller, job_id: str) -> JobRecord:
    """The job if the caller may see it; otherwise JobNotFound (never 403: to anyone who
    may not see it, a job does not exist). Who can see a job but not steer it gets 403."""
    # Read without the stored prompt: no endpoint returns it, and a damaged request
    # must not stop a job from being read, canceled or erased.
    if not _JOB_ID.match(job_id or ""):
        raise JobNotFound("no such job")
    record = await services.store.get_job(job_id, with_request=False)
    if not await services.can_read(caller.user_id, record):
        raise JobNotFound("no such job")
    return record


def _int_param(req: func.HttpRequest, name: str, bounds: IntParam, default: int = 0) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return bounds.default if bounds.default is not None else default
    lo, hi = bounds.lo, bounds.hi
    # isascii: str.isdigit and int() also take other scripts' digits ("１", "٣").
    if not (raw.isascii() and raw.isdigit()) or not lo <= int(raw) <= hi:
        raise ApiError(400, "invalid_request", f"must be an integer from {lo} to {hi}", field=name)
    return int(raw)


@bp.route(route="api/jobs", methods=["POST"], auth_level=_ANON)
@bp.queue_output(arg_name="outmsg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
@endpoint_with_output
async def create_job(
    req: func.HttpRequest, caller: Caller, services: Services, outmsg: func.Out[str]
) -> func.HttpResponse:
    body = read_json(req)
    request = parse_job_request(body, services.job_limits, profile=services.settings.model_profile)
    target = request.target_for(caller.user_id)
    await authorize_target(services, caller, target)

    key = req.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "invalid_request", "1 to 200 visible ASCII characters",
                       field="Idempotency-Key")  # fmt: skip
    try:
        accepted = await services.accept_job(uuid.uuid4().hex, caller.user_id, request, target, key)
    except IdempotencyKeyReused as exc:  # the same key, another body: nothing was created
        raise ApiError(422, exc.code, str(exc), field="Idempotency-Key") from None
    job_id = accepted.job_id
    if not accepted.created:  # the key's earlier job
        body_out = {"jobId": job_id, "status": accepted.status, **_links(job_id)}
        return json_response(body_out, 202, {"Location": f"/api/jobs/{job_id}"})
    # Enqueue through the output binding: the host then wakes its own queue listener at
    # once instead of waiting for its next poll. A lost enqueue leaves the job queued in
    # the store, and the sweeper re-enqueues it.
    outmsg.set(encode_message(job_id, caller.user_id))
    with job_scope(job_id):
        log.info("job accepted", extra={"target": target.kind})
    out = {"jobId": job_id, "status": "queued", **_links(job_id)}
    return json_response(out, 202, {"Location": f"/api/jobs/{job_id}"})


@bp.route(route="api/jobs", methods=["GET"], auth_level=_ANON)
@endpoint
async def list_jobs(req: func.HttpRequest, caller: Caller, services: Services) -> func.HttpResponse:
    limit = _int_param(req, "limit", JOBS_LIMIT)
    cursor = req.params.get("cursor") or None
    if cursor is not None and not re.fullmatch(r"[0-9A-Za-z_|.-]{1,200}", cursor):
        raise ApiError(400, "invalid_request", "not a cursor from this API", field="cursor")
    records, next_cursor = await services.store.list_jobs(caller.user_id, limit, cursor)
    return json_response({"jobs": [r.to_public_dict() for r in records], "next": next_cursor})


@bp.route(route="api/jobs/{jobId}", methods=["GET"], auth_level=_ANON)
@endpoint
async def get_job(req: func.HttpRequest, caller: Caller, services: Services) -> func.HttpResponse:
    record = await _visible_job(services, caller, req.route_params.get("jobId", ""))
    out: dict[str, Any] = record.to_public_dict()
    out["text"] = await services.store.text(record.job_id, record.attempt) if record.attempt else ""
    if record.status == "queued":
        out["placeInLine"] = await services.admission.place_in_line(
            record.job_id, f"{int(record.created_at * 1000):015d}"
        )
    return json_response(out)


@bp.route(route="api/jobs/{jobId}/events", methods=["GET"], auth_level=_ANON)
@endpoint
async def job_events(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    record = await _visible_job(services, caller, req.route_params.get("jobId", ""))
    after = _int_param(req, "after", EVENTS_AFTER)
    attempt = _int_param(req, "attempt", EVENTS_ATTEMPT, record.attempt)
    limit = _int_param(req, "limit", EVENTS_LIMIT)
    events = await services.store.events(record.job_id, attempt, after, limit) if attempt else []
    return json_response({
        "jobId": record.job_id,
        "status": record.status,
        "attempt": attempt,
        "currentAttempt": record.attempt,
        "events": [{"seq": e.seq, "attempt": e.attempt, "text": e.text} for e in events],
        "more": len(events) == limit,
    })  # fmt: skip


@bp.route(route="api/jobs/{jobId}", methods=["DELETE"], auth_level=_ANON)
@bp.durable_client_input(client_name="client")
@endpoint_with_client
async def cancel_job(
    req: func.HttpRequest, caller: Caller, services: Services, client: Any
) -> func.HttpResponse:
    record = await _visible_job(services, caller, req.route_params.get("jobId", ""))
    if not await services.can_cancel(caller.user_id, record):
        raise ApiError(
            403, "not_allowed", "only the job's owner or its group's owner can cancel it"
        )
    if record.status in _TERMINAL:
        raise ApiError(409, "job_finished", f"the job has already ended ({record.status})")
    record = await services.store.request_cancel(record.job_id)
    if record.status == "canceled":
        await services.admission.release(record.owner, record.job_id)
    else:
        # The running activity sees the store flag at its next flush; the event ends the
        # orchestration even if it is waiting between attempts.
        try:
            await client.raise_event(record.job_id, "cancel", None)
        except Exception as exc:  # not started yet, or already finished: the flag suffices
            with job_scope(record.job_id):
                log.info("cancel event not delivered", extra={"why": type(exc).__name__})
    return json_response({"jobId": record.job_id, "status": record.status}, 202)


@bp.route(route="api/jobs/{jobId}/data", methods=["DELETE"], auth_level=_ANON)
@endpoint
async def erase_job(req: func.HttpRequest, caller: Caller, services: Services) -> func.HttpResponse:
    record = await _visible_job(services, caller, req.route_params.get("jobId", ""))
    if record.owner != caller.user_id:
        raise ApiError(403, "not_allowed", "only the job's owner can erase its data")
    if record.status not in _TERMINAL:
        raise ApiError(409, "job_running", "cancel the job or wait for it to end first")
    await services.store.erase(record.job_id)
    return json_response({"jobId": record.job_id, "erased": True})
