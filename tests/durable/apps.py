"""Small orchestrators and activities the durable tests run, on one DFApp."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

app = df.DFApp()

# Observations the tests read back; keyed by a per-test token so tests never share entries.
CALLS: Counter[str] = Counter()
RUNNING: Counter[str] = Counter()
PEAK: Counter[str] = Counter()
GATES: dict[str, threading.Event] = {}
_lock = threading.Lock()


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="job")
def flaky(job: dict[str, Any]) -> str:
    """Fails the first `failures` calls for `job["key"]`."""
    with _lock:
        CALLS[job["key"]] += 1
        n = CALLS[job["key"]]
    if n <= job["failures"]:
        raise RuntimeError(f"attempt {n} failed")
    return f"ok after {n}"


@app.activity_trigger(input_name="job")
async def sleepy(job: dict[str, Any]) -> int:
    """Counts calls and concurrency per key; sleeps `seconds`."""
    key = job["key"]
    with _lock:
        CALLS[key] += 1
        RUNNING[key] += 1
        PEAK[key] = max(PEAK[key], RUNNING[key])
    try:
        await asyncio.sleep(job["seconds"])
    finally:
        with _lock:
            RUNNING[key] -= 1
    return int(job.get("value", 0))


@app.activity_trigger(input_name="key")
def gated(key: str) -> str:
    """The first call blocks until the test opens its gate (a worker 'dying' mid-activity)."""
    with _lock:
        CALLS[key] += 1
        n = CALLS[key]
    if n == 1:
        GATES.setdefault(key, threading.Event()).wait(timeout=20)
    return f"run {n}"


@app.activity_trigger(input_name="key")
def first_free(key: str) -> str:
    """The first call returns at once; later ones block until the test opens the gate."""
    with _lock:
        CALLS[key] += 1
        n = CALLS[key]
    if n > 1:
        GATES.setdefault(key, threading.Event()).wait(timeout=20)
    return f"run {n}"


@app.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    out = []
    for city in ("Tokyo", "Seattle", "London"):
        out.append((yield context.call_activity("hello", city)))
    return out


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    job = context.get_input()
    tasks = [
        context.call_activity("sleepy", {"key": job["key"], "seconds": job["seconds"], "value": i})
        for i in range(job["n"])
    ]
    results = yield context.task_all(tasks)
    return sum(results)


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    job = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=3)
    first = yield context.call_activity_with_retry("flaky", options, job)
    second = yield context.call_activity("hello", "after retry")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def timer(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    start = context.current_utc_datetime
    yield context.create_timer(start + timedelta(seconds=1))
    return (context.current_utc_datetime - start).total_seconds()


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.set_custom_status({"stage": "waiting"})
    value = yield context.wait_for_external_event("approve")
    context.set_custom_status({"stage": "approved"})
    return value


@app.orchestration_trigger(context_name="context")
def two_events(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("hello", "first")
    a = yield context.wait_for_external_event("a")
    b = yield context.wait_for_external_event("b")
    return [a, b]


@app.orchestration_trigger(context_name="context")
def deadline(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    seconds = context.get_input()
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    event = context.wait_for_external_event("go")
    winner = yield context.task_any([event, timeout])
    if winner == event:
        timeout.cancel()
        return {"outcome": "event", "value": event.result}
    return {"outcome": "timeout"}


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    n = context.get_input() or 0
    yield context.call_activity("hello", str(n))
    if n < 3:
        context.continue_as_new(n + 1)
        return None
    return n


@app.orchestration_trigger(context_name="context")
def broken(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("hello", "x")
    raise ValueError("the orchestrator gave up")


@app.orchestration_trigger(context_name="context")
def huge_status(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.set_custom_status("x" * 20000)
    yield context.wait_for_external_event("never")
    return None


@app.orchestration_trigger(context_name="context")
def nested(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield context.call_sub_orchestrator("sequence"))


@app.orchestration_trigger(context_name="context")
def slow_step(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    job = context.get_input()
    value = yield context.call_activity("sleepy", job)
    return value


@app.orchestration_trigger(context_name="context")
def gated_step(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield context.call_activity("gated", context.get_input()))


@app.orchestration_trigger(context_name="context")
def warm_then_first_free(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("hello", "warm")
    return (yield context.call_activity("first_free", context.get_input()))


FUNCTIONS = app.get_functions()
_ = time
