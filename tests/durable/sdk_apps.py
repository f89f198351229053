"""Orchestrators shaped like those of the durable SDK's own orchestrator tests.

Written here in our own words: each keeps the calls, their order and the return value of the
SDK test's generator that it stands for (named in tests/durable/data/sdk_*.json), so the SDK's
recorded histories and expected actions apply to it unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

app = df.DFApp()

CITIES = ("Tokyo", "Seattle", "London")


@app.activity_trigger(input_name="city")
def hello_or_none(city: str) -> str | None:
    return None if city == "London" else f"Hello {city}"


@app.orchestration_trigger(context_name="context")
def cities(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    out = []
    for city in CITIES:
        out.append((yield context.call_activity("Hello", city)))
    return out


@app.orchestration_trigger(context_name="context")
def cities_by_callable(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    out = []
    for city in CITIES:
        out.append((yield context.call_activity(hello_or_none, city)))
    return out


@app.orchestration_trigger(context_name="context")
def cities_then_raise(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    for city in CITIES:
        yield context.call_activity("Hello", city)
    raise ValueError("Oops!")


@app.orchestration_trigger(context_name="context")
def replay_flags(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    seen = []
    for city in CITIES:
        seen.append(context.is_replaying)
        yield context.call_activity("Hello", city)
    return seen


@app.orchestration_trigger(context_name="context")
def clock_readings(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    readings = []
    for city in CITIES:
        readings.append(context.current_utc_datetime.strftime("%m/%d/%Y, %H:%M:%S"))
        yield context.call_activity("Hello", city)
    readings.append(context.current_utc_datetime.strftime("%m/%d/%Y, %H:%M:%S"))
    return readings


@app.orchestration_trigger(context_name="context")
def all_twice(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    task = context.call_activity("Hello", "Tokyo")
    yield context.task_all([task])
    return (yield context.task_all([task]))


@app.orchestration_trigger(context_name="context")
def only_last_yielded(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.call_activity("Hello", "Tokyo")
    context.call_activity("Hello", "Seattle")
    return (yield context.call_activity("Hello", "London"))


@app.orchestration_trigger(context_name="context")
def same_task_twice(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    task = context.call_activity("Hello", "Tokyo")
    yield task
    yield task
    return ""


@app.orchestration_trigger(context_name="context")
def shrinking_any(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    pending = [context.call_activity("Hello", "Tokyo"), context.call_activity("Hello", "Seattle")]
    first = yield context.task_any(pending)
    pending.remove(first)
    yield context.task_any(pending)
    yield context.call_activity("Hello", "London")
    return ""


@app.orchestration_trigger(context_name="context")
def any_with_new_task(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    pending = [context.call_activity("Hello", "Tokyo"), context.call_activity("Hello", "Seattle")]
    first = yield context.task_any(pending)
    pending.remove(first)
    yield context.task_any([*pending, context.call_activity("Hello", "London")])
    return ""


@app.orchestration_trigger(context_name="context")
def nested_compound(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("Hello", "Tokyo")
    a, b, c = (context.call_activity("Hello", "Tokyo") for _ in range(3))
    yield context.task_any([context.task_all([a, b, context.task_any([c])])])
    return ""


def _retry(attempts: int) -> df.RetryOptions:
    return df.RetryOptions(
        first_retry_interval_in_milliseconds=5000, max_number_of_attempts=attempts
    )


@app.orchestration_trigger(context_name="context")
def cities_retry3(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    out = []
    for c in CITIES:
        out.append((yield context.call_activity_with_retry("Hello", _retry(3), c)))
    return out


@app.orchestration_trigger(context_name="context")
def cities_retry2(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    out = []
    for c in CITIES:
        out.append((yield context.call_activity_with_retry("Hello", _retry(2), c)))
    return out


@app.orchestration_trigger(context_name="context")
def retry_or_fallback(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    try:
        return (yield context.call_activity_with_retry("Hello", _retry(3), "Tokyo"))
    except Exception:
        return (yield context.call_activity_with_retry("Hello", _retry(3), "Seattle"))


@app.orchestration_trigger(context_name="context")
def retries_all(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    count = context.get_input() or 3
    tasks = [context.call_activity_with_retry("Hello", _retry(3), c) for c in CITIES[:count]]
    return (yield context.task_all(tasks))


@app.orchestration_trigger(context_name="context")
def retries_any(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    tasks = [context.call_activity_with_retry("Hello", _retry(3), c) for c in CITIES[:2]]
    return (yield context.task_any(tasks)).result


@app.orchestration_trigger(context_name="context")
def fan_out_sum(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    count = yield context.call_activity("GetActivityCount")
    values = yield context.task_all(
        [context.call_activity("ParrotValue", str(i)) for i in range(count)]
    )
    return (yield context.call_activity("ShowMeTheSum", values))


@app.orchestration_trigger(context_name="context")
def fixed_timer(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.create_timer(datetime(2020, 7, 23, 21, 56, 54, 936700, tzinfo=UTC))
    return "Done!"


@app.orchestration_trigger(context_name="context")
def two_timers(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    now = context.current_utc_datetime
    early = context.create_timer(now + timedelta(minutes=5))
    late = context.create_timer(now + timedelta(minutes=10))
    winner = yield context.task_any([early, late])
    if winner != early:
        raise RuntimeError("the 5-minute timer should win")
    late.cancel()
    return "Done!"


@app.orchestration_trigger(context_name="context")
def wait_a(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield context.wait_for_external_event("A"))


@app.orchestration_trigger(context_name="context")
def wait_b_then_a(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.wait_for_external_event("B")
    return (yield context.wait_for_external_event("A"))


@app.orchestration_trigger(context_name="context")
def first_of_three(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    tasks = [context.call_activity("Hello", str(i)) for i in range(3)]
    winner = yield context.task_any(tasks)
    try:
        return (yield winner)
    except Exception:
        return "exception"


@app.orchestration_trigger(context_name="context")
def first_of_none(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.task_any([])
    return "Done!"


@app.orchestration_trigger(context_name="context")
def hello_then_continue(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("Hello", "Tokyo")
    context.continue_as_new("Cause I can")


@app.orchestration_trigger(context_name="context")
def cities_with_status(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    marks = ("--- Tokyo ->", "Seattle ->", "London ---")
    for city, mark in zip(CITIES, marks, strict=True):
        yield context.call_activity("Hello", city)
        context.set_custom_status(mark)


@app.orchestration_trigger(context_name="context")
def status_object(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("Hello", "Tokyo")
    status: dict[str, Any] = {"tokyo": "completed"}
    context.set_custom_status(status)


FUNCTIONS = app.get_functions()
