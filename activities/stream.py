"""The streaming activity and the finalizer: thin adapters over relay.streaming.

An activity never returns an error string. A core failure is raised as `ActivityFailed`,
whose message is the error's JSON details, so the orchestrator can tell from structured
data whether a retry can help (relay.errors.error_from_details reads it back).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import azure.durable_functions as df

from relay.errors import RelayError
from relay.services import get_services
from relay.streaming import finalize_job as finalize_routine
from relay.streaming import run_job
from relay.telemetry import job_scope

__all__ = ["ActivityFailed", "bp"]

bp = df.Blueprint()
log = logging.getLogger("relay.activities")

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_FINAL = {"completed", "failed", "canceled"}


class ActivityFailed(Exception):
    """Carries a RelayError's JSON details across the activity boundary."""


def _job_id(payload: Any) -> str:
    job_id = payload.get("jobId") if isinstance(payload, dict) else None
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ActivityFailed(
            json.dumps(
                {
                    "code": "invalid_input",
                    "retryable": False,
                    "message": "activity input needs a jobId",
                }
            )
        )
    return job_id


@bp.activity_trigger(input_name="payload")
async def stream_job(payload: dict[str, Any]) -> dict[str, Any]:
    job_id = _job_id(payload)
    services = await get_services()
    with job_scope(job_id):
        try:
            result = await run_job(
                job_id,
                store=services.store,
                llm=services.llm,
                sender=services.sender,
                config=services.stream_config,
            )
        except RelayError as exc:
            log.warning("stream attempt failed: %s", exc.code)
            raise ActivityFailed(json.dumps(exc.to_details())) from exc
        except Exception:
            # A bug, not a service failure: keep the trace in the log; the orchestrator
            # sees an unknown, non-retryable failure and fails the job with a reason.
            log.exception("stream attempt crashed")
            raise
    out = result.to_dict()
    if out.get("status") in _FINAL:
        await services.release(job_id)
    return out


@bp.activity_trigger(input_name="payload")
async def finalize_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Record the job's final status (if it has none yet) and tell its subscribers."""
    job_id = _job_id(payload)
    status = payload.get("status")
    if status not in ("failed", "canceled"):
        raise ActivityFailed(
            json.dumps(
                {
                    "code": "invalid_input",
                    "retryable": False,
                    "message": "status must be failed or canceled",
                }
            )
        )
    error = payload.get("error") if isinstance(payload.get("error"), dict) else None
    services = await get_services()
    try:
        record = await finalize_routine(
            job_id, status, error, store=services.store, sender=services.sender
        )
    except RelayError as exc:
        raise ActivityFailed(json.dumps(exc.to_details())) from exc
    await services.release(job_id)
    return {"jobId": job_id, "status": record.status}
