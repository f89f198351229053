"""Groups, invites and claimed connections: the app's record, mirrored to SignalR.

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

Invites are signed tokens (HMAC-SHA256 with a key kept in the app's table, created on
first use: no secret in settings) naming the group, its incarnation, an invite id and
an expiry; the invite row makes single-use invites single-use (ETag-guarded) and the
group's deletion voids them.

A connection id proves nothing (the REST API cannot say whose it is), so a connection
becomes a job target only after a user echoes the nonce the app sent to it; the first
user to do so owns it, and nobody can unbind or re-bind it afterwards.

Table `{prefix}groups`:
    PK g|{group}      RK meta           owner, gen, createdAt (or deleted, deletedAt)
    PK g|{group}      RK m|{user}       membership (gen, joinedAt)
    PK g|{group}      RK i|{invite}     invite (singleUse, used, expiresAt)
    PK u|{user}       RK g|{group}      reverse index (the user's groups)
    PK c|{connection} RK n|{user}       pending claim: nonce hash, expiresAt
    PK c|{connection} RK bound          the connection's owner
    PK keys           RK invite         HMAC key
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .errors import RelayError
from .signalr import SignalRClient

__all__ = [
    "Forbidden",
    "GroupRecentlyDeleted",
    "Groups",
    "InviteInvalid",
    "signalr_group_name",
]

CLAIM_TTL_S = 120
DEFAULT_QUARANTINE_S = 720.0


class Forbidden(RelayError):
    code = "forbidden"


class InviteInvalid(RelayError):
    code = "invalid_invite"


class GroupRecentlyDeleted(RelayError):
    code = "group_recently_deleted"

    def __init__(self, retry_after: float) -> None:
        super().__init__("this group name was deleted recently; try again later")
        self.retry_after = retry_after


def signalr_group_name(group: str) -> str:
    return f"grp.{group}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


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
        self._key: bytes | None = None

    async def ensure(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._t.create_table()

    async def _get(self, pk: str, rk: str) -> dict[str, Any] | None:
        try:
            entity = await self._t.get_entity(pk, rk)
        except ResourceNotFoundError:
            return None
        row = dict(entity)
        row["_etag"] = entity.metadata["etag"]
        return row

    async def _delete(self, pk: str, rk: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._t.delete_entity(pk, rk)

    # --- reading ---------------------------------------------------------------------

    async def _live(self, group: str) -> dict[str, Any] | None:
        """The group's current incarnation (None when absent or deleted)."""
        meta = await self._get(f"g|{group}", "meta")
        return meta if meta is not None and not meta.get("deleted") else None

    async def owner_of(self, group: str) -> str | None:
        meta = await self._live(group)
        return str(meta["owner"]) if meta else None

    async def _member_of(self, meta: dict[str, Any] | None, group: str, user: str) -> bool:
        if meta is None:
            return False
        row = await self._get(f"g|{group}", f"m|{user}")
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
            {"userId": row["RowKey"][2:], "joinedAt": row.get("joinedAt")}
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
        await self._delete(f"g|{group}", f"m|{user}")
        await self._delete(f"u|{user}", f"g|{group}")

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
            meta = await self._get(f"g|{group}", "meta")
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
                await self._redeem(group, meta, invite)
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
                await self._delete(f"g|{group}", key)

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
            row = await self._get(f"g|{group}", f"m|{user}")
            if meta is not None and row is not None and row.get("gen") == meta["gen"]:
                await self._signalr.add_user_to_group(user, signalr_group_name(group))
            elif meta is None or row is not None:
                # Definitely stale (a deleted group, an older incarnation): drop it everywhere.
                await self._remove_member(group, user)
            # A live group with no member row is a join in flight (index row written
            # first) or a leave cut short: left alone, and not listed by memberships().

    # --- invites ---------------------------------------------------------------------

    async def _invite_key(self) -> bytes:
        if self._key is None:
            fresh = secrets.token_bytes(32)
            with contextlib.suppress(ResourceExistsError):  # first writer's key wins
                await self._t.create_entity(
                    {"PartitionKey": "keys", "RowKey": "invite", "key": _b64(fresh)}
                )
            stored = await self._get("keys", "invite")
            assert stored is not None
            self._key = _unb64(str(stored["key"]))
        return self._key

    async def _sign(self, body: str) -> str:
        return _b64(hmac.new(await self._invite_key(), body.encode(), hashlib.sha256).digest())

    async def create_invite(self, group: str, ttl_s: int, single_use: bool) -> str:
        meta = await self._live(group)
        if meta is None:
            raise Forbidden("no such group")
        invite_id = secrets.token_hex(8)
        expires = self._clock() + ttl_s
        await self._t.create_entity({"PartitionKey": f"g|{group}", "RowKey": f"i|{invite_id}",
                                     "singleUse": single_use, "used": False,
                                     "expiresAt": expires})  # fmt: skip
        claims = {"g": group, "c": meta["gen"], "i": invite_id, "e": expires}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{body}.{await self._sign(body)}"

    async def _redeem(self, group: str, meta: dict[str, Any], token: str) -> None:
        body, _, sig = token.partition(".")
        expected = await self._sign(body)
        # Compare bytes: compare_digest refuses non-ASCII str, and tokens are caller input.
        if not sig or not hmac.compare_digest(sig.encode(), expected.encode()):
            raise InviteInvalid("the invite is not valid")
        try:
            claims = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            raise InviteInvalid("the invite is not valid") from None
        if not isinstance(claims, dict) or claims.get("g") != group:
            raise InviteInvalid("the invite is for another group")
        if claims.get("c") != meta["gen"]:
            raise InviteInvalid("the invite was withdrawn")
        if float(claims.get("e", 0)) <= self._clock():
            raise InviteInvalid("the invite has expired")
        row = await self._get(f"g|{group}", f"i|{claims.get('i')}")
        if row is None:
            raise InviteInvalid("the invite was withdrawn")
        if row.get("singleUse"):
            if row.get("used"):
                raise InviteInvalid("the invite has already been used")
            try:  # ETag-guarded: of two concurrent redemptions exactly one wins
                await self._t.update_entity(
                    {"PartitionKey": f"g|{group}", "RowKey": row["RowKey"], "used": True},
                    mode=UpdateMode.MERGE,
                    etag=row["_etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                raise InviteInvalid("the invite has already been used") from None

    # --- connections -----------------------------------------------------------------

    async def start_claim(self, connection_id: str, user: str) -> str:
        """Send a one-time nonce to the connection: 'nonce_sent', or 'bound' if already ours.

        Raises Forbidden when another user owns the connection. Pending claims are per
        user, so nobody can overwrite or void someone else's claim.
        """
        owner = await self.connection_owner(connection_id)
        if owner is not None:
            if owner != user:
                raise Forbidden("this connection belongs to someone else")
            return "bound"
        nonce = secrets.token_urlsafe(24)
        await self._t.upsert_entity({"PartitionKey": f"c|{connection_id}", "RowKey": f"n|{user}",
                                     "nonce": _digest(nonce),
                                     "expiresAt": self._clock() + CLAIM_TTL_S})  # fmt: skip
        await self._signalr.send_to_connection(connection_id, "claim", [{"nonce": nonce}])
        return "nonce_sent"

    async def finish_claim(self, connection_id: str, user: str, nonce: str) -> bool:
        owner = await self.connection_owner(connection_id)
        if owner is not None:
            return owner == user
        row = await self._get(f"c|{connection_id}", f"n|{user}")
        if row is None or float(row.get("expiresAt", 0)) <= self._clock():
            return False
        if not hmac.compare_digest(_digest(nonce), str(row.get("nonce"))):
            return False
        await self._delete(f"c|{connection_id}", f"n|{user}")  # one-time
        try:
            await self._t.create_entity({"PartitionKey": f"c|{connection_id}", "RowKey": "bound",
                                         "user": user, "boundAt": self._clock()})  # fmt: skip
        except ResourceExistsError:  # a concurrent claim won
            return await self.connection_owner(connection_id) == user
        return True

    async def connection_owner(self, connection_id: str) -> str | None:
        row = await self._get(f"c|{connection_id}", "bound")
        return str(row["user"]) if row else None
