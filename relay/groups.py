"""Groups: the app's record of membership, mirrored to SignalR; the one entry point.

Membership lives in Table storage and is mirrored to SignalR *user*-group membership, so
it survives reconnects; `sync_user` (called by negotiate) re-applies it. Writes are
ordered so SignalR membership is always a subset of the record: joining writes the rows
before the SignalR add, leaving does the SignalR remove before deleting the rows. A
failure half-way therefore leaves the record ahead, and the next negotiate (or a retry)
converges. SignalR group names are built here from validated names (`grp.{name}`; names
hold no dot), so no input addresses another namespace.

A group has incarnations: each creation draws a fresh `gen`, and member rows, invite
tokens and readable jobs belong to one incarnation. Deleting a group leaves a tombstone
that keeps the name unusable for `quarantine_s` (the longest a job can still be
streaming to it), so a job of the deleted group can never stream into a new group of
the same name, and a new group's members never read the old group's jobs.

Invites (relay/invites.py) and connection claims (relay/claims.py) keep their rows in
the same table; `Groups` holds both and answers for them, so callers need one object.

Table `{prefix}groups` (invite and claim rows: see their modules):
    PK g|{group}      RK meta           owner, gen, createdAt (or deleted, deletedAt)
    PK g|{group}      RK m|{user}       membership (gen, joinedAt)
    PK u|{user}       RK g|{group}      reverse index (the user's groups)
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from ._rows import delete_row, get_row, iso_time
from .claims import ConnectionClaims
from .errors import Forbidden, GroupRecentlyDeleted
from .invites import Invites
from .signalr import SignalRClient

__all__ = ["Groups", "signalr_group_name"]

DEFAULT_QUARANTINE_S = 720.0


def signalr_group_name(group: str) -> str:
    return f"grp.{group}"


class Groups:
    def __init__(
        self,
        service: TableServiceClient,
        prefix: str,
        signalr: SignalRClient,
        *,
        clock: Callable[[], float] = time.time,
        quarantine_s: float = DEFAULT_QUARANTINE_S,
    ) -> None:
        self._t: TableClient = service.get_table_client(f"{prefix}groups")
        self._signalr = signalr
        self._clock = clock
        self._quarantine_s = quarantine_s
        self._invites = Invites(self._t, clock)
        self._claims = ConnectionClaims(self._t, signalr, clock)

    async def ensure(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._t.create_table()

    # --- reading ---------------------------------------------------------------------

    async def _live(self, group: str) -> dict[str, Any] | None:
        """The group's current incarnation (None when absent or deleted)."""
        meta = await get_row(self._t, f"g|{group}", "meta")
        return meta if meta is not None and not meta.get("deleted") else None

    async def owner_of(self, group: str) -> str | None:
        meta = await self._live(group)
        return str(meta["owner"]) if meta else None

    async def _member_of(self, meta: dict[str, Any] | None, group: str, user: str) -> bool:
        if meta is None:
            return False
        row = await get_row(self._t, f"g|{group}", f"m|{user}")
        return row is not None and row.get("gen") == meta["gen"]

    async def is_member(self, group: str, user: str) -> bool:
        return await self._member_of(await self._live(group), group, user)

    async def may_read_job(self, group: str, user: str, job_created_at: float) -> bool:
        """A member of the incarnation the job was sent to (not of a later namesake)."""
        meta = await self._live(group)
        if meta is None or job_created_at < float(meta["createdAt"]):
            return False
        return await self._member_of(meta, group, user)

    async def may_cancel_job(self, group: str, user: str, job_created_at: float) -> bool:
        meta = await self._live(group)
        return bool(meta and meta["owner"] == user and job_created_at >= float(meta["createdAt"]))

    async def members(self, group: str) -> list[dict[str, Any]]:
        meta = await self._live(group)
        if meta is None:
            return []
        return [
            {"userId": row["RowKey"][2:], "joinedAt": iso_time(row.get("joinedAt"))}
            async for row in self._t.query_entities(
                "PartitionKey eq @pk and RowKey ge 'm|' and RowKey lt 'm}'",
                parameters={"pk": f"g|{group}"},
            )
            if row.get("gen") == meta["gen"]
        ]

    async def groups_of(self, user: str) -> list[str]:
        return [
            row["RowKey"][2:]
            async for row in self._t.query_entities(
                "PartitionKey eq @pk", parameters={"pk": f"u|{user}"}, select=["RowKey"]
            )
        ]

    # --- membership ------------------------------------------------------------------

    async def _add_member(self, group: str, gen: str, user: str) -> None:
        now = self._clock()
        # Reverse index first: a stray index row is harmless (sync_user drops it), a
        # membership missing from the index would never be re-applied.
        await self._t.upsert_entity({"PartitionKey": f"u|{user}", "RowKey": f"g|{group}"})
        await self._t.upsert_entity({"PartitionKey": f"g|{group}", "RowKey": f"m|{user}",
                                     "gen": gen, "joinedAt": now})  # fmt: skip
        await self._signalr.add_user_to_group(user, signalr_group_name(group))

    async def _remove_member(self, group: str, user: str) -> None:
        await self._signalr.remove_user_from_group(user, signalr_group_name(group))
        await delete_row(self._t, f"g|{group}", f"m|{user}")
        await delete_row(self._t, f"u|{user}", f"g|{group}")

    async def _create(self, group: str, user: str, tombstone: dict[str, Any] | None) -> str:
        """Write a new incarnation; raises ResourceExistsError/ResourceModifiedError on a race."""
        gen = secrets.token_hex(8)
        meta = {"PartitionKey": f"g|{group}", "RowKey": "meta", "owner": user, "gen": gen,
                "createdAt": self._clock(), "deleted": False}  # fmt: skip
        if tombstone is None:
            await self._t.create_entity(meta)
        else:
            await self._t.update_entity(meta, mode=UpdateMode.REPLACE, etag=tombstone["_etag"],
                                        match_condition=MatchConditions.IfNotModified)  # fmt: skip
        return gen

    async def join(self, group: str, user: str, invite: str | None) -> str:
        """Join, creating the group when it does not exist: 'created' or 'joined'."""
        for _ in range(3):  # a lost creation race is retried against the winner's group
            meta = await get_row(self._t, f"g|{group}", "meta")
            if meta is None or meta.get("deleted"):
                if meta is not None:
                    left = float(meta["deletedAt"]) + self._quarantine_s - self._clock()
                    if left > 0:
                        raise GroupRecentlyDeleted(left)
                try:
                    gen = await self._create(group, user, meta)
                except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                    continue
                await self._add_member(group, gen, user)
                return "created"
            # The owner always gets back in (repairs a creation cut short before its rows).
            if meta["owner"] != user and not await self._member_of(meta, group, user):
                if invite is None:
                    raise Forbidden("this group is invite-only")
                await self._invites.redeem(group, str(meta["gen"]), invite)
            await self._add_member(group, str(meta["gen"]), user)
            return "joined"
        raise Forbidden("the group changed while joining; try again")

    async def leave(self, group: str, user: str) -> None:
        await self._remove_member(group, user)

    async def delete_group(self, group: str) -> None:
        """Tombstone the group, then remove every member (record and SignalR) and invite."""
        meta = await self._live(group)
        if meta is None:
            return
        await self._t.upsert_entity({"PartitionKey": f"g|{group}", "RowKey": "meta",
                                     "owner": meta["owner"], "gen": meta["gen"],
                                     "deleted": True, "deletedAt": self._clock()},
                                    mode=UpdateMode.REPLACE)  # fmt: skip
        rows = [r async for r in self._t.query_entities(
            "PartitionKey eq @pk", parameters={"pk": f"g|{group}"}, select=["RowKey"])]  # fmt: skip
        for row in rows:
            key = str(row["RowKey"])
            if key.startswith("m|"):
                await self._remove_member(group, key[2:])
            elif key.startswith("i|"):
                await delete_row(self._t, f"g|{group}", key)

    async def memberships(self, user: str) -> list[dict[str, Any]]:
        """The user's groups (current incarnations only), with each group's owner."""
        out = []
        for group in await self.groups_of(user):
            meta = await self._live(group)
            if await self._member_of(meta, group, user):
                assert meta is not None
                out.append({"group": group, "owner": meta["owner"]})
        return out

    async def sync_user(self, user: str) -> None:
        """Make SignalR's user-group membership match the record (negotiate calls this)."""
        for group in await self.groups_of(user):
            meta = await self._live(group)
            row = await get_row(self._t, f"g|{group}", f"m|{user}")
            if meta is not None and row is not None and row.get("gen") == meta["gen"]:
                await self._signalr.add_user_to_group(user, signalr_group_name(group))
            elif meta is None or row is not None:
                # Definitely stale (a deleted group, an older incarnation): drop it everywhere.
                await self._remove_member(group, user)
            # A live group with no member row is a join in flight (index row written
            # first) or a leave cut short: left alone, and not listed by memberships().

    # --- invites and connections ----------------------------------------------------

    async def create_invite(self, group: str, ttl_s: int, single_use: bool) -> str:
        meta = await self._live(group)
        if meta is None:
            raise Forbidden("no such group")
        return await self._invites.create(group, str(meta["gen"]), ttl_s, single_use)

    async def start_claim(self, connection_id: str, user: str) -> str:
        """'nonce_sent', or 'bound' if already the user's; Forbidden if someone else's."""
        return await self._claims.start(connection_id, user)

    async def finish_claim(self, connection_id: str, user: str, nonce: str) -> bool:
        return await self._claims.finish(connection_id, user, nonce)

    async def connection_owner(self, connection_id: str) -> str | None:
        return await self._claims.owner(connection_id)
