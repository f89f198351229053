"""Hubs: who is connected, who is in which group, and where a send goes. No I/O.

Membership follows the service: a connection joins a group directly (lost when it
disconnects); a user joins a group with an optional ttl, which applies to the user's
current AND future connections until it expires (no ttl: one year; ttl=0: only the
user's current connections are added, directly). Hub names are case-insensitive; user
ids, group names and connection ids are compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .connection import Connection

__all__ = ["Hub", "HubCounters", "Registry"]

USER_GROUP_DEFAULT_TTL_S = 365 * 24 * 3600.0


@dataclass
class HubCounters:
    sends: int = 0  # REST send requests accepted
    messages: int = 0  # invocations routed to connections
    bytes: int = 0
    units: int = 0
    dropped_slow_clients: int = 0


@dataclass
class Hub:
    name: str
    clock: Callable[[], float]
    connections: dict[str, Connection] = field(default_factory=dict)
    users: dict[str, set[str]] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)  # group -> connection ids
    user_groups: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # group -> user -> expiry
    counters: HubCounters = field(default_factory=HubCounters)

    # --- connections -------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        self.connections[conn.connection_id] = conn
        if conn.user_id is not None:
            self.users.setdefault(conn.user_id, set()).add(conn.connection_id)

    def remove(self, conn: Connection) -> None:
        if self.connections.pop(conn.connection_id, None) is None:
            return
        if conn.user_id is not None:
            ids = self.users.get(conn.user_id)
            if ids is not None:
                ids.discard(conn.connection_id)
                if not ids:
                    del self.users[conn.user_id]
        for group in [g for g, ids in self.groups.items() if conn.connection_id in ids]:
            self._discard_direct(group, conn.connection_id)

    def user_connections(self, user: str) -> list[Connection]:
        return [self.connections[c] for c in self.users.get(user, ())]

    # --- groups ------------------------------------------------------------------------
    def add_to_group(self, group: str, connection_id: str) -> bool:
        if connection_id not in self.connections:
            return False
        self.groups.setdefault(group, set()).add(connection_id)
        return True

    def remove_from_group(self, group: str, connection_id: str) -> bool:
        return self._discard_direct(group, connection_id)

    def remove_from_all_groups(self, connection_id: str) -> None:
        for group in [g for g, ids in self.groups.items() if connection_id in ids]:
            self._discard_direct(group, connection_id)

    def _discard_direct(self, group: str, connection_id: str) -> bool:
        ids = self.groups.get(group)
        if ids is None or connection_id not in ids:
            return False
        ids.discard(connection_id)
        if not ids:
            del self.groups[group]
        return True

    def add_user_to_group(self, group: str, user: str, ttl_s: int | None) -> None:
        if ttl_s == 0:
            for conn in self.user_connections(user):
                self.add_to_group(group, conn.connection_id)
            return
        ttl = USER_GROUP_DEFAULT_TTL_S if ttl_s is None else float(ttl_s)
        self.user_groups.setdefault(group, {})[user] = self.clock() + ttl

    def remove_user_from_group(self, group: str, user: str) -> None:
        members = self.user_groups.get(group)
        if members is not None:
            members.pop(user, None)
            if not members:
                del self.user_groups[group]
        for conn in self.user_connections(user):
            self._discard_direct(group, conn.connection_id)

    def remove_user_from_all_groups(self, user: str) -> None:
        for group in list(self.user_groups):
            self.remove_user_from_group(group, user)
        for conn in self.user_connections(user):
            self.remove_from_all_groups(conn.connection_id)

    def user_in_group(self, group: str, user: str) -> bool:
        expiry = self.user_groups.get(group, {}).get(user)
        if expiry is not None and expiry > self.clock():
            return True
        direct = self.groups.get(group, set())
        return any(c in direct for c in self.users.get(user, ()))

    def group_connections(self, group: str) -> list[Connection]:
        ids = set(self.groups.get(group, ()))
        now = self.clock()
        for user, expiry in self.user_groups.get(group, {}).items():
            if expiry > now:
                ids.update(self.users.get(user, ()))
        return [self.connections[c] for c in ids if c in self.connections]

    def expire(self) -> None:
        now = self.clock()
        for group in list(self.user_groups):
            members = self.user_groups[group]
            for user in [u for u, exp in members.items() if exp <= now]:
                del members[user]
            if not members:
                del self.user_groups[group]

    # --- targets -----------------------------------------------------------------------
    def all_connections(self, excluded: Iterable[str] = ()) -> list[Connection]:
        skip = set(excluded)
        return [c for cid, c in self.connections.items() if cid not in skip]


@dataclass
class Registry:
    """All hubs of one emulator, keyed by lower-cased name, plus pending connections."""

    clock: Callable[[], float]
    hubs: dict[str, Hub] = field(default_factory=dict)
    by_token: dict[str, Connection] = field(default_factory=dict)  # negotiated or live

    def hub(self, name: str) -> Hub:
        key = name.lower()
        hub = self.hubs.get(key)
        if hub is None:
            hub = self.hubs[key] = Hub(key, self.clock)
        return hub

    def find(self, name: str) -> Hub | None:
        return self.hubs.get(name.lower())

    def live_connections(self) -> list[Connection]:
        return list(self.by_token.values())
