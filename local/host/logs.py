"""Host log output: the real host's invocation lines plus the app's own records.

Every record created while an invocation runs is tagged with that invocation (a context
variable, copied into the worker threads; a log record factory reads it), as the Python
worker tags the records it streams to the host. Fields given through `extra=` are kept:
appended as `key=value` in text output, top-level keys in JSON output (`--log-format json`,
one object per line).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "HOST_LOGGER",
    "Invocation",
    "current_invocation",
    "install_record_factory",
    "setup_logging",
]

HOST_LOGGER = "Host"


@dataclass(frozen=True)
class Invocation:
    function_name: str
    invocation_id: str


current_invocation: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "current_invocation", default=None
)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    t = datetime.fromtimestamp(record.created, UTC)
    # No strftime: it imports at first use, which fails for records logged at interpreter exit.
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}."
        f"{t.microsecond // 1000:03d}Z"
    )


def _tagging(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        inv = current_invocation.get()
        if inv is not None:
            record.functionName = inv.function_name
            record.invocationId = inv.invocation_id
        return record

    factory._host_invocation_tag = True  # type: ignore[attr-defined]
    return factory


def install_record_factory() -> None:
    """Tag every record created during an invocation with it (idempotent). Chains onto the
    installed factory, so the app's own (relay.telemetry: jobId) keeps working."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "_host_invocation_tag", False):
        logging.setLogRecordFactory(_tagging(current))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"[{_timestamp(record)}] {record.getMessage()}"
        extras = {
            k: v for k, v in _extras(record).items() if k not in ("functionName", "invocationId")
        }
        if extras:
            line += " (" + ", ".join(f"{k}={v}" for k, v in extras.items()) + ")"
        if record.exc_info and record.levelno >= logging.ERROR:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "category": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            out.setdefault(key, value)
        if record.exc_info and record.levelno >= logging.ERROR:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(
    fmt: str = "text", level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Install one handler on the root logger; quiet libraries that log every request."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    install_record_factory()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_local_host", False)]:
        root.removeHandler(old)
    handler._local_host = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO ("HTTP Request: POST <url>"): one line per SignalR send,
    # with user ids and group names in the URL. Warnings and errors still come through.
    for noisy in (
        "azure", "uvicorn", "uvicorn.error", "uvicorn.access", "aiohttp", "asyncio",
        "httpx", "httpcore", "httpx2", "httpcore2", "openai",
    ):  # fmt: skip
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
