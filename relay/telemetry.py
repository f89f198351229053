"""Logging context and Application Insights.

Every log record written while a job is being handled carries that job's id: the
triggers enter `job_scope(job_id)`, and the record factory installed by `configure`
copies the id from a context variable onto each record as `jobId` (whichever logger
and handler it goes through), so core modules need not pass it around. Prompt text,
tokens and keys are never logged at info level.

When APPLICATIONINSIGHTS_CONNECTION_STRING is set, logs and traces go to Application
Insights through OpenTelemetry (azure-monitor-opentelemetry), authenticating with the
app's managed identity when APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for Entra ID.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator, Mapping

__all__ = ["configure", "current_job_id", "job_scope"]

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("relay_job_id", default=None)
_configured = False


def current_job_id() -> str | None:
    return _job_id.get()


@contextlib.contextmanager
def job_scope(job_id: str) -> Iterator[None]:
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


def _install_record_factory() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        job_id = _job_id.get()
        if job_id is not None:
            record.jobId = job_id
        return record

    logging.setLogRecordFactory(factory)


def _aad_client_id(auth: str) -> str | None:
    parts = dict(p.split("=", 1) for p in auth.split(";") if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    return parts.get("ClientId", "")


def configure(env: Mapping[str, str] | None = None) -> None:
    """Install the job-id filter; send telemetry to Application Insights if configured."""
    global _configured
    if _configured:
        return
    _configured = True
    env = os.environ if env is None else env
    _install_record_factory()
    # These log one INFO line per HTTP request, URLs included (user ids in SignalR paths).
    for chatty in (
        "httpx",
        "httpcore",
        "httpx2",  # the openai SDK's own httpx fork: "HTTP Request: POST ..." per model call
        "httpcore2",
        "openai",
        "azure.core.pipeline.policies.http_logging_policy",
    ):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if not connection:
        return
    from azure.monitor.opentelemetry import configure_azure_monitor

    credential = None
    client_id = _aad_client_id(env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""))
    if client_id is not None:
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=client_id or None)
    configure_azure_monitor(connection_string=connection, credential=credential)
