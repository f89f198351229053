"""The engine's invocation lines, as the real host writes them for durable functions."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest
from azure.durable_functions import DurableOrchestrationClient

from local.host.logs import HOST_LOGGER

from .conftest import wait_done

EXECUTING = re.compile(r"^Executing 'Functions\.(\w+)' \(Reason='\(null\)', Id=([0-9a-f-]{36})\)$")
EXECUTED = re.compile(
    r"^Executed 'Functions\.(\w+)' \((Succeeded|Failed), Id=([0-9a-f-]{36}), Duration=\d+ms\)$"
)


def _lines(caplog: pytest.LogCaptureFixture, instance_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == HOST_LOGGER and getattr(r, "instanceId", None) == instance_id
    ]


async def test_one_pair_per_episode_and_activity_with_the_instance_id(
    client: DurableOrchestrationClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    iid = await client.start_new("sequence")
    assert (await wait_done(client, iid)).runtime_status.name == "Completed"
    records = _lines(caplog, iid)
    starts = [EXECUTING.match(r.getMessage()) for r in records if r.getMessage()[:9] == "Executing"]
    ends = [EXECUTED.match(r.getMessage()) for r in records if r.getMessage()[:8] == "Executed"]
    assert all(starts) and all(ends)
    names = sorted(m.group(1) for m in starts if m)
    # 4 episodes (start + 3 results) and 3 activity executions
    assert names == ["hello"] * 3 + ["sequence"] * 4
    assert sorted(m.group(3) for m in ends if m) == sorted(m.group(2) for m in starts if m)
    assert {m.group(2) for m in ends if m} == {"Succeeded"}
    # each record of an invocation carries its id, as the host's own lines do
    for r in records:
        assert r.invocationId in r.getMessage() and r.functionName in r.getMessage()


async def test_failed_activity_is_logged_at_error_with_its_trace_but_not_its_input(
    client: DurableOrchestrationClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = "secret-" + uuid.uuid4().hex
    iid = await client.start_new("retrying", None, {"key": key, "failures": 1})
    assert (await wait_done(client, iid)).runtime_status.name == "Completed"
    records = _lines(caplog, iid)
    failed = [r for r in records if "(Failed," in r.getMessage()]
    assert [EXECUTED.match(r.getMessage()).group(1) for r in failed] == ["flaky"]  # type: ignore[union-attr]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == HOST_LOGGER]
    assert len(errors) == 1
    assert errors[0].getMessage() == (
        "Exception while executing function: Functions.flaky. Result: Failure Exception: "
        "RuntimeError: attempt 1 failed"
    )
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
    assert all(key not in r.getMessage() for r in caplog.records)


async def test_failed_orchestrator_episode_is_a_failed_invocation(
    client: DurableOrchestrationClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    iid = await client.start_new("broken")
    assert (await wait_done(client, iid)).runtime_status.name == "Failed"
    ends = [r.getMessage() for r in _lines(caplog, iid) if r.getMessage().startswith("Executed")]
    assert [e.split(" (")[1].split(",")[0] for e in ends] == ["Succeeded", "Succeeded", "Failed"]
    assert ends[-1].startswith("Executed 'Functions.broken'")


async def test_a_factory_installed_before_keeps_tagging_records(
    client: DurableOrchestrationClient, caplog: pytest.LogCaptureFixture
) -> None:
    # As the app's telemetry does: a factory chained on top adds its own field (jobId).
    previous = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.appTag = "kept"
        return record

    logging.setLogRecordFactory(tagged)
    try:
        caplog.set_level(logging.INFO)
        iid = await client.start_new("sequence")
        assert (await wait_done(client, iid)).runtime_status.name == "Completed"
        logging.getLogger("test.after").info("after the orchestration")
    finally:
        logging.setLogRecordFactory(previous)
    records = _lines(caplog, iid)
    assert records and all(getattr(r, "appTag", None) == "kept" for r in records)
    assert all(r.invocationId in r.getMessage() for r in records)
    assert caplog.records[-1].appTag == "kept"  # type: ignore[attr-defined]
