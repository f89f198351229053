"""Orchestrations end to end through the SDK's client, on a real Azurite."""

from __future__ import annotations

import pytest
from azure.durable_functions import DurableOrchestrationClient

from local.durable import DurableEngine

from .conftest import wait_done

pytestmark = pytest.mark.azurite


async def test_activities_in_sequence(client: DurableOrchestrationClient) -> None:
    instance_id = await client.start_new("sequence", None, None)
    status = await wait_done(client, instance_id)
    assert status.runtime_status.name == "Completed"
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    kinds = [e["EventType"] for e in status.historyEvents]
    assert kinds.count("TaskScheduled") == 3 and kinds.count("TaskCompleted") == 3
    assert kinds[-1] == "OrchestratorCompleted"


async def test_handles_trigger_types() -> None:
    assert DurableEngine.handles("orchestrationTrigger")
    assert DurableEngine.handles("activityTrigger")
    assert not DurableEngine.handles("httpTrigger")
