"""Queue delivery faults: the same jobs message delivered twice, a message put straight on
the poison queue, and a message that fails every time being routed there by
maxDequeueCount."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from relay.intake import encode_message
from relay.jobs import parse_job_request
from relay.services import Services
from relay.settings import load_settings

from .harness import Case, FaultStack, verify

pytestmark = pytest.mark.e2e

FAST = "tokens=60 rate=300 ttft_ms=0"


async def _put(stack: FaultStack, queue: str, job_id: str, owner: str) -> None:
    client = QueueClient.from_connection_string(
        stack.storage, queue, message_encode_policy=TextBase64EncodePolicy()
    )
    async with client:
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()
        await client.send_message(encode_message(job_id, owner))


async def _count(stack: FaultStack, queue: str) -> int:
    """Messages in the queue, invisible ones included: a message being handled is hidden
    from peek, so an empty peek did not mean its trigger had finished (a race)."""
    async with QueueClient.from_connection_string(stack.storage, queue) as client:
        try:
            return (await client.get_queue_properties()).approximate_message_count
        except ResourceNotFoundError:
            return 0


def _wait_empty(stack: FaultStack, queue: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while asyncio.run(_count(stack, queue)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert asyncio.run(_count(stack, queue)) == 0, f"{queue} still holds messages"


async def _queued_job(stack: FaultStack, user: str, prompt: str, corrupt: bool) -> str:
    """A job as `POST /api/jobs` records it (admitted, queued), but not enqueued."""
    services = Services.build(load_settings(stack.env))
    try:
        s = services.settings
        request = parse_job_request({"prompt": prompt}, services.job_limits,
                                    profile=s.model_profile)  # fmt: skip
        job_id = uuid.uuid4().hex
        await services.admission.reserve(user, job_id)
        await services.store.create_job(job_id, user, request, request.target_for(user),
                                        time.time())  # fmt: skip
        if corrupt:  # a stored request that no longer parses: reading it raises
            table = services.storage.tables.get_table_client(f"{s.table_prefix}jobs")
            await table.update_entity({"PartitionKey": job_id, "RowKey": "job",
                                       "req0": "{not json"}, mode=UpdateMode.MERGE)  # fmt: skip
        return job_id
    finally:
        await services.aclose()


def _record(stack: FaultStack, case: Case) -> dict[str, Any]:
    return dict(stack.request("GET", f"/api/jobs/{case.job_id}", user=case.user).body)


def test_duplicate_jobs_message_after_and_during_a_run(fstack: FaultStack) -> None:
    queue = fstack.env["JOBS_QUEUE"]
    case = Case("duplicate message", "dupmsg", f"Once only. [[emulator {FAST}]]", attempt=1)
    case.listener = fstack.listen(case.user)
    case.job_id = fstack.submit(case.user, case.prompt)
    asyncio.run(_put(fstack, queue, case.job_id, case.user))  # while it starts or runs
    verify(fstack, case, admitted_check=False)
    before = fstack.events(case.job_id, user=case.user)
    asyncio.run(_put(fstack, queue, case.job_id, case.user))  # after it finished
    _wait_empty(fstack, queue)
    time.sleep(0.5)
    after = _record(fstack, case)
    assert after["status"] == "completed" and after["attempt"] == 1
    assert fstack.events(case.job_id, user=case.user) == before
    assert fstack.durable(case.job_id)["runtimeStatus"] == "Completed"
    verify(fstack, case)


def test_message_put_on_the_poison_queue_fails_its_job(fstack: FaultStack) -> None:
    case = Case("poison queue", "poisondirect", f"Never started. [[emulator {FAST}]]",
                status="failed", attempt=0, error="not_started", text="")  # fmt: skip
    case.job_id = asyncio.run(_queued_job(fstack, case.user, case.prompt, corrupt=False))
    asyncio.run(_put(fstack, fstack.env["JOBS_QUEUE"] + "-poison", case.job_id, case.user))
    _check_never_started(fstack, case)


def test_message_failing_every_time_goes_to_poison_and_fails_its_job(
    fstack: FaultStack,
) -> None:
    """Intake raises on every try (the stored request is damaged): after maxDequeueCount
    the message moves to the poison queue, whose trigger fails the job."""
    queue = fstack.env["JOBS_QUEUE"]
    user, prompt = "poisonroute", f"Unreadable. [[emulator {FAST}]]"
    job_id = asyncio.run(_queued_job(fstack, user, prompt, corrupt=True))
    asyncio.run(_put(fstack, queue, job_id, user))
    deadline = time.monotonic() + 45
    record = asyncio.run(_stored(fstack, job_id))
    while record.status != "failed" and time.monotonic() < deadline:
        time.sleep(0.3)
        record = asyncio.run(_stored(fstack, job_id))
    assert record.status == "failed" and record.error is not None, record
    assert record.error["code"] == "not_started" and record.attempt == 0
    assert record.last_seq == 0
    log = fstack.log()
    assert f"Message has reached MaxDequeueCount of 5. Moving message to queue '{queue}-poison'" \
        in log  # fmt: skip
    _wait_empty(fstack, queue)
    _wait_empty(fstack, queue + "-poison")
    # The damaged job is answered with a typed 503 (never a 500), nothing was started, and
    # the user's slot is free again.
    res = fstack.request("GET", f"/api/jobs/{job_id}", user=user)
    assert res.status in (200, 503) and res.body["error" if res.status == 503 else "status"]
    assert fstack.durable(job_id).get("httpStatus") == 404
    probe = fstack.submit(user, f"Next one. [[emulator {FAST}]]")
    assert fstack.wait_status(probe, {"completed"}, user=user, timeout=30)


async def _stored(stack: FaultStack, job_id: str) -> Any:
    services = Services.build(load_settings(stack.env))
    try:
        return await services.store.get_job(job_id, with_request=False)
    finally:
        await services.aclose()


def _check_never_started(stack: FaultStack, case: Case, timeout: float = 30.0) -> None:
    final = stack.wait_status(case.job_id, {"failed", "completed", "canceled"}, user=case.user,
                              timeout=timeout)  # fmt: skip
    assert final["status"] == "failed" and final["error"]["code"] == "not_started", final
    assert final["lastSeq"] == 0 and stack.events(case.job_id, user=case.user)["events"] == []
    assert stack.durable(case.job_id).get("httpStatus") == 404  # no orchestration was left
    probe = stack.submit(case.user, f"Next one. [[emulator {FAST}]]")  # the slot is free
    assert stack.wait_status(probe, {"completed"}, user=case.user, timeout=30)
