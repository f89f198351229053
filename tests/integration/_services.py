"""The app's composition root (`relay.services.Services`) on the session's Azurite and an
in-process SignalR emulator, with tables and queue of its own (a random prefix), so tests
of different files never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from local.signalr_emulator import run_in_thread
from relay.services import Services
from relay.settings import load_settings

__all__ = ["services_on_azurite"]


@asynccontextmanager
async def services_on_azurite(
    storage_connection_string: str, prefix: str, **settings: str
) -> AsyncIterator[Services]:
    """`settings` are extra app settings (e.g. `USER_MAX_CONCURRENT_JOBS="2"`)."""
    with run_in_thread(port=0) as sig:
        tag = prefix + uuid.uuid4().hex[:10]
        env = {
            "AzureWebJobsStorage": storage_connection_string,
            "AzureSignalRConnectionString": sig.connection_string,
            "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:9",  # nothing listens: no model here
            "AZURE_OPENAI_DEPLOYMENT": "chat",
            "TABLE_PREFIX": tag,
            "JOBS_QUEUE": tag,
            **settings,
        }
        services = Services.build(load_settings(env))
        await services.ensure()
        try:
            yield services
        finally:
            await services.aclose()
