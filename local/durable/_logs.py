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

from local.host.logs import HOST_LOGGER, Invocation, current_invocation, install_record_factory

__all__ = ["InvocationLog", "invocation"]


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
    install_record_factory()  # idempotent; the host installs it too
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
