"""Each durable feature the app relies on, through the SDK's own client and handler."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.durable_functions import DurableOrchestrationClient

from local.durable import DurableEngine

from .apps import CALLS
from .conftest import wait_done

pytestmark = pytest.mark.azurite


def kinds(status: object) -> list[str]:
    return [e["EventType"] for e in status.historyEvents]  # type: ignore[attr-defined]


async def wait_status(client: DurableOrchestrationClient, iid: str, name: str) -> None:
    for _ in range(200):
        status = await client.get_status(iid)
        if status.runtime_status and status.runtime_status.name == name:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{iid} never reached {name}")


async def test_activity_with_retry_follows_the_sdk_ids(client: DurableOrchestrationClient) -> None:
    key = uuid.uuid4().hex
    iid = await client.start_new("retrying", None, {"key": key, "failures": 2})
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Completed", status.output
    assert status.output == ["ok after 3", "Hello after retry!"]
    assert CALLS[key] == 3
    # Ids as the SDK numbers them: run 0, timer 1, run 2, timer 3, run 4, then the next call 5.
    ids = [
        (e["EventType"], e.get("TaskScheduledId", e.get("TimerId")))
        for e in status.historyEvents
        if e["EventType"] in ("TaskFailed", "TimerFired", "TaskCompleted")
    ]
    assert ids == [
        ("TaskFailed", 0), ("TimerFired", 1), ("TaskFailed", 2), ("TimerFired", 3),
        ("TaskCompleted", 4), ("TaskCompleted", 5),
    ]  # fmt: skip


async def test_retry_exhausted_fails_the_orchestration(
    client: DurableOrchestrationClient,
) -> None:
    key = uuid.uuid4().hex
    iid = await client.start_new("retrying", None, {"key": key, "failures": 5})
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Failed"
    assert "attempt 3 failed" in status.output
    assert CALLS[key] == 3


async def test_durable_timer_fires_after_its_time(client: DurableOrchestrationClient) -> None:
    iid = await client.start_new("timer", None, None)
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Completed"
    assert 1.0 <= status.output < 3.0
    assert kinds(status).count("TimerFired") == 1


async def test_event_raised_after_the_orchestrator_waits(
    client: DurableOrchestrationClient,
) -> None:
    iid = await client.start_new("approval", None, None)
    await wait_status(client, iid, "Running")
    for _ in range(100):
        if (await client.get_status(iid)).custom_status == {"stage": "waiting"}:
            break
        await asyncio.sleep(0.05)
    assert (await client.get_status(iid)).custom_status == {"stage": "waiting"}
    await client.raise_event(iid, "approve", {"by": "ana"})
    status = await wait_done(client, iid)
    assert status.output == {"by": "ana"}
    assert status.custom_status == {"stage": "approved"}


async def test_events_raised_before_the_orchestrator_waits_are_buffered(
    client: DurableOrchestrationClient,
) -> None:
    iid = await client.start_new("two_events", None, None)
    await wait_status(client, iid, "Running")
    await client.raise_event(iid, "b", 2)
    await client.raise_event(iid, "a", 1)
    status = await wait_done(client, iid)
    assert status.output == [1, 2]


async def test_task_any_timeout_pattern(client: DurableOrchestrationClient) -> None:
    timed_out = await client.start_new("deadline", None, 1)
    answered = await client.start_new("deadline", None, 30)
    await wait_status(client, answered, "Running")
    await client.raise_event(answered, "go", "now")
    status = await wait_done(client, answered)
    assert status.output == {"outcome": "event", "value": "now"}
    status = await wait_done(client, timed_out)
    assert status.output == {"outcome": "timeout"}


async def test_terminate(client: DurableOrchestrationClient) -> None:
    iid = await client.start_new("approval", None, None)
    await wait_status(client, iid, "Running")
    await client.terminate(iid, "operator said so")
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Terminated"
    assert status.output == "operator said so"
    await client.terminate(iid, "again")  # 410: the SDK treats it as done
    with pytest.raises(Exception, match="is gone"):
        await client.raise_event(iid, "approve", 1)
    with pytest.raises(Exception, match="No instance"):
        await client.terminate("no-such-instance", "x")


async def test_continue_as_new_restarts_with_new_input(
    client: DurableOrchestrationClient,
) -> None:
    iid = await client.start_new("counter", None, 0)
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Completed"
    assert status.output == 3
    # Only the last execution's history is kept.
    assert kinds(status).count("TaskScheduled") == 1


async def test_orchestrator_failure(client: DurableOrchestrationClient) -> None:
    iid = await client.start_new("broken", None, None)
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Failed"
    assert status.output.startswith("Orchestrator function 'broken' failed:")
    assert "the orchestrator gave up" in status.output


async def test_custom_status_over_16_kb_fails_clearly(
    client: DurableOrchestrationClient,
) -> None:
    iid = await client.start_new("huge_status", None, None)
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Failed"
    assert "16 KB" in status.output


async def test_sub_orchestrations_are_refused_by_name(
    client: DurableOrchestrationClient,
) -> None:
    iid = await client.start_new("nested", None, None)
    status = await wait_done(client, iid)
    assert status.runtime_status.name == "Failed"
    assert "sub-orchestrations" in status.output and "not supported" in status.output


async def test_instance_id_rules(client: DurableOrchestrationClient) -> None:
    iid = "job-" + uuid.uuid4().hex
    assert await client.start_new("approval", iid, None) == iid
    await wait_status(client, iid, "Running")
    with pytest.raises(Exception, match="status Running already exists"):
        await client.start_new("approval", iid, None)
    await client.raise_event(iid, "approve", "first")
    assert (await wait_done(client, iid)).output == "first"
    # A finished instance id starts again, fresh.
    assert await client.start_new("approval", iid, None) == iid
    await wait_status(client, iid, "Running")
    await client.raise_event(iid, "approve", "second")
    status = await wait_done(client, iid)
    assert status.output == "second"
    assert kinds(status).count("EventRaised") == 1
    with pytest.raises(Exception, match="doesn't exist"):
        await client.start_new("no_such_orchestrator", None, None)
    with pytest.raises(Exception, match="must not"):
        await client.start_new("approval", "@bad", None)


async def test_status_404_and_purge(client: DurableOrchestrationClient) -> None:
    missing = await client.get_status("nobody-" + uuid.uuid4().hex)
    assert not missing and missing.runtime_status is None
    iid = await client.start_new("sequence", None, None)
    await wait_done(client, iid)
    everything = await client.get_status_all()
    assert iid in {s.instance_id for s in everything}
    result = await client.purge_instance_history(iid)
    assert result.instances_deleted == 1
    assert not await client.get_status(iid)
    assert (await client.purge_instance_history(iid)).instances_deleted == 0


async def test_client_binding_points_at_the_real_port(engine: DurableEngine) -> None:
    binding = engine.client_binding_json()
    assert f":{engine.rpc_port}/durabletask/" in binding
    assert engine.rpc_port not in (0, 17071)
