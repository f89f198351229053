"""Claimed connections: a connection becomes a job target only once a user proves it is theirs.

A connection id proves nothing (the REST API cannot say whose it is), so the app sends a
one-time nonce to the connection (`claim` message) and binds the connection to the first
user who echoes it back; nobody can unbind or re-bind it afterwards. Pending claims are
per user, so nobody can overwrite or void someone else's, and only the nonce's hash is
stored.

Rows in table `{prefix}groups`:
    PK c|{connection} RK n|{user}       pending claim: nonce hash, expiresAt
    PK c|{connection} RK bound          the connection's owner
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient

from ._rows import delete_row, get_row
from .errors import Forbidden
from .signalr import SignalRClient

__all__ = ["CLAIM_TTL_S", "ConnectionClaims"]

CLAIM_TTL_S = 120


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class ConnectionClaims:
    def __init__(
        self, table: TableClient, signalr: SignalRClient, clock: Callable[[], float]
    ) -> None:
        self._t = table
        self._signalr = signalr
        self._clock = clock

    async def start(self, connection_id: str, user: str) -> str:
        """Send a one-time nonce to the connection: 'nonce_sent', or 'bound' if already ours.

        Raises Forbidden when another user owns the connection.
        """
        owner = await self.owner(connection_id)
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

    async def finish(self, connection_id: str, user: str, nonce: str) -> bool:
        """True when the connection is now (or already was) bound to `user`."""
        owner = await self.owner(connection_id)
        if owner is not None:
            return owner == user
        row = await get_row(self._t, f"c|{connection_id}", f"n|{user}")
        if row is None or float(row.get("expiresAt", 0)) <= self._clock():
            return False
        if not hmac.compare_digest(_digest(nonce), str(row.get("nonce"))):
            return False
        await delete_row(self._t, f"c|{connection_id}", f"n|{user}")  # one-time
        try:
            await self._t.create_entity({"PartitionKey": f"c|{connection_id}", "RowKey": "bound",
                                         "user": user, "boundAt": self._clock()})  # fmt: skip
        except ResourceExistsError:  # a concurrent claim won
            return await self.owner(connection_id) == user
        return True

    async def owner(self, connection_id: str) -> str | None:
        row = await get_row(self._t, f"c|{connection_id}", "bound")
        return str(row["user"]) if row else None
