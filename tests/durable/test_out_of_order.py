"""A kept activity starts when its work item is sent; its result may beat its episode's persist.

DTFx's rule (OrchestrationSession.IsOutOfOrderMessage): a result whose scheduling event is not
in the persisted history yet is deferred, not dropped; exactly one result is ever applied.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from azure.durable_functions import DurableOrchestrationClient

from local.durable import DurableEngine
from local.durable._dispatch import abandon_delay_s, out_of_order
from local.durable._replay import ShimState
from local.durable._store import Message, StoreUnavailable

from .apps import CALLS, GATES
from .conftest import EngineFactory, wait_done
from .test_local_dispatch import LAZY_POLLS, count_deliveries, queued

COMPLETED, FAILED, TIMER_FIRED, RAISED = 5, 6, 11, 15


# --- the rule itself -------------------------------------------------------------------
def _message(kind: int, task_id: int, dequeues: int = 1, x: str = "x1") -> Message:
    ev: dict[str, Any] = {"EventType": kind, "EventId": -1, "Timestamp": "2030-01-01T00:00:00Z"}
    if kind == TIMER_FIRED:
        ev["TimerId"] = task_id
    elif kind in (COMPLETED, FAILED):
        ev["TaskScheduledId"] = task_id
    else:
        ev["Name"] = "go"
    return Message("m", "r", {"t": "event", "i": "a", "x": x, "e": ev}, dequeues)


def _row(scheduled: list[int], length: int | None = 9) -> dict[str, Any]:
    state = ShimState(next_id=len(scheduled))
    state.tasks = {n: {"kind": "activity", "name": "f"} for n in scheduled}
    row = {"PartitionKey": "a", "ExecutionId": "x1", "Shim": state.to_json()}
    return row if length is None else row | {"HistoryLength": length}


def test_a_result_is_out_of_order_only_while_its_scheduling_is_not_persisted() -> None:
    row = _row([0, 1])
    assert not out_of_order(row, _message(COMPLETED, 1))
    assert not out_of_order(row, _message(TIMER_FIRED, 0))
    for kind in (COMPLETED, FAILED, TIMER_FIRED):
        assert out_of_order(row, _message(kind, 2))
        assert out_of_order(row, _message(kind, 2, dequeues=40))  # no bound: it may come yet
    assert not out_of_order(row, _message(RAISED, 2))  # only answers to scheduled work
    start = Message("m", "r", {"t": "start", "i": "a", "x": "x1"}, 1)
    assert not out_of_order(row, start)
    assert out_of_order(_row([0], length=None), _message(COMPLETED, 3))  # a row of old format


@pytest.mark.parametrize(
    "row, x",
    [(None, "x1"), (_row([]), "x0"), (_row([], length=0), "x1")],
    ids=["no instance", "another execution", "first episode not persisted"],
)
def test_a_result_for_an_execution_without_history_gets_five_dequeues(
    row: dict[str, Any] | None, x: str
) -> None:
    for dequeues in range(6):  # 0: handed over in process, never dequeued
        assert out_of_order(row, _message(COMPLETED, 0, dequeues, x))
    assert not out_of_order(row, _message(COMPLETED, 0, 6, x))  # then dropped as stale


def test_an_abandoned_message_backs_off_exponentially_up_to_ten_minutes() -> None:
    delays = [abandon_delay_s(_message(COMPLETED, 0, n)) for n in (0, 1, 2, 5, 9, 10, 30, 99)]
    assert delays == [2, 2, 4, 32, 512, 600, 600, 600]


# --- in the engine ---------------------------------------------------------------------
def watch(engine: DurableEngine) -> dict[str, Any]:
    """Events for result sends and work-item deletes; the list of deferred control events."""
    seen: dict[str, Any] = {"result": asyncio.Event(), "deleted": asyncio.Event(), "deferred": []}
    store = engine.store
    send, delete, extend = store.send, store.delete, store.extend

    async def sent(queue: str, body: dict[str, Any], delay_s: float = 0) -> Message:
        message = await send(queue, body, delay_s)
        if queue == "control" and (body.get("e") or {}).get("EventType") in (COMPLETED, FAILED):
            seen["result"].set()
        return message

    async def deleted(queue: str, message: Message) -> None:
        await delete(queue, message)
        if queue == "work":
            seen["deleted"].set()

    async def extended(queue: str, message: Message, visibility_s: float) -> Message:
        if queue == "control":
            seen["deferred"].append(message.body["e"])
        return await extend(queue, message, visibility_s)

    store.send = sent  # type: ignore[method-assign]
    store.delete = deleted  # type: ignore[method-assign]
    store.extend = extended  # type: ignore[method-assign]
    return seen


def fail_one_history_write(engine: DurableEngine, *, after_first: bool = False) -> list[int]:
    """Make one episode's history write fail (StoreUnavailable): the first one, or the first
    after the first episode's. Returns the list of the failed writes' start indexes."""
    append_history = engine.store.append_history
    failed: list[int] = []

    async def failing(instance_id: str, x: str, start: int, events: list[Any]) -> None:
        if not failed and (start > 0 or not after_first):
            failed.append(start)
            raise StoreUnavailable("history write failed")
        await append_history(instance_id, x, start, events)

    engine.store.append_history = failing  # type: ignore[method-assign]
    return failed


def completions(status: Any) -> list[dict[str, Any]]:
    return [e for e in status.historyEvents if e["EventType"] == "TaskCompleted"]


async def test_a_kept_activity_starts_at_its_send_and_its_result_waits_for_the_persist(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(**LAZY_POLLS)
    polled = count_deliveries(engine)
    seen = watch(engine)
    key = uuid.uuid4().hex
    append_history = engine.store.append_history
    at_persist: list[int] = []

    async def held(instance_id: str, x: str, start: int, events: list[dict[str, Any]]) -> None:
        if not at_persist:  # the scheduling episode: held until the activity's result is sent
            await asyncio.wait_for(seen["result"].wait(), 10)
            at_persist.append(CALLS[key])
        await append_history(instance_id, x, start, events)

    engine.store.append_history = held  # type: ignore[method-assign]
    client = DurableOrchestrationClient(engine.client_binding_json())
    iid = await client.start_new("slow_step", None, {"key": key, "seconds": 0, "value": 5})
    status = await wait_done(client, iid, within_s=20)
    assert at_persist == [1]  # the activity had run before its episode's history was written
    assert status.output == 5 and CALLS[key] == 1 and len(completions(status)) == 1
    # The early result waited in the inbox and was applied right after the persist: no
    # deferral, no trip through a queue poll.
    assert seen["deferred"] == [] and polled["control"] == 0


async def test_a_result_found_before_its_scheduling_is_deferred_then_applied_once(
    engine: DurableEngine, client: DurableOrchestrationClient
) -> None:
    seen = watch(engine)
    key = uuid.uuid4().hex
    GATES[key] = threading.Event()
    failed = fail_one_history_write(engine, after_first=True)  # the one scheduling task 1
    iid = await client.start_new("warm_then_first_free", None, key)
    # Run 1 started at its send and finished; its result found no TaskScheduled 1 and was
    # deferred. The failed episode's own message (task 0's result) was abandoned with
    # backoff, the episode re-ran from it and sent the work item again; run 2 blocks at the
    # gate, so only run 1's result can complete it.
    status = await wait_done(client, iid, within_s=30)
    assert failed and status.output == "run 1"
    put_back = {(e["EventType"], e["TaskScheduledId"]) for e in seen["deferred"]}
    assert (COMPLETED, 1) in put_back and put_back <= {(COMPLETED, 0), (COMPLETED, 1)}
    assert CALLS[key] == 2
    assert len(completions(status)) == 2  # hello's, and one for task 1
    GATES[key].set()  # run 2's result: a duplicate by TaskScheduledId, dropped
    for _ in range(200):
        if await queued(engine.store) == 0:
            break
        await asyncio.sleep(0.05)
    assert await queued(engine.store) == 0
    after = await client.get_status(iid, show_history=True)
    assert after.output == "run 1" and len(after.historyEvents) == len(status.historyEvents)


async def test_a_crash_after_the_sends_reruns_the_episode_and_applies_one_result(
    make_engine: EngineFactory,
) -> None:
    key = uuid.uuid4().hex
    first = await make_engine()
    seen = watch(first)
    hung = asyncio.Event()

    async def hang(*args: Any) -> None:  # the process dies inside the history write
        hung.set()
        await asyncio.Event().wait()

    first.store.append_history = hang  # type: ignore[method-assign]
    receive = first.store.receive

    async def no_work_polls(queue: str, count: int, visibility_s: float) -> list[Message]:
        # Only the start at its send can run the activity here (not a poll after its lease).
        return [] if queue == "work" else await receive(queue, count, visibility_s)

    first.store.receive = no_work_polls  # type: ignore[method-assign]
    client = DurableOrchestrationClient(first.client_binding_json())
    iid = await client.start_new("slow_step", None, {"key": key, "seconds": 0, "value": 11})
    await asyncio.wait_for(seen["deleted"].wait(), 10)  # ran, sent its result, work item gone
    assert hung.is_set() and CALLS[key] == 1
    await first.kill()
    second = await make_engine()
    client = DurableOrchestrationClient(second.client_binding_json())
    # The start message and run 1's result come back after their 3 s leases; the re-run
    # episode sends the work item again (run 2). One result is applied, the other dropped.
    status = await wait_done(client, iid, within_s=30)
    assert status.runtime_status.name == "Completed" and status.output == 11
    assert CALLS[key] == 2
    assert len(completions(status)) == 1


async def test_a_failed_episode_is_abandoned_with_backoff_not_left_for_its_lease(
    make_engine: EngineFactory,
) -> None:
    """DTFx aborts a work item whose processing threw (AbandonTaskOrchestrationWorkItemAsync):
    its messages come back after 2^DequeueCount s, not after the control queue's visibility
    timeout (here 120 s, far beyond the wait below)."""
    long_leases = {"controlQueueVisibilityTimeout": 120, "workItemQueueVisibilityTimeout": 120}
    engine = await make_engine(storageProvider=long_leases)
    client = DurableOrchestrationClient(engine.client_binding_json())
    failed = fail_one_history_write(engine)  # the first (as when Azurite resets a connection)
    iid = await client.start_new("sequence", None, None)
    status = await wait_done(client, iid, within_s=30)
    assert failed == [0]
    assert status.runtime_status.name == "Completed"
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert len(completions(status)) == 3  # the first run's early result applied once
