"""Queue intake of a job this process has just created, against a real Azurite.

`POST /api/jobs` keeps the record it created; the intake that follows in the same process
moves it to starting under that record's ETag without reading it, and the claim that
follows uses the moved record: no read of the record between the 202 and the claim. A job
changed since (canceled, or moved by another delivery) is refused by the ETag and then
read and decided as before.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.intake import _start
from relay.jobs import JobRequest, Target
from relay.services import Services
from tests.integration._services import services_on_azurite
from tests.integration.test_hot_paths import RefusingClient, _count_reads

pytestmark = pytest.mark.azurite


@pytest.fixture
async def services(storage_connection_string: str) -> AsyncIterator[Services]:
    async with services_on_azurite(storage_connection_string, "ic") as s:
        yield s


async def _accept(s: Services, owner: str = "ann", prompt: str = "hi") -> str:
    request = JobRequest(prompt=prompt, messages=None, max_tokens=20)
    accepted = await s.accept_job(uuid.uuid4().hex, owner, request, Target("user", owner), None)
    assert accepted.created
    return accepted.job_id


EXTRA: dict[str, Any] = {}


async def test_intake_and_claim_after_a_submission_here_read_nothing(services: Services) -> None:
    job_id = await _accept(services, prompt="hello there")
    reads = _count_reads(services.store)
    client = RefusingClient(set())
    await _start(services, client, job_id, EXTRA)
    assert reads == [] and client.calls == ["start_new"]
    run = await services.store.claim_attempt(job_id)
    assert reads == [] and run.attempt == 1
    assert run.record.request is not None and run.record.request.prompt == "hello there"
    stored = await services.store.get_job(job_id)
    assert (stored.status, stored.etag) == ("running", run.etag)


async def test_a_job_canceled_since_is_read_and_not_started(services: Services) -> None:
    job_id = await _accept(services)
    await services.store.request_cancel(job_id)  # the kept record's ETag is stale now
    reads = _count_reads(services.store)
    client = RefusingClient(set())
    await _start(services, client, job_id, EXTRA)
    assert reads == [job_id] and client.calls == []
    assert (await services.store.get_job(job_id)).status == "canceled"


async def test_a_second_delivery_reads_and_finds_the_instance_live(services: Services) -> None:
    job_id = await _accept(services)
    client = RefusingClient(set())
    await _start(services, client, job_id, EXTRA)
    reads = _count_reads(services.store)
    await _start(services, client, job_id, EXTRA)  # the kept record was used once
    assert reads == [job_id]
    assert client.calls == ["start_new", "get_status"]  # starting + live: nothing restarted


async def test_another_process_reads_as_before(services: Services) -> None:
    job_id = await _accept(services)
    assert services.store.take_committed(job_id) is not None  # as if created elsewhere
    reads = _count_reads(services.store)
    client = RefusingClient(set())
    await _start(services, client, job_id, EXTRA)
    assert reads == [job_id] and client.calls == ["start_new"]
    assert (await services.store.get_job(job_id)).status == "starting"
