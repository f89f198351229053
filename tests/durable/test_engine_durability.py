"""At-least-once delivery, restarts and concurrency limits, on a real Azurite."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import pytest
from azure.durable_functions import DurableOrchestrationClient

from local.durable import DurableEngine

from .apps import CALLS, GATES, PEAK
from .conftest import EngineFactory, wait_done

pytestmark = pytest.mark.azurite


async def wait_calls(key: str, n: int) -> None:
    for _ in range(200):
        if CALLS[key] >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} called {CALLS[key]} times, wanted {n}")


async def wait_running(client: DurableOrchestrationClient, iid: str) -> None:
    for _ in range(200):
        status = await client.get_status(iid)
        if status.runtime_status and status.runtime_status.name == "Running":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{iid} never ran")


async def test_worker_dying_mid_activity_gets_it_redelivered(make_engine: EngineFactory) -> None:
    key = uuid.uuid4().hex
    GATES[key] = threading.Event()
    first = await make_engine()
    client = DurableOrchestrationClient(first.client_binding_json())
    iid = await client.start_new("gated_step", None, key)
    await wait_calls(key, 1)
    await wait_running(client, iid)  # the episode that scheduled the activity is persisted
    await first.kill()  # the work item stays leased until its visibility timeout (3 s)
    second = await make_engine()
    client = DurableOrchestrationClient(second.client_binding_json())
    status = await wait_done(client, iid, within_s=20)
    GATES[key].set()  # let the dead worker's thread end
    assert status.runtime_status.name == "Completed"
    assert status.output == "run 2"
    assert CALLS[key] == 2
    completions = [e for e in status.historyEvents if e["EventType"] == "TaskCompleted"]
    assert len(completions) == 1


async def test_duplicate_results_are_ignored_by_task_scheduled_id(
    engine: DurableEngine, client: DurableOrchestrationClient
) -> None:
    iid = await client.start_new("sequence", None, None)
    status = await wait_done(client, iid)
    x = (await engine.store.get_instance(iid) or {})["ExecutionId"]
    # Replay a result for task 0 as a redelivered message would; then the instance must
    # neither change nor grow its history.
    duplicate = {
        "t": "event", "i": iid, "x": x,
        "e": {"EventType": 5, "EventId": -1, "IsPlayed": False,
              "Timestamp": "2030-01-01T00:00:00.000000Z", "TaskScheduledId": 0,
              "Result": json.dumps("Hello Mars!")},
    }  # fmt: skip
    before = len(status.historyEvents)
    await engine.store.send("control", duplicate)
    await asyncio.sleep(1.0)
    after = await client.get_status(iid, show_history=True)
    assert after.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert len(after.historyEvents) == before
    assert await engine.store.receive("control", 32, 1) == []


async def test_restart_mid_orchestration_resumes(make_engine: EngineFactory) -> None:
    key = uuid.uuid4().hex
    first = await make_engine()
    client = DurableOrchestrationClient(first.client_binding_json())
    iid = await client.start_new("slow_step", None, {"key": key, "seconds": 1.5, "value": 7})
    await wait_calls(key, 1)
    await first.stop(grace_s=0.1)  # abandons the running activity for redelivery
    second = await make_engine()
    client = DurableOrchestrationClient(second.client_binding_json())
    status = await wait_done(client, iid, within_s=20)
    assert status.runtime_status.name == "Completed"
    assert status.output == 7
    assert CALLS[key] == 2


async def test_max_concurrent_activity_functions_is_honoured(make_engine: EngineFactory) -> None:
    key = uuid.uuid4().hex
    engine = await make_engine(maxConcurrentActivityFunctions=2)
    client = DurableOrchestrationClient(engine.client_binding_json())
    iid = await client.start_new("fan_out", None, {"key": key, "seconds": 0.3, "n": 6})
    status = await wait_done(client, iid)
    assert status.output == sum(range(6))
    assert CALLS[key] == 6
    assert PEAK[key] == 2


async def test_bad_host_json_is_refused_with_a_message(storage_connection_string: str) -> None:
    with pytest.raises(ValueError, match="hubName"):
        DurableEngine(
            storage_connection_string=storage_connection_string,
            host_json={"extensions": {"durableTask": {"hubName": "bad-name"}}},
            functions=[],
        )
    with pytest.raises(ValueError, match="maxQueuePollingInterval"):
        DurableEngine(
            storage_connection_string=storage_connection_string,
            host_json={
                "extensions": {
                    "durableTask": {"storageProvider": {"maxQueuePollingInterval": "soon"}}
                }
            },
            functions=[],
        )
