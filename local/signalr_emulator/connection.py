"""One client connection: identity, a bounded outbox, and its counters.

Routing only ever appends to an outbox (never awaits a client), so a slow or dead client
cannot hold up delivery to anyone else. A transport-specific writer drains the outbox.
When an outbox would grow past its bounds the connection is marked for closing: the
client gets a close message if its transport still accepts one, and is cut otherwise.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .protocol import close_message

__all__ = ["Connection", "ConnectionCounters", "Outbox", "new_id"]

Transport = Literal["WebSockets", "ServerSentEvents", "LongPolling"]
State = Literal["negotiated", "connecting", "connected", "closing", "closed"]


def new_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass
class ConnectionCounters:
    messages: int = 0  # hub invocations routed to this connection
    bytes: int = 0
    units: int = 0  # billed messages (2 KB each)
    written_frames: int = 0  # transport writes that reached the socket


class Outbox:
    """A FIFO of framed text bounded by message count and bytes; `push` never waits."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[str] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        return self._bytes

    def push(self, frame: str, *, force: bool = False) -> bool:
        """Append `frame`; False (and nothing appended) when it would exceed the bounds."""
        size = len(frame)
        full = len(self._items) >= self.max_messages or self._bytes + size > self.max_bytes
        if full and not force:
            return False
        self._items.append(frame)
        self._bytes += size
        self._ready.set()
        return True

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def take_all(self) -> str:
        text = "".join(self._items)
        self.clear()
        self._ready.clear()
        return text

    async def wait(self, within: float | None) -> bool:
        """Wait until something is queued; False on timeout."""
        if self._items:
            return True
        self._ready.clear()
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            return False
        return True

    def wake(self) -> None:
        self._ready.set()


@dataclass(eq=False)
class Connection:
    hub: str  # lower-cased hub name
    user_id: str | None
    max_messages: int
    max_bytes: int
    connection_id: str = field(default_factory=new_id)
    token: str = field(default_factory=new_id)
    transport: Transport | None = None
    state: State = "negotiated"
    created: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    close_reason: str | None = None
    counters: ConnectionCounters = field(default_factory=ConnectionCounters)
    outbox: Outbox = field(init=False)
    closed_event: asyncio.Event = field(init=False)
    # Set once the close message is queued; the writer ends the transport after it.
    closing: bool = False
    inbuf: str = ""  # client-to-server text not yet split into messages
    poll_generation: int = 0  # long polling: a newer poll ends the older one
    polling: bool = False
    on_abort: Callable[[], None] | None = None  # cuts the socket of a stuck transport

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.max_messages, self.max_bytes)
        self.closed_event = asyncio.Event()

    @property
    def is_closed(self) -> bool:
        return self.state == "closed"

    @property
    def is_open(self) -> bool:
        return self.state in ("negotiated", "connecting", "connected")

    def enqueue(self, frame: str) -> bool:
        """Queue a frame; False when the connection is closing or its outbox is full."""
        if self.closing or self.state == "closed":
            return False
        return self.outbox.push(frame)

    def begin_close(
        self, error: str | None = None, *, allow_reconnect: bool = False, message: bool = True
    ) -> None:
        """Queue a close message after what is pending, and accept nothing more."""
        if self.closing or self.state == "closed":
            return
        self.closing = True
        self.close_reason = error
        self.state = "closing"
        if message and self.transport is not None:
            self.outbox.push(close_message(error, allow_reconnect), force=True)
        self.outbox.wake()

    def overflow(self) -> None:
        """The client fell too far behind: drop what is queued and close it."""
        if self.closing or self.state == "closed":
            return
        self.outbox.clear()
        self.begin_close(
            "Connection closed: the client is not reading fast enough (send buffer full).",
            allow_reconnect=True,
        )

    def mark_closed(self) -> None:
        self.state = "closed"
        self.closing = True
        self.outbox.clear()
        self.outbox.wake()
        self.closed_event.set()
