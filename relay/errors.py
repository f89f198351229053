"""The one exception tree of the core.

    RelayError
    ├── SettingsError            a setting is missing or invalid (names every one)
    ├── ValidationError          caller input is invalid (field, reason) -> HTTP 400
    ├── Forbidden                not the caller's to do: an invite-only group, another's connection
    ├── InviteInvalid            an invite token is forged, for another group, expired or used
    ├── GroupRecentlyDeleted     the group name is quarantined after a deletion; `.retry_after`
    ├── StoreError               job store failures
    │   ├── JobNotFound          no such job (or not visible to the caller)
    │   ├── ConcurrencyConflict  an ETag-guarded write lost a race
    │   └── InvalidTransition    a status change the state table forbids
    ├── RunStopped               a run must stop sending (not a failure of the job)
    │   ├── JobCanceled          the job was canceled while running
    │   └── AttemptSuperseded    a newer attempt claimed the job
    ├── SignalRError             SignalR Service REST failures
    │   ├── SignalRTransientError   connection error, timeout, 429, 5xx (retry may help)
    │   └── SignalRRequestError     4xx other than 429 (retry will not help)
    └── LLMError                 Azure OpenAI failures; `.retryable`, `.retry_after`
        ├── LLMRateLimited       429 (retry_after from the service)
        ├── LLMUnavailable       5xx, timeout, cut connection, stall
        ├── LLMContentFiltered   the answer was stopped by the content filter
        └── LLMRequestRejected   400 and other client errors (not retryable)

Foreign exceptions (httpx, openai, azure-core) are mapped to these in the module that
talks to the foreign library, and re-raised `from exc`. Every error carries a short,
stable `code` (used in HTTP error bodies and durable failure details) and never
carries secrets or prompt text in its message.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AttemptSuperseded",
    "ConcurrencyConflict",
    "Forbidden",
    "GroupRecentlyDeleted",
    "InvalidTransition",
    "InviteInvalid",
    "JobCanceled",
    "JobNotFound",
    "LLMContentFiltered",
    "LLMError",
    "LLMRateLimited",
    "LLMRequestRejected",
    "LLMUnavailable",
    "RelayError",
    "RunStopped",
    "SettingsError",
    "SignalRError",
    "SignalRRequestError",
    "SignalRTransientError",
    "StoreError",
    "ValidationError",
    "error_from_details",
]


class RelayError(Exception):
    """Base of every error the core raises."""

    code = "relay_error"
    retryable = False
    retry_after: float | None = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code

    def to_details(self) -> dict[str, Any]:
        """A JSON-safe description, used across the activity/orchestrator boundary."""
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "retryAfter": self.retry_after,
        }


class SettingsError(RelayError):
    code = "invalid_settings"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid settings: " + "; ".join(self.problems))


class ValidationError(RelayError):
    code = "invalid_request"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Forbidden(RelayError):
    code = "forbidden"


class InviteInvalid(RelayError):
    code = "invalid_invite"


class GroupRecentlyDeleted(RelayError):
    code = "group_recently_deleted"

    def __init__(self, retry_after: float) -> None:
        super().__init__("this group name was deleted recently; try again later")
        self.retry_after = retry_after


class StoreError(RelayError):
    code = "store_error"
    retryable = True


class JobNotFound(StoreError):
    code = "not_found"
    retryable = False


class ConcurrencyConflict(StoreError):
    code = "conflict"


class InvalidTransition(StoreError):
    code = "invalid_transition"
    retryable = False

    def __init__(self, current: str, new: str) -> None:
        self.current = current
        self.new = new
        super().__init__(f"cannot move a job from {current} to {new}")


class RunStopped(RelayError):
    code = "run_stopped"


class JobCanceled(RunStopped):
    code = "canceled"


class AttemptSuperseded(RunStopped):
    code = "superseded"

    def __init__(self, attempt: int, current: int) -> None:
        self.attempt = attempt
        self.current = current
        super().__init__(f"attempt {attempt} was superseded by attempt {current}")


class SignalRError(RelayError):
    code = "signalr_error"

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class SignalRTransientError(SignalRError):
    code = "signalr_unavailable"
    retryable = True


class SignalRRequestError(SignalRError):
    code = "signalr_rejected"


class LLMError(RelayError):
    code = "llm_error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class LLMRateLimited(LLMError):
    code = "llm_rate_limited"
    retryable = True


class LLMUnavailable(LLMError):
    code = "llm_unavailable"
    retryable = True


class LLMContentFiltered(LLMError):
    code = "content_filtered"


class LLMRequestRejected(LLMError):
    code = "llm_rejected"


_BY_CODE: dict[str, type[RelayError]] = {
    cls.code: cls
    for cls in (
        LLMRateLimited,
        LLMUnavailable,
        LLMContentFiltered,
        LLMRequestRejected,
        LLMError,
        JobCanceled,
        AttemptSuperseded,
        SignalRTransientError,
        SignalRRequestError,
        StoreError,
        JobNotFound,
    )
}


def error_from_details(text: str) -> dict[str, Any]:
    """Recover the `to_details()` dict from a failure message that embeds it as JSON.

    Activities raise `RelayError`s whose str() is their message; the activity adapter
    re-raises them with `json.dumps(err.to_details())` as the message so the orchestrator
    can decide on a retry from structured data. Anything unparseable is treated as an
    unknown, non-retryable failure.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        # raw_decode reads one JSON value and ignores what follows: the real host puts a
        # stack trace and serialized exception details after the message.
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and "code" in value:
            known = _BY_CODE.get(str(value["code"]))
            value.setdefault("retryable", bool(known and known.retryable))
            return value
        start = text.find("{", start + 1)
    return {"code": "unknown", "message": "activity failed", "retryable": False, "retryAfter": None}
