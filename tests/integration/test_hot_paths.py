"""The job's hot paths against a real Azurite: fewer round trips, same guarantees.

Storage clients ignore proxy/netrc environment settings; `transition_from` moves a record
in one conditional merge; `Services.accept_job` runs idempotency, admission and the job's
rows in two phases (the record side by side with the counts); a freshly started intake
starts first and asks the status only when the start is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables.aio import TableServiceClient

from api.intake import ORCHESTRATOR, start_orchestration
from relay.errors import ConcurrencyConflict, InvalidTransition, JobCanceled
from relay.intake import JobQueue
from relay.jobs import JobRequest, Target
from relay.limits import LimitExceeded
from relay.services import Services
from relay.settings import StorageConfig
from relay.store import JobStore
from tests.integration._services import services_on_azurite

pytestmark = pytest.mark.azurite


def _request(prompt: str = "p") -> JobRequest:
    return JobRequest(prompt=prompt, messages=None, max_tokens=50)


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every env-honouring HTTP client would send through a proxy that is not there."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    yield


async def test_storage_clients_ignore_proxy_environment(
    storage_connection_string: str, dead_proxy: None
) -> None:
    # Control: azure-core's default transport honours the environment and cannot connect.
    default = TableServiceClient.from_connection_string(storage_connection_string)
    async with default:
        with pytest.raises(ServiceRequestError):
            async for _ in default.list_tables():
                break
    config = StorageConfig(connection_string=storage_connection_string)
    prefix = "hp" + uuid.uuid4().hex[:10]
    async with JobStore.from_config(config, prefix) as store:
        await store.ensure_tables()
        job_id = uuid.uuid4().hex
        await store.create_job(job_id, "ann", _request(), Target("user", "ann"), 1.0)
        assert (await store.get_job(job_id)).status == "queued"
    async with JobQueue.from_config(config, prefix) as queue:
        await queue.ensure()
        await queue.enqueue(job_id, "ann")
        assert await queue.position_in_line() == 1


@pytest.fixture
async def store(storage_connection_string: str) -> AsyncIterator[JobStore]:
    config = StorageConfig(connection_string=storage_connection_string)
    s = JobStore.from_config(config, "hp" + uuid.uuid4().hex[:10])
    await s.ensure_tables()
    yield s
    await s.aclose()


async def test_transition_from_is_one_write_and_returns_what_a_read_would(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = uuid.uuid4().hex
    await store.create_job(job_id, "ann", _request(), Target("user", "ann"), 1.0)
    record = await store.get_job(job_id, with_request=False)
    reads = 0
    real_read = store._read

    async def counting_read(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(store, "_read", counting_read)
    moved = await store.transition_from(record, "starting")
    assert reads == 0
    monkeypatch.undo()
    fresh = await store.get_job(job_id, with_request=False)
    assert moved.etag == fresh.etag != record.etag
    assert moved.to_public_dict() == fresh.to_public_dict()
    assert moved.status == "starting" and moved.updated_at == fresh.updated_at


async def test_transition_from_a_stale_record_is_refused(store: JobStore) -> None:
    job_id = uuid.uuid4().hex
    await store.create_job(job_id, "ann", _request(), Target("user", "ann"), 1.0)
    stale = await store.get_job(job_id, with_request=False)
    await store.transition(job_id, "starting")
    with pytest.raises(ConcurrencyConflict):
        await store.transition_from(stale, "starting")
    done = await store.transition_from(await store.get_job(job_id), "failed", error=None)
    assert done.status == "failed" and done.completed_at is not None
    with pytest.raises(InvalidTransition):
        await store.transition_from(done, "running")
    assert (await store.get_job(job_id)).status == "failed"


@pytest.fixture
async def services(storage_connection_string: str) -> AsyncIterator[Services]:
    async with services_on_azurite(
        storage_connection_string, "hp", USER_MAX_CONCURRENT_JOBS="2"
    ) as s:
        yield s


async def _active_rows(s: Services, owner: str) -> list[str]:
    table = s.admission._table
    rows = table.query_entities("PartitionKey eq 'active' and owner eq @owner",
                                parameters={"owner": owner})  # fmt: skip
    return [str(row["RowKey"]) async for row in rows]


async def test_accept_job_creates_and_a_repeated_key_returns_the_earlier_job(
    services: Services,
) -> None:
    first = await services.accept_job(uuid.uuid4().hex, "ann", _request(), Target("user", "ann"),
                                      "k1")  # fmt: skip
    assert first.created and first.status == "queued"
    assert (await services.store.get_job(first.job_id)).status == "queued"
    again_id = uuid.uuid4().hex
    again = await services.accept_job(again_id, "ann", _request(), Target("user", "ann"), "k1")
    assert (again.job_id, again.created, again.status) == (first.job_id, False, "queued")
    # The repeat's own rows were taken back: it holds no admission row and is not listed.
    assert await _active_rows(services, "ann") == [first.job_id]
    listed, _ = await services.store.list_jobs("ann", 10, None)
    assert [r.job_id for r in listed] == [first.job_id]


async def test_a_refused_job_leaves_no_rows_and_frees_its_key(services: Services) -> None:
    target = Target("user", "bob")
    admitted = [
        (await services.accept_job(uuid.uuid4().hex, "bob", _request(), target, None)).job_id
        for _ in range(2)
    ]
    big = _request("x" * 200_000)  # overflow rows too
    refused_id = uuid.uuid4().hex
    with pytest.raises(LimitExceeded):
        await services.accept_job(refused_id, "bob", big, target, "k2")
    assert sorted(await _active_rows(services, "bob")) == sorted(admitted)
    listed, _ = await services.store.list_jobs("bob", 10, None)
    assert sorted(r.job_id for r in listed) == sorted(admitted)
    leftovers = services.store._jobs.query_entities(
        "PartitionKey eq @pk", parameters={"pk": refused_id}
    )
    assert [row async for row in leftovers] == []
    await services.admission.release("bob", admitted[0])
    retry = await services.accept_job(uuid.uuid4().hex, "bob", big, target, "k2")
    assert retry.created  # the key was unbound by the refusal
    stored = await services.store.get_job(retry.job_id)
    assert stored.request is not None and stored.request.prompt == big.prompt


async def test_the_record_is_written_while_admission_counts(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts wait until the record's write has begun: sequential phases would never
    let them (the wait would time out)."""
    record_started = asyncio.Event()
    real_commit, real_admit = services.store.commit_job, services.admission.admit

    async def commit(new: Any) -> Any:
        record_started.set()
        return await real_commit(new)

    async def admit(held: Any) -> None:
        await asyncio.wait_for(record_started.wait(), 10)
        await real_admit(held)

    monkeypatch.setattr(services.store, "commit_job", commit)
    monkeypatch.setattr(services.admission, "admit", admit)
    accepted = await services.accept_job(uuid.uuid4().hex, "eve", _request(), Target("user", "eve"),
                                         None)  # fmt: skip
    assert accepted.created
    assert (await services.store.get_job(accepted.job_id)).status == "queued"


async def test_a_failed_count_takes_back_the_record_and_every_row(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_admit(held: Any) -> None:
        raise ServiceRequestError("storage went away")

    monkeypatch.setattr(services.admission, "admit", broken_admit)
    job_id = uuid.uuid4().hex
    with pytest.raises(ServiceRequestError):
        await services.accept_job(job_id, "fay", _request(), Target("user", "fay"), "k9")
    assert await _active_rows(services, "fay") == []  # the hold was dropped too
    leftovers = services.store._jobs.query_entities("PartitionKey eq @pk",
                                                    parameters={"pk": job_id})  # fmt: skip
    assert [row async for row in leftovers] == []
    listed, _ = await services.store.list_jobs("fay", 10, None)
    assert listed == []
    monkeypatch.undo()
    again = await services.accept_job(uuid.uuid4().hex, "fay", _request(), Target("user", "fay"),
                                      "k9")  # fmt: skip
    assert again.created  # the key was unbound


async def test_racing_submissions_never_pass_the_limit(services: Services) -> None:
    target = Target("user", "cy")
    outcomes = await asyncio.gather(
        *(services.accept_job(uuid.uuid4().hex, "cy", _request(), target, None)
          for _ in range(6)),
        return_exceptions=True,
    )  # fmt: skip
    admitted = [o.job_id for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, LimitExceeded) for o in refused)
    assert len(admitted) <= 2  # the limit (racers may even all be refused)
    assert sorted(await _active_rows(services, "cy")) == sorted(admitted)
    # The refused left nothing behind: alone, the next ones are admitted up to the limit.
    for _ in range(2 - len(admitted)):
        await services.accept_job(uuid.uuid4().hex, "cy", _request(), target, None)
    with pytest.raises(LimitExceeded):
        await services.accept_job(uuid.uuid4().hex, "cy", _request(), target, None)


class RefusingClient:
    """The durable client boundary as the SDK surfaces it: start_new raises a bare
    Exception for an instance that is Pending/Running (the extension's 409)."""

    def __init__(self, live: set[str], broken: bool = False) -> None:
        self.live, self.broken = live, broken
        self.calls: list[str] = []

    async def get_status(self, instance_id: str) -> Any:
        self.calls.append("get_status")
        value = "Running" if instance_id in self.live else "Completed"
        return SimpleNamespace(runtime_status=SimpleNamespace(value=value))

    async def start_new(self, name: str, instance_id: str, spec: Any) -> str:
        self.calls.append("start_new")
        assert name == ORCHESTRATOR
        if self.broken:
            raise Exception({"Message": "the task hub is unreachable"})
        if instance_id in self.live:
            raise Exception({"Message": "An Orchestration instance ... already exists."})
        self.live.add(instance_id)
        return instance_id


async def test_a_fresh_start_skips_the_status_read() -> None:
    client = RefusingClient(set())
    assert await start_orchestration(client, "j1", {}, fresh=True)
    assert client.calls == ["start_new"]


async def test_a_fresh_start_refused_as_live_is_already_live() -> None:
    client = RefusingClient({"j1"})
    assert not await start_orchestration(client, "j1", {}, fresh=True)
    assert client.calls == ["start_new", "get_status"]


async def test_a_fresh_start_failing_otherwise_raises() -> None:
    client = RefusingClient(set(), broken=True)
    with pytest.raises(Exception, match="unreachable"):
        await start_orchestration(client, "j1", {}, fresh=True)


async def test_a_retried_start_reads_the_status_first() -> None:
    # A finished instance would be restarted by start_new: only a non-fresh caller's read
    # of the status protects it, so the read must come first.
    client = RefusingClient({"j1"})
    assert not await start_orchestration(client, "j1", {})
    assert client.calls == ["get_status"]
    assert await start_orchestration(client, "j2", {})
    assert client.calls == ["get_status", "get_status", "start_new"]


async def test_per_user_concurrency_counts_only_the_owners_active_rows(
    services: Services,
) -> None:
    # The per-user count comes from the global active rows (their `owner`): another
    # user's jobs fill the global set but not this user's share.
    for owner in ("cara", "dan"):
        for _ in range(2):
            await services.accept_job(uuid.uuid4().hex, owner, _request(), Target("user", owner),
                                      None)  # fmt: skip
    with pytest.raises(LimitExceeded):
        await services.accept_job(uuid.uuid4().hex, "cara", _request(), Target("user", "cara"),
                                  None)  # fmt: skip
    assert len(await _active_rows(services, "cara")) == 2
    assert len(await _active_rows(services, "dan")) == 2


def _count_reads(store: JobStore) -> list[str]:
    """Record the job ids the store reads the record of (get_entity on the jobs table)."""
    reads: list[str] = []
    table = store._jobs
    real = table.get_entity

    async def counting(pk: str, rk: str, **kw: Any) -> Any:
        reads.append(pk)
        return await real(pk, rk, **kw)

    table.get_entity = counting  # type: ignore[method-assign]
    return reads


async def test_a_claim_after_this_process_moved_the_job_to_starting_reads_nothing(
    store: JobStore,
) -> None:
    job_id = uuid.uuid4().hex
    await store.create_job(job_id, "ann", _request("hello"), Target("user", "ann"), 1.0)
    await store.transition_from(await store.get_job(job_id), "starting")
    reads = _count_reads(store)
    run = await store.claim_attempt(job_id)
    assert reads == [] and run.attempt == 1 and run.record.request is not None
    assert run.record.request.prompt == "hello"
    stored = await store.get_job(job_id)
    assert (stored.status, stored.attempt, stored.etag) == ("running", 1, run.etag)
    # Used once: a second claim reads, and supersedes the first.
    reads.clear()
    again = await store.claim_attempt(job_id)
    assert reads == [job_id] and again.attempt == 2


async def test_a_claim_refuses_a_kept_record_that_changed_since(store: JobStore) -> None:
    canceled, changed = uuid.uuid4().hex, uuid.uuid4().hex
    for job_id in (canceled, changed):
        await store.create_job(job_id, "ann", _request(), Target("user", "ann"), 1.0)
        await store.transition_from(await store.get_job(job_id), "starting")
    await store.request_cancel(canceled)  # the kept record's ETag is stale now
    with pytest.raises(JobCanceled):
        await store.claim_attempt(canceled)
    assert (await store.get_job(canceled)).status == "canceled"
    # Another write meanwhile (a harmless one): the claim reads again and still wins.
    record = await store.get_job(changed, with_request=False)
    await store._merge(changed, {"delivery": "ok"}, record.etag)
    reads = _count_reads(store)
    run = await store.claim_attempt(changed)
    assert reads == [changed] and run.attempt == 1
    assert (await store.get_job(changed)).etag == run.etag
