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


async def test_finished_activities_leave_no_lease_behind(
    engine: DurableEngine, client: DurableOrchestrationClient
) -> None:
    # The renewed receipts of running work items live in memory only while they run: after
    # many jobs the engine holds none (a long-running host must not grow with its history).
    ids = [await client.start_new("sequence", None, None) for _ in range(5)]
    for instance_id in ids:
        assert (await wait_done(client, instance_id)).runtime_status.name == "Completed"
    assert engine._leases == {}
