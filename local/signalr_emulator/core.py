"""The emulator's state machine: connection lifecycle, client messages, routing, counters.

Transports (transports.py) and the REST API (rest.py) call into `EmulatorCore`; it never
awaits a client. Time comes from an injected monotonic clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .connection import Connection, ConnectionCounters
from .hub import Registry

__all__ = ["EmulatorCore", "EmulatorOptions", "Totals"]

log = logging.getLogger("local.signalr_emulator")
HISTORY_LIMIT = 20_000  # per-connection counters kept for /_emulator/stats

NOT_SUPPORTED = (
    "Invocation failed: the service is in Serverless mode and no upstream is configured, "
    "so clients cannot invoke hub methods."
)


@dataclass(frozen=True)
class EmulatorOptions:
    ping_interval_s: float = 10.0  # well inside the client's 30 s server timeout
    handshake_timeout_s: float = 15.0
    negotiate_ttl_s: float = 30.0  # a negotiated id must be used within this time
    poll_timeout_s: float = 20.0  # long polling: hold a poll at most this long
    poll_idle_s: float = 30.0  # long polling: no poll for this long ends the connection
    close_grace_s: float = 1.0  # a closing transport that cannot flush is cut after this
    outbox_max_messages: int = 2000
    outbox_max_bytes: int = 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    token_leeway_s: float = 0.0
    cors_origins: tuple[str, ...] = ("http://127.0.0.1:7071", "http://localhost:7071")


@dataclass
class Totals:
    sends: int = 0
    messages: int = 0
    bytes: int = 0
    units: int = 0
    connections_opened: int = 0
    connections_peak: int = 0
    dropped_slow_clients: int = 0
    rest_requests: int = 0
    rest_faults_injected: int = 0


@dataclass
class EmulatorCore:
    options: EmulatorOptions = field(default_factory=EmulatorOptions)
    clock: Callable[[], float] = time.monotonic
    registry: Registry = field(init=False)
    totals: Totals = field(default_factory=Totals)
    # Counters of every connection seen since the last reset (closed ones included).
    history: dict[str, tuple[str, str | None, ConnectionCounters]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.registry = Registry(self.clock)

    # --- lifecycle ---------------------------------------------------------------------
    def negotiate(self, hub: str, user_id: str | None, *, with_token: bool) -> Connection:
        conn = Connection(
            hub=hub.lower(),
            user_id=user_id,
            max_messages=self.options.outbox_max_messages,
            max_bytes=self.options.outbox_max_bytes,
        )
        if not with_token:  # negotiate v0: the connection id is the token
            conn.token = conn.connection_id
        conn.created = conn.last_activity = self.clock()
        self.registry.by_token[conn.token] = conn
        return conn

    def attach(self, conn: Connection, transport: Any) -> None:
        conn.transport = transport
        conn.state = "connecting"
        conn.last_activity = self.clock()
        loop = asyncio.get_running_loop()
        loop.call_later(self.options.handshake_timeout_s, self._handshake_deadline, conn)

    def _handshake_deadline(self, conn: Connection) -> None:
        if conn.state == "connecting":
            self.close(conn, "Handshake was canceled: no handshake within the timeout.")

    def finish(self, conn: Connection) -> None:
        """The transport is gone: forget the connection everywhere."""
        if conn.state == "closed":
            return
        hub = self.registry.find(conn.hub)
        if hub is not None:
            hub.remove(conn)
        self.registry.by_token.pop(conn.token, None)
        conn.mark_closed()

    def close(
        self, conn: Connection, error: str | None = None, *, allow_reconnect: bool = False
    ) -> None:
        """Send a close message, then end the transport; cut it if it cannot flush in time."""
        conn.begin_close(error, allow_reconnect=allow_reconnect)
        self._cut_later(conn)

    def _cut_later(self, conn: Connection) -> None:
        asyncio.get_running_loop().call_later(self.options.close_grace_s, self._cut, conn)

    def _cut(self, conn: Connection) -> None:
        if conn.state == "closed":
            return
        if conn.on_abort is not None:
            conn.on_abort()
        if conn.transport in (None, "LongPolling") and not conn.polling:
            self.finish(conn)

    # --- client to server --------------------------------------------------------------
    def feed(self, conn: Connection, text: str) -> None:
        """Handle text the client sent (handshake first, then hub messages)."""
        conn.last_activity = self.clock()
        conn.inbuf += text
        frames, conn.inbuf = protocol.split_frames(conn.inbuf)
        if len(conn.inbuf) > self.options.max_body_bytes:
            self.close(conn, "Connection closed with an error: message too large.")
            return
        for frame in frames:
            if conn.closing:
                return
            if conn.state == "connecting":
                self._handshake(conn, frame)
            else:
                self._client_message(conn, frame)

    def _handshake(self, conn: Connection, frame: str) -> None:
        try:
            request = protocol.parse_handshake(frame)
        except protocol.ProtocolError as exc:
            self._handshake_failed(conn, f"Handshake request is invalid: {exc}.")
            return
        if request.protocol != "json":
            self._handshake_failed(conn, f"The protocol '{request.protocol}' is not supported.")
            return
        if request.version != 1:
            self._handshake_failed(
                conn,
                f"The server does not support version {request.version} of the 'json' protocol.",
            )
            return
        conn.outbox.push(protocol.HANDSHAKE_OK, force=True)
        conn.state = "connected"
        self.registry.hub(conn.hub).add(conn)
        self.totals.connections_opened += 1
        self.totals.connections_peak = max(self.totals.connections_peak, self.connected_count())
        self.history[conn.connection_id] = (conn.hub, conn.user_id, conn.counters)
        if len(self.history) > HISTORY_LIMIT:  # forget the oldest entries first
            for key in list(self.history)[: len(self.history) - HISTORY_LIMIT]:
                del self.history[key]

    def _handshake_failed(self, conn: Connection, message: str) -> None:
        conn.outbox.push(protocol.handshake_error(message), force=True)
        conn.begin_close(message, message=False)
        self._cut_later(conn)

    def _client_message(self, conn: Connection, frame: str) -> None:
        try:
            message = protocol.parse_message(frame)
        except protocol.ProtocolError as exc:
            self.close(conn, f"Connection closed with an error: {exc}.")
            return
        kind = message["type"]
        if kind in (protocol.INVOCATION, protocol.STREAM_INVOCATION):
            invocation_id = message.get("invocationId")
            if isinstance(invocation_id, str) and invocation_id:
                answer = protocol.completion_error(invocation_id, NOT_SUPPORTED)
                if not conn.enqueue(answer):
                    self.overflow(conn)
        elif kind == protocol.CLOSE:
            conn.begin_close(message=False)
            self._cut_later(conn)
        elif kind in (
            protocol.PING_TYPE,
            protocol.COMPLETION,
            protocol.STREAM_ITEM,
            protocol.CANCEL_INVOCATION,
            8,
            9,
        ):
            return
        else:
            self.close(conn, f"Connection closed with an error: unknown message type {kind}.")

    # --- server to client --------------------------------------------------------------
    def deliver(
        self, hub_name: str, targets: Iterable[Connection], target: str, arguments: list[Any]
    ) -> int:
        """Queue one invocation to each target; returns how many connections got it."""
        frame = protocol.invocation(target, arguments)
        size = len(frame.encode("utf-8"))
        units = protocol.billed_units(size)
        hub = self.registry.hub(hub_name)
        hub.counters.sends += 1
        self.totals.sends += 1
        delivered = 0
        for conn in targets:
            if conn.state != "connected":
                continue
            if not conn.enqueue(frame):
                self.overflow(conn)
                continue
            delivered += 1
            for c in (conn.counters, hub.counters, self.totals):
                c.messages += 1
                c.bytes += size
                c.units += units
        return delivered

    def overflow(self, conn: Connection) -> None:
        if conn.closing:
            return
        log.warning("closing slow connection %s (outbox full)", conn.connection_id)
        hub = self.registry.hub(conn.hub)
        hub.counters.dropped_slow_clients += 1
        self.totals.dropped_slow_clients += 1
        conn.overflow()
        self._cut_later(conn)

    # --- housekeeping ------------------------------------------------------------------
    def tick(self) -> None:
        """Ping live connections, expire stale negotiations, idle polls and memberships."""
        now = self.clock()
        for conn in self.registry.live_connections():
            stale = conn.state == "negotiated" and now - conn.created > self.options.negotiate_ttl_s
            idle = (
                conn.transport == "LongPolling"
                and not conn.polling
                and now - conn.last_activity > self.options.poll_idle_s
            )
            if stale or idle:
                self.finish(conn)
            elif conn.state == "connected" and not conn.enqueue(protocol.PING):
                self.overflow(conn)
        for hub in self.registry.hubs.values():
            hub.expire()

    def connected_count(self) -> int:
        return sum(len(h.connections) for h in self.registry.hubs.values())

    def reset_counters(self) -> None:
        self.totals = Totals(connections_peak=self.connected_count())
        self.history = {}
        for hub in self.registry.hubs.values():
            hub.counters = type(hub.counters)()
            for conn in hub.connections.values():
                conn.counters = ConnectionCounters()
                self.history[conn.connection_id] = (conn.hub, conn.user_id, conn.counters)
