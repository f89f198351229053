"""Engines on the session's Azurite, one task hub per test, and the SDK's own client."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from azure.durable_functions import DurableOrchestrationClient
from azure.durable_functions.models.utils import http_utils

from local.durable import DurableEngine

from .apps import FUNCTIONS

EngineFactory = Callable[..., Awaitable[DurableEngine]]


def host_json(hub: str, **durable: Any) -> dict[str, Any]:
    provider = {
        "maxQueuePollingInterval": "00:00:00.5",
        "workItemQueueVisibilityTimeout": 3,
        "controlQueueVisibilityTimeout": 3,
    }
    provider |= durable.pop("storageProvider", {})
    return {"extensions": {"durableTask": {"hubName": hub, "storageProvider": provider, **durable}}}


@pytest.fixture
def hub() -> str:
    return "T" + uuid.uuid4().hex[:12]


@pytest.fixture
async def make_engine(storage_connection_string: str, hub: str) -> AsyncIterator[EngineFactory]:
    engines: list[DurableEngine] = []

    async def make(**durable: Any) -> DurableEngine:
        engine = DurableEngine(
            storage_connection_string=storage_connection_string,
            host_json=host_json(hub, **durable),
            functions=FUNCTIONS,
            rpc_port=0,
            logger=logging.getLogger("test.durable"),
        )
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        if engine._tasks:
            await engine.stop(grace_s=1)
    await http_utils._close_session()


@pytest.fixture
async def engine(make_engine: EngineFactory) -> DurableEngine:
    return await make_engine()


@pytest.fixture
def client(engine: DurableEngine) -> DurableOrchestrationClient:
    return DurableOrchestrationClient(engine.client_binding_json())


async def wait_done(
    client: DurableOrchestrationClient, instance_id: str, within_s: float = 15.0
) -> Any:
    """Poll the SDK client's get_status until the instance leaves Pending/Running."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        status = await client.get_status(instance_id, show_history=True)
        name = status.runtime_status.name if status.runtime_status else None
        if name not in (None, "Pending", "Running", "ContinuedAsNew"):
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{instance_id} still {name} after {within_s}s")
        await asyncio.sleep(0.05)
