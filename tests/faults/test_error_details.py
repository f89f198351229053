"""Every error the streaming activity can raise survives the trip through a durable
failure message (the local engine's and the Python SDK's wording) with its code,
retryability and retry-after intact, so the orchestrator's retry decision is right."""

from __future__ import annotations

import json

import pytest

from activities.stream import ActivityFailed
from orchestrations.policy import retry_delay
from relay.errors import (
    AttemptSuperseded,
    ConcurrencyConflict,
    JobCanceled,
    JobNotFound,
    LLMContentFiltered,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
    RelayError,
    SignalRRequestError,
    SignalRTransientError,
    StoreError,
    ValidationError,
    error_from_details,
)

ERRORS: list[RelayError] = [
    LLMRateLimited("Azure OpenAI answered 429 (429)", status=429, retry_after=7.5),
    LLMUnavailable("could not reach Azure OpenAI, or the stream was cut"),
    LLMContentFiltered("the answer was stopped by the content filter"),
    LLMRequestRejected("Azure OpenAI answered 400 (bad {thing})", status=400),
    JobCanceled("the job was canceled"),
    AttemptSuperseded(1, 2),
    SignalRTransientError("SignalR answered 503", status=503),
    SignalRRequestError("SignalR answered 400", status=400),
    StoreError("queue storage failed (ServiceRequestError)"),
    ConcurrencyConflict("gave up after 5 conflicting claims"),
    JobNotFound("no such job"),
    ValidationError("request", "the job's request was erased"),
]


def _as_orchestrator_sees_it(err: RelayError) -> str:
    """ActivityFailed(json) -> engine TaskFailed(Reason, Details) -> SDK Exception text."""
    message = str(ActivityFailed(json.dumps(err.to_details())))
    reason = f"Activity function 'stream_job' failed: {message}"
    details = f"ActivityFailed: {message}"
    return str(Exception(f"{reason} \n {details}"))  # TaskOrchestrationExecutor's format


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: e.code)
def test_details_survive_the_durable_failure_message(err: RelayError) -> None:
    details = error_from_details(_as_orchestrator_sees_it(err))
    assert details["code"] == err.code
    assert details["retryable"] is err.retryable
    assert details["retryAfter"] == err.retry_after
    assert details["message"] == err.message
    delay = retry_delay(details, attempt=1, max_attempts=3)
    assert (delay is not None) is err.retryable
    if isinstance(err, LLMRateLimited):
        assert delay == 7.5  # the service's hint wins over the 2 s backoff


def test_a_non_relay_failure_is_unknown_and_final() -> None:
    text = str(Exception("Activity function 'stream_job' failed: boom \n KeyError: 'x'"))
    details = error_from_details(text)
    assert details["code"] == "unknown" and details["retryable"] is False
