"""The host's invocation lines for durable functions, through the local host's own logging.

One "Executing 'Functions.<name>' (Reason='(null)', Id=...)" / "Executed 'Functions.<name>'
(Succeeded|Failed, Id=..., Duration=Nms)" pair per orchestrator episode and per activity
execution, on the host's logger, with the invocation set as the current one so the function's
own records are tagged with it (local.host.logs). The durable trigger has no reason text: the
real host prints `(null)`. A failure is logged at error with its trace, as the real host does;
inputs and outputs never are.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local.host.logs import HOST_LOGGER, Invocation, current_invocation

__all__ = ["InvocationLog", "invocation", "tag_records"]

_TAGGING = "_durable_tags_invocations"


def tag_records() -> None:
    """Tag every record created during an invocation with it, keeping other factories.

    The host installs its own tagging factory at startup and the app's telemetry chains a
    job-id factory on top of it. Replacing the process's factory here (as the host's
    idempotent installer does when it finds another on top) would silently drop the app's
    `jobId` from every later record, so this chains onto whatever is installed, once.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, _TAGGING, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        inv = current_invocation.get()
        if inv is not None:
            record.functionName = inv.function_name
            record.invocationId = inv.invocation_id
        return record

    setattr(factory, _TAGGING, True)
    logging.setLogRecordFactory(factory)


@dataclass
class InvocationLog:
    function_name: str
    invocation_id: str
    failed: bool = False

    def fail(self, message: str, exc: BaseException | None = None) -> None:
        """Mark the invocation failed and log why (the trace only when there is one)."""
        self.failed = True
        logging.getLogger(HOST_LOGGER).error(
            "Exception while executing function: Functions.%s. Result: Failure Exception: %s",
            self.function_name,
            message,
            exc_info=exc,
        )


@contextmanager
def invocation(function_name: str, instance_id: str) -> Iterator[InvocationLog]:
    tag_records()
    log = logging.getLogger(HOST_LOGGER)
    inv = InvocationLog(function_name, str(uuid.uuid4()))
    token = current_invocation.set(Invocation(function_name, inv.invocation_id))
    extra = {"instanceId": instance_id}
    started = time.monotonic()
    log.info(
        "Executing 'Functions.%s' (Reason='(null)', Id=%s)",
        function_name,
        inv.invocation_id,
        extra=extra,
    )
    try:
        yield inv
    except BaseException:
        inv.failed = True
        raise
    finally:
        log.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            function_name,
            "Failed" if inv.failed else "Succeeded",
            inv.invocation_id,
            (time.monotonic() - started) * 1000,
            extra=extra,
        )
        current_invocation.reset(token)
