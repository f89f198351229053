"""The sweeper against a real Azurite: stuck jobs reconciled, expired rows removed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from api.sweeper import sweep
from relay.jobs import JobRequest, Target
from relay.limits import LimitExceeded
from relay.services import Services
from tests.integration._services import services_on_azurite

pytestmark = pytest.mark.azurite


class FakeDurableClient:
    """The durable client boundary: which orchestrations exist and what was started."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.started: list[str] = []
        self.purged = 0

    async def get_status(self, instance_id: str) -> Any:
        status = "Running" if instance_id in self.live else None
        return SimpleNamespace(runtime_status=SimpleNamespace(value=status) if status else None)

    async def start_new(self, name: str, instance_id: str, spec: dict[str, Any]) -> str:
        self.started.append(instance_id)
        return instance_id

    async def purge_instance_history_by(self, **kwargs: Any) -> None:
        assert kwargs["created_time_from"] < kwargs["created_time_to"]
        self.purged += 1


@pytest.fixture
async def services(storage_connection_string: str) -> AsyncIterator[Services]:
    async with services_on_azurite(
        storage_connection_string, "sweep", JOB_TIMEOUT_SECONDS="40"
    ) as s:
        yield s


def _request() -> JobRequest:
    return JobRequest(prompt="p", messages=None, system=None, max_tokens=None,
                      temperature=None, group_name=None, connection_id=None)  # fmt: skip


async def _job(s: Services, job_id: str, owner: str = "u1") -> None:
    req = _request()
    await s.admission.reserve(owner, job_id)
    await s.store.create_job(job_id, owner, req, Target("user", owner), time.time())


async def test_stuck_jobs_are_reconciled(services: Services) -> None:
    queued, starting, lost, live = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)
    for job_id in (queued, starting, lost, live):
        await _job(services, job_id)
    await services.store.transition(starting, "starting")
    for job_id in (lost, live):
        await services.store.transition(job_id, "starting")
        await services.store.claim_attempt(job_id)
    client = FakeDurableClient(live={live})
    # 150 s on: past the queued grace (2 min), within the admissions' life (40 s + 120 s).
    soon = datetime.now(UTC) + timedelta(seconds=150)
    counts = await sweep(services, client, now=soon)
    assert counts["requeued"] == 1 and counts["restarted"] == 1 and counts["failed"] == 0
    assert client.started == [starting]
    # 5 min on: the running job without an orchestration is lost; the queued one, never
    # picked up, has outlived its admission and fails instead of running unadmitted.
    later = datetime.now(UTC) + timedelta(minutes=5)
    counts = await sweep(services, client, now=later)
    assert counts["failed"] == 2
    assert (await services.store.get_job(lost)).status == "failed"
    left = await services.store.get_job(queued)
    assert left.status == "failed" and left.error is not None
    assert left.error["code"] == "not_admitted"
    assert (await services.store.get_job(live)).status == "running"
    assert client.purged == 2
    # The failed job no longer counts against its owner's concurrency.
    await services.admission.reserve("u1", "e" * 32)


async def test_nothing_to_do_changes_nothing(services: Services) -> None:
    await _job(services, "f" * 32)
    counts = await sweep(services, FakeDurableClient(set()))
    assert counts == {"requeued": 0, "restarted": 0, "failed": 0, "purged": 0}
    assert (await services.store.get_job("f" * 32)).status == "queued"


async def test_a_queued_job_without_admission_is_failed_not_enqueued(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused job whose record could not be taken back must never run: the sweeper
    finds it queued without an admission row and fails it instead of enqueueing it."""
    limit = services.settings.user_max_concurrent_jobs
    for n in range(limit):
        await _job(services, str(n) * 32, owner="zed")

    async def broken_discard(new: Any) -> None:
        raise RuntimeError("storage went away")

    monkeypatch.setattr(services.store, "discard_job", broken_discard)
    refused = "9" * 32
    with pytest.raises(LimitExceeded):
        await services.accept_job(refused, "zed", _request(), Target("user", "zed"), None)
    assert (await services.store.get_job(refused)).status == "queued"  # left behind
    assert not await services.admission.holds(refused)
    before = await services.queue.position_in_line()
    counts = await sweep(services, FakeDurableClient(set()),
                         now=datetime.now(UTC) + timedelta(seconds=150))  # fmt: skip
    left = await services.store.get_job(refused)
    assert left.status == "failed" and left.error is not None
    assert left.error["code"] == "not_admitted"
    # The admitted jobs were enqueued again (their messages "lost"), the refused one not.
    # (The refusal dropped its rows, so the live admissions are within the limits.)
    assert counts["requeued"] == limit and counts["failed"] == 1
    assert await services.queue.position_in_line() == before + limit


async def test_no_requeue_while_leftover_rows_put_admissions_over_a_limit(
    services: Services,
) -> None:
    """A refused job whose every clean-up failed keeps its record and its rows; it cannot
    be told from an admitted one, so nothing of that owner is enqueued again while the
    live rows are over a limit (its rows expire; then it fails as not admitted)."""
    limit = services.settings.user_max_concurrent_jobs
    for n in range(limit + 1):  # one more than admission would ever let live
        job_id = f"{n:x}" * 32
        await services.admission.hold("kim", job_id[:32])
        await services.store.create_job(job_id[:32], "kim", _request(), Target("user", "kim"),
                                        time.time())  # fmt: skip
    before = await services.queue.position_in_line()
    counts = await sweep(services, FakeDurableClient(set()),
                         now=datetime.now(UTC) + timedelta(seconds=150))  # fmt: skip
    assert counts["requeued"] == 0 and counts["failed"] == 0
    assert await services.queue.position_in_line() == before
