"""The job store's records and how they map to Table storage entities (no I/O).

Table `{prefix}jobs`, one partition per job (PartitionKey = job id):
    RowKey "job"                       the job record
    RowKey "r|{n:05d}"                 overflow pieces of a large request (see below)
    RowKey "e|{attempt:05d}|{seq:010d}" one recorded batch of one attempt
Table `{prefix}userjobs`: PartitionKey = owner (escaped), RowKey = inverted creation time
+ "|" + job id, so a partition scan lists a user's jobs newest first.

Table storage limits strings to 64 KiB (32 K UTF-16 code units) per property and 1 MiB per
entity; the request JSON is cut into pieces of at most `PIECE_UNITS` UTF-16 code units,
the first `INLINE_PIECES` on the record, the rest one per overflow row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from ..errors import RelayError, StoreError, ValidationError
from ..jobs import JobRequest, Target

__all__ = [
    "INLINE_PIECES",
    "PIECE_UNITS",
    "RECORD_ROW",
    "Event",
    "JobRecord",
    "Metrics",
    "Run",
    "error_props",
    "event_row",
    "event_rows_range",
    "index_row",
    "owner_key",
    "record_from_entity",
    "request_row",
    "split_units",
    "to_datetime",
    "valid_cursor",
    "valid_job_id",
]

RECORD_ROW = "job"
PIECE_UNITS = 30_000
INLINE_PIECES = 8  # 8 x 60 KB = 480 KB: the rest of the record stays far below 1 MiB
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_CURSOR = re.compile(r"[0-9]{13}\|[A-Za-z0-9_-]{1,100}")
_INVERT_MS = 10**13  # milliseconds until year 2286: keeps the inverted time 13 digits wide

Delivery = Literal["ok", "degraded"]


@dataclass(frozen=True)
class Metrics:
    ttft_ms: float | None = None
    duration_ms: float | None = None
    deltas: int = 0
    messages: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttftMs": self.ttft_ms,
            "durationMs": self.duration_ms,
            "deltas": self.deltas,
            "messages": self.messages,
            "bytes": self.bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(
            ttft_ms=data.get("ttftMs"),
            duration_ms=data.get("durationMs"),
            deltas=int(data.get("deltas") or 0),
            messages=int(data.get("messages") or 0),
            bytes=int(data.get("bytes") or 0),
        )


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    owner: str
    status: str
    target: Target
    request: JobRequest | None  # None once erased
    attempt: int
    last_seq: int
    created_at: float  # epoch seconds (time.time()); stored as Edm.DateTime
    started_at: float | None = None
    completed_at: float | None = None
    updated_at: float | None = None
    usage: dict[str, int] | None = None
    metrics: Metrics = field(default_factory=Metrics)
    delivery: Delivery = "ok"
    error: dict[str, str] | None = None
    cancel_requested: bool = False
    erased: bool = False
    etag: str = ""

    def to_public_dict(self) -> dict[str, Any]:
        """The API's camelCase shape (no prompt, no owner, no storage details)."""
        m = self.metrics
        return {
            "jobId": self.job_id,
            "status": self.status,
            "createdAt": _iso(self.created_at),
            "startedAt": _iso(self.started_at),
            "completedAt": _iso(self.completed_at),
            "target": {"kind": self.target.kind, "id": self.target.id},
            "attempt": self.attempt,
            "lastSeq": self.last_seq,
            "usage": self.usage,
            "metrics": {
                "ttftMs": m.ttft_ms,
                "durationMs": m.duration_ms,
                "deltas": m.deltas,
                "messages": m.messages,
            },
            "delivery": self.delivery,
            "error": self.error,
            "cancelRequested": self.cancel_requested,
            "erased": self.erased,
        }


@dataclass(frozen=True)
class Run:
    """One claimed attempt: the etag is the record's as this run last wrote or read it."""

    job_id: str
    attempt: int
    etag: str
    record: JobRecord


@dataclass(frozen=True)
class Event:
    seq: int
    attempt: int
    text: str


def to_datetime(value: datetime | float) -> datetime:
    """Times come in as aware datetimes or epoch seconds; storage wants datetimes."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value, UTC)


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    when = datetime.fromtimestamp(value, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def valid_job_id(job_id: str) -> bool:
    """Job ids become partition keys and URL segments: a safe alphabet only."""
    return isinstance(job_id, str) and _JOB_ID.fullmatch(job_id) is not None


def owner_key(owner: str) -> str:
    # Table keys may not hold / \ # ? or control characters; escaping keeps them unique.
    return quote(owner, safe="-_.~@:!$&'()*+,;= ")


def index_row(created_at: datetime, job_id: str) -> str:
    inverted = _INVERT_MS - int(created_at.timestamp() * 1000)
    return f"{inverted:013d}|{job_id}"


def valid_cursor(cursor: str) -> bool:
    return _CURSOR.fullmatch(cursor) is not None


def event_row(attempt: int, seq: int) -> str:
    return f"e|{attempt:05d}|{seq:010d}"


def event_rows_range(attempt: int, after_seq: int = 0) -> tuple[str, str]:
    """(exclusive low, exclusive high) RowKeys of an attempt's events after `after_seq`."""
    return event_row(attempt, after_seq), f"e|{attempt:05d}|~"


def request_row(n: int) -> str:
    return f"r|{n:05d}"


def split_units(text: str, max_units: int = PIECE_UNITS) -> list[str]:
    """Cut `text` into pieces of at most `max_units` UTF-16 code units, never inside a
    character (astral characters count two units, as Table storage measures them)."""
    pieces: list[str] = []
    start = units = 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > max_units:
            pieces.append(text[start:i])
            start, units = i, 0
        units += width
    if start < len(text) or not pieces:
        pieces.append(text[start:])
    return pieces


def _json_or_none(raw: object) -> Any:
    return json.loads(raw) if isinstance(raw, str) and raw else None


def _epoch(raw: object) -> float | None:
    return raw.timestamp() if isinstance(raw, datetime) else None


def record_from_entity(
    entity: Mapping[str, Any], etag: str, overflow: list[str] | None = None
) -> JobRecord:
    """Build a record; `overflow` holds the request pieces read from "r|" rows, in order.

    The request is decoded only when `overflow` is given (an empty list if the record has
    no overflow rows): most reads need the status, not the prompt.
    """
    request: JobRequest | None = None
    inline = int(entity.get("reqInline") or 0)
    if overflow is not None and inline and not entity.get("erased"):
        pieces = [str(entity.get(f"req{i}") or "") for i in range(inline)]
        try:
            request = JobRequest.from_dict(json.loads("".join(pieces + (overflow or []))))
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            # A damaged record must surface as a store failure (typed, no trace, no 500),
            # never as a bare ValueError from deep in a trigger.
            raise StoreError("the job's stored request is unreadable") from exc
    error_code = entity.get("errorCode")
    created = _epoch(entity.get("createdAt"))
    return JobRecord(
        job_id=str(entity["PartitionKey"]),
        owner=str(entity.get("owner", "")),
        status=str(entity.get("status", "")),
        target=Target(entity.get("targetKind", "user"), str(entity.get("targetId", ""))),
        request=request,
        attempt=int(entity.get("attempt") or 0),
        last_seq=int(entity.get("lastSeq") or 0),
        created_at=created if created is not None else 0.0,
        started_at=_epoch(entity.get("startedAt")),
        completed_at=_epoch(entity.get("completedAt")),
        updated_at=_epoch(entity.get("updatedAt")),
        usage=_json_or_none(entity.get("usage")),
        metrics=Metrics.from_dict(_json_or_none(entity.get("metrics")) or {}),
        delivery="degraded" if entity.get("delivery") == "degraded" else "ok",
        error=(
            {"code": str(error_code), "message": str(entity.get("errorMessage") or "")}
            if error_code
            else None
        ),
        cancel_requested=bool(entity.get("cancelRequested")),
        erased=bool(entity.get("erased")),
        etag=etag,
    )


def error_props(error: RelayError | Mapping[str, str] | None) -> dict[str, str]:
    """Record properties of an error (empty strings clear it: a merge cannot delete)."""
    if error is None:
        return {"errorCode": "", "errorMessage": ""}
    if isinstance(error, RelayError):
        return {"errorCode": error.code, "errorMessage": error.message[:1000]}
    return {"errorCode": str(error["code"]), "errorMessage": str(error.get("message", ""))[:1000]}
