"""Admission control and idempotency keys, held in Table storage.

Limits must hold when Azure runs several instances of the app, so they live in storage,
not in memory. Admission is *reserve, then count*: a job first writes its own rows (one in
the global active set, carrying its owner, and one in the owner's rate window), then counts
the rows. If a count is over its limit the job removes its rows and is refused. Two racing
jobs may both be refused, but never both admitted past a limit. `reserve` is `hold` (the
writes) then `admit` (the counts); a caller may run its own independent writes side by side
with `hold`, and with `admit` only writes that are not counted (the job's record).

The owner's concurrency is counted from the same query as the global one (the active rows
whose `owner` is the caller): the global count reads every live active row anyway, so a
separate per-owner partition would cost one more write and one more query per job for the
same guarantee (each racer's row is written before its count, so of two racers at least one
sees the other, per limit). Rows an older version wrote under `active|{owner}` are no longer
counted; `release` still deletes them and they expire like any other.

Active rows carry an expiry (the job timeout plus slack): a job whose release was lost
(a crashed instance) stops counting by itself, and the sweeper deletes its rows.

Table `{prefix}limits`:
    PK "active"          RK job id        owner; global and per-user concurrency
    PK "rate|{owner}"    RK ms|job id     per-user submissions in the last minute
Table `{prefix}idem`:
    PK owner             RK sha256(key)   -> job id, fingerprint of the request

A key is bound to the request it first came with (IETF httpapi idempotency-key draft,
Stripe): its row keeps a fingerprint, a salted hash of the canonical JSON of the parsed
request and target (never the prompt in clear). The same key with the same request returns
the first job; with a different one it is refused (`IdempotencyKeyReused`). Rows written
before fingerprints existed have none and match any request (the old behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient, TableServiceClient

from .errors import RelayError
from .store import _direct
from .store._errors import mapped_errors

__all__ = [
    "Admission",
    "Hold",
    "IdempotencyKeyReused",
    "IdempotencyKeys",
    "LimitExceeded",
    "LimitsConfig",
    "request_fingerprint",
]

_RATE_WINDOW_S = 60.0
T = TypeVar("T")


class LimitExceeded(RelayError):
    """Refused by a limit; the HTTP layer answers 429 with Retry-After."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyKeyReused(RelayError):
    """The Idempotency-Key is bound to an earlier request with a different body (422)."""

    code = "idempotency_key_reused"


def request_fingerprint(owner: str, key: str, request: dict[str, Any]) -> str:
    """sha256 over owner, key and the canonical JSON of a parsed request (and target).

    Canonical: sorted keys, no spaces, UTF-8, so a reordered or reformatted body with the
    same content matches. Salting with owner and key means a leaked table row does not let
    anyone test guesses of a prompt against other rows.
    """
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256()
    for part in (owner, key, canonical):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class LimitsConfig:
    user_max_concurrent: int
    user_per_minute: int
    global_max_concurrent: int
    active_ttl_s: float  # job timeout plus slack: after this an unreleased row stops counting


async def _all(*calls: Awaitable[T]) -> list[T]:
    """Await independent round trips side by side; the first failure is raised once all
    have ended (none is left running unobserved)."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]


@dataclass(frozen=True)
class Hold:
    """The rows one job wrote in `Admission.hold` (not yet admitted)."""

    owner: str
    now: float
    rows: tuple[tuple[str, str], ...]  # (PartitionKey, RowKey)


def _ms(t: float) -> str:
    return f"{int(t * 1000):015d}"


class Admission:
    def __init__(self, service: TableServiceClient, prefix: str, config: LimitsConfig) -> None:
        self._table: TableClient = service.get_table_client(f"{prefix}limits")
        self._config = config

    async def ensure(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_table()

    async def _count(self, pk: str, *, rk_from: str | None = None, live_after: float) -> int:
        flt = "PartitionKey eq @pk and expiresAt gt @now"
        params: dict[str, object] = {"pk": pk, "now": _ms(live_after)}
        if rk_from is not None:
            flt += " and RowKey ge @rk"
            params["rk"] = rk_from
        n = 0
        # The SDK's query without its paging and entity-conversion layers (relay.store._direct):
        # a count needs no typed entities; pages are still followed to the end.
        async for _ in _direct.query_rows(self._table, flt, parameters=params, select=["RowKey"]):
            n += 1
        return n

    async def _count_active(self, owner: str, live_after: float) -> tuple[int, int]:
        """Live active rows: (all of them, the owner's)."""
        flt = "PartitionKey eq 'active' and expiresAt gt @now"
        total = mine = 0
        async for row in _direct.query_rows(
            self._table, flt, parameters={"now": _ms(live_after)}, select=["RowKey", "owner"]
        ):
            total += 1
            mine += row.get("owner") == owner
        return total, mine

    async def reserve(self, owner: str, job_id: str, now: float | None = None) -> None:
        """Admit a job or raise LimitExceeded (leaving no rows behind)."""
        await self.admit(await self.hold(owner, job_id, now))

    async def hold(self, owner: str, job_id: str, now: float | None = None) -> Hold:
        """Reserve, first half: write the job's two rows (side by side).

        Nothing is admitted yet: `admit` must follow (only once this has returned: every
        reservation write completes before any count), or `drop` to take the rows back.
        Independent writes of the caller may run side by side with this one.
        """
        now = time.time() if now is None else now
        expires = _ms(now + self._config.active_ttl_s)
        rows = [
            {"PartitionKey": "active", "RowKey": job_id, "owner": owner},
            {"PartitionKey": f"rate|{owner}", "RowKey": f"{_ms(now)}|{job_id}"},
        ]
        rate_expires = _ms(now + _RATE_WINDOW_S)
        for row in rows:
            row["expiresAt"] = rate_expires if row["PartitionKey"].startswith("rate|") else expires
            row["createdAt"] = _ms(now)
        held = Hold(owner, now, tuple((str(r["PartitionKey"]), str(r["RowKey"])) for r in rows))
        try:
            await _all(*(_direct.upsert_entity(self._table, row) for row in rows))
        except BaseException:
            await self.drop(held)  # a partial hold must not count against anyone
            raise
        return held

    async def admit(self, held: Hold) -> None:
        """Reserve, second half: count (side by side); over a limit, drop the rows and
        raise LimitExceeded."""
        now, owner = held.now, held.owner
        # Side by side; both have ended before a failure is raised (as `_all`).
        counted, rate = await asyncio.gather(
            self._count_active(owner, live_after=now),
            self._count(f"rate|{owner}", rk_from=_ms(now - _RATE_WINDOW_S), live_after=now),
            return_exceptions=True,
        )
        if isinstance(counted, BaseException):
            raise counted
        if isinstance(rate, BaseException):
            raise rate
        active, mine = counted
        refusal: LimitExceeded | None = None
        if active > self._config.global_max_concurrent:
            refusal = LimitExceeded("the service is at capacity; try again shortly", 5.0)
        elif mine > self._config.user_max_concurrent:
            refusal = LimitExceeded(
                f"at most {self._config.user_max_concurrent} jobs may run at once", 5.0
            )
        elif rate > self._config.user_per_minute:
            refusal = LimitExceeded(
                f"at most {self._config.user_per_minute} jobs per minute", _RATE_WINDOW_S
            )
        if refusal is not None:
            await self.drop(held)
            raise refusal

    async def drop(self, held: Hold) -> None:
        """Take back a hold's rows (idempotent): the job was not admitted after all."""
        await _all(*(self._delete(pk, rk) for pk, rk in held.rows))

    async def release(self, owner: str, job_id: str) -> None:
        """The job is finished: it no longer counts against concurrency (idempotent).

        Also deletes the `active|{owner}` row an older version wrote (a no-op otherwise)."""
        await asyncio.gather(
            self._delete("active", job_id), self._delete(f"active|{owner}", job_id)
        )

    async def holds(self, job_id: str, now: float | None = None) -> bool:
        """Whether the job has a live active row (not released, not past its expiry)."""
        now = time.time() if now is None else now
        with mapped_errors():
            rows = _direct.query_rows(
                self._table,
                "PartitionKey eq 'active' and RowKey eq @rk and expiresAt gt @now",
                parameters={"rk": job_id, "now": _ms(now)},
                select=["RowKey"],
            )
            async for _ in rows:
                return True
        return False

    async def within_limits(self, owner: str, now: float | None = None) -> bool:
        """Whether the live active rows are within the global and the owner's concurrency
        limits. Admitted jobs never exceed them (reserve-then-count), so more rows than a
        limit means some belong to jobs refused or failed whose rows are not yet dropped."""
        now = time.time() if now is None else now
        with mapped_errors():
            total, mine = await self._count_active(owner, live_after=now)
        return (
            total <= self._config.global_max_concurrent and mine <= self._config.user_max_concurrent
        )

    async def place_in_line(self, job_id: str, created_ms: str) -> int:
        """1-based position among admitted jobs created earlier (approximate)."""
        ahead = 0
        flt = "PartitionKey eq 'active' and createdAt lt @created"
        async for _ in self._table.query_entities(
            flt, parameters={"created": created_ms}, select=["RowKey"]
        ):
            ahead += 1
        return ahead + 1

    async def sweep(self, now: float | None = None) -> int:
        """Delete expired rows; returns how many."""
        now = time.time() if now is None else now
        removed = 0
        async for row in self._table.query_entities(
            "expiresAt le @now", parameters={"now": _ms(now)}, select=["PartitionKey", "RowKey"]
        ):
            await self._delete(row["PartitionKey"], row["RowKey"])
            removed += 1
        return removed

    async def _delete(self, pk: str, rk: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # absent: already released
            await _direct.delete_entity(self._table, pk, rk)


class IdempotencyKeys:
    """Idempotency-Key header -> job id, per user, first writer wins."""

    def __init__(self, service: TableServiceClient, prefix: str) -> None:
        self._table: TableClient = service.get_table_client(f"{prefix}idem")

    async def ensure(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_table()

    @staticmethod
    def _rk(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    async def claim(self, owner: str, key: str, job_id: str, fingerprint: str = "") -> str:
        """Bind key to job_id; if the key is already bound, return the earlier job id.

        Raises `IdempotencyKeyReused` when the earlier binding's fingerprint differs from
        `fingerprint` (an empty fingerprint, here or stored, matches anything).
        """
        entity = {
            "PartitionKey": owner,
            "RowKey": self._rk(key),
            "jobId": job_id,
            "fingerprint": fingerprint,
            "createdAt": _ms(time.time()),
        }
        try:
            await _direct.create_entity(self._table, entity)
            return job_id
        except ResourceExistsError:
            existing = await self._table.get_entity(owner, self._rk(key))
            stored = str(existing.get("fingerprint") or "")
            if stored and fingerprint and stored != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with a different request"
                ) from None
            return str(existing["jobId"])

    async def forget(self, owner: str, key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._table.delete_entity(owner, self._rk(key))

    async def purge_older_than(self, cutoff: float) -> int:
        removed = 0
        async for row in self._table.query_entities(
            "createdAt lt @cut", parameters={"cut": _ms(cutoff)}, select=["PartitionKey", "RowKey"]
        ):
            try:
                await self._table.delete_entity(row["PartitionKey"], row["RowKey"])
                removed += 1
            except ResourceNotFoundError:
                pass
        return removed
