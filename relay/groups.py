"""Groups, invites and claimed connections: the app's record, mirrored to SignalR.

Membership lives in Table storage and is mirrored to SignalR *user*-group membership, so
it survives reconnects; `sync_user` (called by negotiate) re-applies it so the record and
SignalR cannot drift apart. SignalR group names are built here from validated names.

Invites are signed tokens (HMAC-SHA256 with a key kept in the app's table, created on
first use: no secret in settings) naming the group, an invite id and an expiry; the
invite row makes single-use invites single-use and lets the owner's deletion of the
group void them.

A connection id proves nothing (the REST API cannot say whose it is), so a connection
becomes a job target only after its owner echoes a nonce that the app sent to it.

Table `{prefix}groups`:
    PK g|{group}      RK meta           owner
    PK g|{group}      RK m|{user}       membership
    PK g|{group}      RK i|{invite}     invite (singleUse, used, expiresAt)
    PK u|{user}       RK g|{group}      reverse index (the user's groups)
    PK c|{connection} RK claim          nonce hash, user, bound
    PK keys           RK invite         HMAC key
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .errors import RelayError
from .signalr import SignalRClient

__all__ = ["Forbidden", "Groups", "InviteInvalid", "signalr_group_name"]

_CLAIM_TTL_S = 120


class Forbidden(RelayError):
    code = "forbidden"


class InviteInvalid(RelayError):
    code = "invalid_invite"


def signalr_group_name(group: str) -> str:
    return f"grp.{group}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Groups:
    def __init__(self, service: TableServiceClient, prefix: str, signalr: SignalRClient) -> None:
        self._t: TableClient = service.get_table_client(f"{prefix}groups")
        self._signalr = signalr
        self._key: bytes | None = None

    async def ensure(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._t.create_table()

    async def _get(self, pk: str, rk: str) -> dict[str, Any] | None:
        try:
            return dict(await self._t.get_entity(pk, rk))
        except ResourceNotFoundError:
            return None

    async def _delete(self, pk: str, rk: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self._t.delete_entity(pk, rk)

    # --- membership ------------------------------------------------------------------

    async def owner_of(self, group: str) -> str | None:
        meta = await self._get(f"g|{group}", "meta")
        return str(meta["owner"]) if meta else None

    async def is_member(self, group: str, user: str) -> bool:
        return await self._get(f"g|{group}", f"m|{user}") is not None

    async def members(self, group: str) -> list[dict[str, Any]]:
        out = []
        async for row in self._t.query_entities(
            "PartitionKey eq @pk and RowKey ge 'm|' and RowKey lt 'm}'",
            parameters={"pk": f"g|{group}"},
        ):
            out.append({"userId": row["RowKey"][2:], "joinedAt": row.get("joinedAt")})
        return out

    async def groups_of(self, user: str) -> list[str]:
        return [
            row["RowKey"][2:]
            async for row in self._t.query_entities(
                "PartitionKey eq @pk", parameters={"pk": f"u|{user}"}, select=["RowKey"]
            )
        ]

    async def _add_member(self, group: str, user: str) -> None:
        now = int(time.time())
        await self._t.upsert_entity({"PartitionKey": f"g|{group}", "RowKey": f"m|{user}",
                                     "joinedAt": now})  # fmt: skip
        await self._t.upsert_entity({"PartitionKey": f"u|{user}", "RowKey": f"g|{group}",
                                     "joinedAt": now})  # fmt: skip
        await self._signalr.add_user_to_group(user, signalr_group_name(group))

    async def join(self, group: str, user: str, invite: str | None) -> str:
        """Join (creating the group when it does not exist). Returns 'created' or 'joined'."""
        try:
            await self._t.create_entity({"PartitionKey": f"g|{group}", "RowKey": "meta",
                                         "owner": user, "createdAt": int(time.time())})  # fmt: skip
            await self._add_member(group, user)
            return "created"
        except ResourceExistsError:
            pass
        if await self.is_member(group, user):
            await self._signalr.add_user_to_group(user, signalr_group_name(group))
            return "joined"
        if invite is None:
            raise Forbidden("this group is invite-only")
        await self._redeem(group, invite)
        await self._add_member(group, user)
        return "joined"

    async def leave(self, group: str, user: str) -> None:
        await self._delete(f"g|{group}", f"m|{user}")
        await self._delete(f"u|{user}", f"g|{group}")
        await self._signalr.remove_user_from_group(user, signalr_group_name(group))

    async def delete_group(self, group: str) -> None:
        rows = [r async for r in self._t.query_entities(
            "PartitionKey eq @pk", parameters={"pk": f"g|{group}"}, select=["RowKey"])]  # fmt: skip
        for row in rows:
            if row["RowKey"].startswith("m|"):
                await self.leave(group, row["RowKey"][2:])
        for row in rows:
            await self._delete(f"g|{group}", row["RowKey"])

    async def sync_user(self, user: str) -> None:
        for group in await self.groups_of(user):
            if await self.is_member(group, user):
                await self._signalr.add_user_to_group(user, signalr_group_name(group))
            else:  # a stale reverse-index row: repair it
                await self._delete(f"u|{user}", f"g|{group}")

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

    async def create_invite(self, group: str, ttl_s: int, single_use: bool) -> str:
        invite_id = secrets.token_hex(8)
        expires = int(time.time()) + ttl_s
        await self._t.create_entity({"PartitionKey": f"g|{group}", "RowKey": f"i|{invite_id}",
                                     "singleUse": single_use, "used": False,
                                     "expiresAt": expires})  # fmt: skip
        body = _b64(json.dumps({"g": group, "i": invite_id, "e": expires}).encode())
        sig = _b64(hmac.new(await self._invite_key(), body.encode(), hashlib.sha256).digest())
        return f"{body}.{sig}"

    async def _redeem(self, group: str, token: str) -> None:
        body, _, sig = token.partition(".")
        expected = _b64(hmac.new(await self._invite_key(), body.encode(), hashlib.sha256).digest())
        if not sig or not hmac.compare_digest(sig, expected):
            raise InviteInvalid("the invite is not valid")
        try:
            claims = json.loads(_unb64(body))
        except ValueError:
            raise InviteInvalid("the invite is not valid") from None
        if claims.get("g") != group:
            raise InviteInvalid("the invite is for another group")
        if int(claims.get("e", 0)) < time.time():
            raise InviteInvalid("the invite has expired")
        try:
            row = await self._t.get_entity(f"g|{group}", f"i|{claims.get('i')}")
        except ResourceNotFoundError:
            raise InviteInvalid("the invite was withdrawn") from None
        if row.get("singleUse"):
            if row.get("used"):
                raise InviteInvalid("the invite has already been used")
            try:  # ETag-guarded: of two concurrent redemptions exactly one wins
                await self._t.update_entity(
                    {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "used": True},
                    mode=UpdateMode.MERGE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                raise InviteInvalid("the invite has already been used") from None

    # --- connections -----------------------------------------------------------------

    async def start_claim(self, connection_id: str, user: str) -> None:
        """Send a one-time nonce to the connection; only its holder can echo it back."""
        nonce = secrets.token_urlsafe(24)
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        await self._t.upsert_entity({"PartitionKey": f"c|{connection_id}", "RowKey": "claim",
                                     "user": user, "nonce": digest, "bound": False,
                                     "expiresAt": int(time.time()) + _CLAIM_TTL_S})  # fmt: skip
        await self._signalr.send_to_connection(connection_id, "claim", [{"nonce": nonce}])

    async def finish_claim(self, connection_id: str, user: str, nonce: str) -> bool:
        row = await self._get(f"c|{connection_id}", "claim")
        if row is None or row.get("user") != user or row.get("bound"):
            return bool(row and row.get("bound") and row.get("user") == user)
        if int(row.get("expiresAt", 0)) < time.time():
            return False
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        if not hmac.compare_digest(digest, str(row.get("nonce"))):
            return False
        await self._t.upsert_entity({"PartitionKey": f"c|{connection_id}", "RowKey": "claim",
                                     "user": user, "nonce": "", "bound": True,
                                     "expiresAt": 0})  # fmt: skip
        return True

    async def connection_owner(self, connection_id: str) -> str | None:
        row = await self._get(f"c|{connection_id}", "claim")
        return str(row["user"]) if row and row.get("bound") else None
