"""Group invites: signed tokens, plus a row that makes single-use invites single-use.

A token is `{body}.{sig}`: body is base64url JSON naming the group, its incarnation
(`c`, the group's `gen`), an invite id and an expiry; sig is HMAC-SHA256 over body with a
key kept in the groups table and created on first use, so no secret lives in settings.
Redeeming checks the signature first, so nothing of an unsigned body is trusted. The
group's deletion voids its invites twice over: a new incarnation has another `gen`, and
the invite rows are deleted with the group.

Rows in table `{prefix}groups`:
    PK g|{group}      RK i|{invite}     invite (singleUse, used, expiresAt)
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
from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ._rows import get_row
from .errors import InviteInvalid

__all__ = ["TTL_DEFAULT_S", "TTL_MAX_S", "TTL_MIN_S", "Invites"]

# How long an invite may live, in seconds: the API's `ttlSeconds` bounds and default.
TTL_MIN_S = 60
TTL_DEFAULT_S = 24 * 3600
TTL_MAX_S = 7 * 24 * 3600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Invites:
    def __init__(self, table: TableClient, clock: Callable[[], float]) -> None:
        self._t = table
        self._clock = clock
        self._key: bytes | None = None

    async def _invite_key(self) -> bytes:
        if self._key is None:
            fresh = secrets.token_bytes(32)
            with contextlib.suppress(ResourceExistsError):  # first writer's key wins
                await self._t.create_entity(
                    {"PartitionKey": "keys", "RowKey": "invite", "key": _b64(fresh)}
                )
            stored = await get_row(self._t, "keys", "invite")
            assert stored is not None
            self._key = _unb64(str(stored["key"]))
        return self._key

    async def _sign(self, body: str) -> str:
        return _b64(hmac.new(await self._invite_key(), body.encode(), hashlib.sha256).digest())

    async def create(self, group: str, gen: str, ttl_s: int, single_use: bool) -> str:
        """A token for incarnation `gen` of `group`, valid for `ttl_s` seconds."""
        invite_id = secrets.token_hex(8)
        expires = self._clock() + ttl_s
        await self._t.create_entity({"PartitionKey": f"g|{group}", "RowKey": f"i|{invite_id}",
                                     "singleUse": single_use, "used": False,
                                     "expiresAt": expires})  # fmt: skip
        claims = {"g": group, "c": gen, "i": invite_id, "e": expires}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{body}.{await self._sign(body)}"

    async def redeem(self, group: str, gen: str, token: str) -> None:
        """Accept the token for incarnation `gen` of `group`, or raise InviteInvalid."""
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
        if claims.get("c") != gen:
            raise InviteInvalid("the invite was withdrawn")
        if float(claims.get("e", 0)) <= self._clock():
            raise InviteInvalid("the invite has expired")
        row = await get_row(self._t, f"g|{group}", f"i|{claims.get('i')}")
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
