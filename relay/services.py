"""The composition root of the core: one set of clients per process, built from settings.

Triggers call `await get_services()`; everything is built once (settings parsed once,
one pooled HTTP client per service, one table client) and tables and the queue are
created on first use. Nothing here imports azure.functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .groups import Groups, signalr_group_name
from .intake import JobQueue
from .jobs import JobRequest, Limits, Target
from .limits import (
    Admission,
    Hold,
    IdempotencyKeys,
    LimitExceeded,
    LimitsConfig,
    request_fingerprint,
)
from .llm import LLMClient
from .settings import Settings, load_settings
from .signalr import SignalRClient
from .storage import StorageClients
from .store import JobRecord, JobStore
from .streaming import StreamConfig

__all__ = ["Accepted", "Services", "TargetSender", "get_services", "reset_services"]

# Slack over the job timeout before an unreleased admission row stops counting.
_ADMISSION_SLACK_S = 120


class TargetSender:
    """Sends to a job's target, mapping app-level names to SignalR names.

    Group names are validated user input; the SignalR group name is built here, by the
    server, so no input can address another namespace.
    """

    def __init__(self, signalr: SignalRClient) -> None:
        self._signalr = signalr

    async def send(self, target: Target, name: str, arguments: Sequence[Any]) -> None:
        if target.kind == "group":
            await self._signalr.send_to_group(signalr_group_name(target.id), name, arguments)
        elif target.kind == "connection":
            await self._signalr.send_to_connection(target.id, name, arguments)
        else:
            await self._signalr.send_to_user(target.id, name, arguments)


@dataclass(frozen=True)
class Accepted:
    """What `Services.accept_job` did: the job to answer with, and whether it is new."""

    job_id: str
    status: str
    created: bool


async def _same(job_id: str) -> str:
    return job_id


async def _quietly(call: Awaitable[Any]) -> None:
    """Clean-up of rows that expire or are skipped anyway: a failure must not hide the
    answer (or the original error) the caller is about to get."""
    with contextlib.suppress(Exception):
        await call


@dataclass
class Services:
    settings: Settings
    storage: StorageClients
    store: JobStore
    queue: JobQueue
    admission: Admission
    idempotency: IdempotencyKeys
    groups: Groups
    signalr: SignalRClient
    llm: LLMClient
    sender: TargetSender
    job_limits: Limits
    stream_config: StreamConfig
    _owners: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        storage = StorageClients(settings.storage)
        tables = storage.tables
        signalr = SignalRClient(settings.signalr_connection_string, settings.signalr_hub)
        return cls(
            settings=settings,
            storage=storage,
            store=JobStore(tables, settings.table_prefix),
            queue=JobQueue(storage.queue(settings.jobs_queue)),
            admission=Admission(
                tables,
                settings.table_prefix,
                LimitsConfig(
                    user_max_concurrent=settings.user_max_concurrent_jobs,
                    user_per_minute=settings.user_jobs_per_minute,
                    global_max_concurrent=settings.global_max_concurrent_jobs,
                    active_ttl_s=settings.job_timeout_seconds + _ADMISSION_SLACK_S,
                ),
            ),
            idempotency=IdempotencyKeys(tables, settings.table_prefix),
            # A deleted group's name stays unusable while one of its jobs may still stream.
            groups=Groups(
                tables,
                settings.table_prefix,
                signalr,
                quarantine_s=settings.job_timeout_seconds + _ADMISSION_SLACK_S,
            ),
            signalr=signalr,
            llm=LLMClient.from_settings(settings),
            sender=TargetSender(signalr),
            job_limits=Limits.from_settings(settings),
            stream_config=StreamConfig(
                window_s=settings.batch_window_s,
                max_bytes=settings.batch_max_bytes,
                profile=settings.model_profile,
                default_max_tokens=min(1024, settings.max_tokens_limit),
            ),
        )

    async def ensure(self) -> None:
        await self.store.ensure_tables()
        await self.queue.ensure()
        await self.admission.ensure()
        await self.idempotency.ensure()
        await self.groups.ensure()

    async def aclose(self) -> None:
        """Close every client, each even if an earlier close failed (the first error is
        raised at the end). The jobs queue's client is the caller's (`StorageClients.queue`
        hands it out), so it is closed here too."""
        closes = (
            self.signalr.aclose,
            self.llm.aclose,
            self.queue.aclose,
            self.store.aclose,
            self.storage.aclose,
        )
        failure: BaseException | None = None
        for close in closes:
            try:
                await close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    # --- who may do what -----------------------------------------------------------

    async def can_read(self, user_id: str, record: JobRecord) -> bool:
        """Owner always; a group job also every member of the group at the time of reading
        (of the group the job was sent to, not of a later group of the same name)."""
        if record.owner == user_id:
            return True
        if record.target.kind == "group":
            return await self.groups.may_read_job(record.target.id, user_id, record.created_at)
        return False

    async def can_cancel(self, user_id: str, record: JobRecord) -> bool:
        """The job's owner, and for a group job the group's owner."""
        if record.owner == user_id:
            return True
        if record.target.kind == "group":
            return await self.groups.may_cancel_job(record.target.id, user_id, record.created_at)
        return False

    async def is_group_member(self, group: str, user_id: str) -> bool:
        return await self.groups.is_member(group, user_id)

    async def connection_is_bound(self, connection_id: str, user_id: str) -> bool:
        return await self.groups.connection_owner(connection_id) == user_id

    async def sync_memberships(self, user_id: str) -> None:
        await self.groups.sync_user(user_id)

    async def accept_job(
        self, job_id: str, owner: str, request: JobRequest, target: Target, key: str | None
    ) -> Accepted:
        """Idempotency, admission and the job record of `POST /api/jobs`, in 2 round trips.

        1. side by side: the idempotency claim, admission's reservation writes and the
           job's index (and overflow) rows;
        2. side by side: admission's counts (every reservation write has completed:
           reserve-then-count) and the record, which is what makes the job exist. The job
           is not enqueued yet, so nothing acts on the record before the counts decide; a
           refused job's record is taken back (`discard_job`). If that clean-up fails, the
           sweeper (api/sweeper.py) never enqueues the record past a limit: it fails a
           queued job without a live admission row, and enqueues none while the live
           rows are over a limit (leftover rows expire), so a refusal never becomes a run
           past a limit.
        A key already bound to an earlier job with the same request (fingerprint of the
        parsed request and target) returns that job (`created` False) and takes
        this job's rows back; its rows were briefly held, so a racing submission of the
        same owner at its limit may be refused ("two racers may both be refused"), but
        nothing is ever admitted past a limit. A key bound to a different request raises
        `IdempotencyKeyReused` and takes this job's rows back (nothing is created). A
        refusal (`LimitExceeded`) or a failure unbinds the key and takes back every row
        written.
        """
        store, admission = self.store, self.admission
        new = store.new_job(job_id, owner, request, target, time.time())
        if key is not None:
            body = {"request": request.to_dict(), "target": [target.kind, target.id]}
            fingerprint = request_fingerprint(owner, key, body)
            claim = self.idempotency.claim(owner, key, job_id, fingerprint)
        else:
            claim = _same(job_id)
        outcomes = await asyncio.gather(
            claim, admission.hold(owner, job_id), store.stage_job(new), return_exceptions=True
        )
        bound, held, staged = outcomes
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None or bound != job_id:
            undo: list[Awaitable[Any]] = [_quietly(store.unstage_job(new))]
            if isinstance(held, Hold):
                undo.append(_quietly(admission.drop(held)))
            if key is not None and bound == job_id:
                undo.append(_quietly(self.idempotency.forget(owner, key)))
            if failure is not None:
                await asyncio.gather(*undo)
                raise failure
            earlier = str(bound)
            record, *_ = await asyncio.gather(store.get_job(earlier, with_request=False), *undo)
            return Accepted(earlier, record.status, created=False)
        assert isinstance(held, Hold) and staged is None

        def take_back(record_written: bool, rows_held: bool) -> Awaitable[Any]:
            undo = [_quietly(store.unstage_job(new))]
            if record_written:
                undo.append(_quietly(store.discard_job(new)))
            if rows_held:
                undo.append(_quietly(admission.drop(held)))
            if key is not None:
                undo.append(_quietly(self.idempotency.forget(owner, key)))
            return asyncio.gather(*undo)

        try:
            admitted, committed = await asyncio.gather(
                admission.admit(held), store.commit_job(new), return_exceptions=True
            )
        except BaseException:  # canceled meanwhile: take everything back, whatever landed
            await asyncio.shield(take_back(True, True))
            raise
        failure = next((o for o in (admitted, committed) if isinstance(o, BaseException)), None)
        if failure is not None:
            # A refusal has dropped its own rows; anything else may have left them.
            await take_back(
                not isinstance(committed, BaseException), not isinstance(admitted, LimitExceeded)
            )
            raise failure
        assert isinstance(committed, JobRecord)
        return Accepted(job_id, committed.status, created=True)

    async def release(self, job_id: str) -> None:
        """The job ended: free its admission rows."""
        record = await self.store.get_job(job_id)
        await self.admission.release(record.owner, job_id)


_services: Services | None = None
_loop: asyncio.AbstractEventLoop | None = None
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def get_services() -> Services:
    """The process's services, built and ensured once (per event loop)."""
    global _services, _loop
    loop = asyncio.get_running_loop()
    if _services is not None and _loop is loop:
        return _services
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        if _services is None or _loop is not loop:
            services = Services.build(load_settings())
            await services.ensure()
            _services, _loop = services, loop
    return _services


async def reset_services() -> None:
    """Close and forget the process's services (tests, settings changes)."""
    global _services, _loop
    if _services is not None:
        await _services.aclose()
    _services, _loop = None, None
