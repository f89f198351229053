"""The job orchestrator: one streaming activity, retried as an explicit loop.

Deterministic generator: no I/O, no clock but `current_utc_datetime`, decisions from the
activity's structured failure (see relay.errors.error_from_details). Retries are written
as `call_activity` + `create_timer` rather than `call_activity_with_retry`, which in the
1.x SDK can hang forever when combined with `task_any` and timers
(azure-functions-durable-python #603). Cancel (the external event `cancel`) and the
overall timeout race every wait; whatever ends the job, `finalize_job` records the final
status (a no-op when the activity already did).
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from relay.errors import error_from_details

from .policy import retry_delay

__all__ = ["bp", "job_orchestrator"]

bp = df.Blueprint()

STREAM_ACTIVITY = "stream_job"
FINALIZE_ACTIVITY = "finalize_job"
CANCEL_EVENT = "cancel"

# What ends a job from outside the run.
_CANCELED: dict[str, Any] = {"status": "canceled", "error": None}
_TIMED_OUT: dict[str, Any] = {
    "status": "failed",
    "error": {"code": "timeout", "message": "the job ran out of time"},
}


def _failed(task: Any) -> bool:
    return bool(task.is_completed) and isinstance(task.result, Exception)


@bp.orchestration_trigger(context_name="context")
def job_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    spec = context.get_input() or {}
    job_id = str(spec["jobId"])
    max_attempts = int(spec.get("maxAttempts", 3))
    deadline = context.current_utc_datetime + timedelta(seconds=int(spec.get("timeoutS", 600)))
    timeout = context.create_timer(deadline)
    cancel = context.wait_for_external_event(CANCEL_EVENT)

    attempt = 0
    final: dict[str, Any] | None = None
    while final is None:
        attempt += 1
        context.set_custom_status({"attempt": attempt, "phase": "streaming"})
        run = context.call_activity(STREAM_ACTIVITY, {"jobId": job_id})
        winner = yield context.task_any([run, cancel, timeout])
        if winner is run and not _failed(run):
            timeout.cancel()
            return run.result
        if winner is cancel or winner is timeout:
            final = _CANCELED if winner is cancel else _TIMED_OUT
        else:
            details = error_from_details(str(run.result))
            if details.get("code") in ("canceled", "superseded"):
                # The run stopped itself: a cancel it saw, or a newer attempt elsewhere.
                final = {
                    "status": "canceled" if details["code"] == "canceled" else "superseded",
                    "error": None,
                }
                break
            delay = retry_delay(details, attempt, max_attempts)
            if delay is None:
                final = {
                    "status": "failed",
                    "error": {
                        "code": details.get("code", "unknown"),
                        "message": details.get("message", ""),
                    },
                }
                break
            context.set_custom_status({"attempt": attempt, "phase": "backoff", "delayS": delay})
            backoff = context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
            winner = yield context.task_any([backoff, cancel, timeout])
            if winner is cancel or winner is timeout:
                final = _CANCELED if winner is cancel else _TIMED_OUT

    if final["status"] == "superseded":
        # Another attempt owns the job (an activity delivered twice); it will finish it.
        return {"jobId": job_id, "status": "superseded"}
    result = yield context.call_activity(FINALIZE_ACTIVITY, {"jobId": job_id, **final})
    if not timeout.is_completed:
        timeout.cancel()
    return result
