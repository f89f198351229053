"""Many SignalR subscribers in one process: a small asyncio client of the JSON hub protocol.

Each subscriber does what @microsoft/signalr does over WebSockets: `POST {app}/api/negotiate`
(as its own user, `x-ms-client-principal-id`), follows the redirect answer `{url,
accessToken}` to the service's `POST /client/negotiate?negotiateVersion=1`, opens
`ws://.../client/?hub=H&id=<connectionToken>&access_token=<token>`, sends the handshake
`{"protocol":"json","version":1}` and reads record-separated JSON messages. Every
invocation is handed to a callback with its arrival time (`time.time()`, stamped as the
frame is read, so harness lag shows up in the figures rather than hiding them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

__all__ = ["OnMessage", "Subscriber", "SubscriberError", "SubscriberPool"]

RS = "\x1e"
OnMessage = Callable[[str, float, str, dict[str, Any]], None]  # user, time, target, argument


class SubscriberError(Exception):
    """A subscriber could not connect (negotiate or handshake refused)."""


def _with_query(url: str, path_suffix: str = "", **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    path = parts.path.rstrip("/") + "/" + path_suffix if path_suffix else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


@dataclass
class Subscriber:
    user: str
    connection_id: str = ""
    closed: str | None = None  # why the service closed it, if it did
    messages: int = 0
    _ws: aiohttp.ClientWebSocketResponse | None = field(default=None, repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    async def connect(
        self, session: aiohttp.ClientSession, app: str, on_message: OnMessage
    ) -> None:
        headers = {"x-ms-client-principal-id": self.user}
        async with session.post(f"{app}/api/negotiate", headers=headers) as res:
            if res.status != 200:
                raise SubscriberError(f"app negotiate {res.status}: {await res.text()}")
            info = await res.json()
        url, token = info["url"], info["accessToken"]
        auth = {"Authorization": f"Bearer {token}"}
        negotiate = _with_query(url, "negotiate", negotiateVersion="1")
        async with session.post(negotiate, headers=auth) as res:
            if res.status != 200:
                raise SubscriberError(f"service negotiate {res.status}: {await res.text()}")
            neg = await res.json()
        self.connection_id = neg["connectionId"]
        ws_url = _with_query(url, id=neg.get("connectionToken", self.connection_id),
                             access_token=token).replace("http", "ws", 1)  # fmt: skip
        ws = await session.ws_connect(ws_url, autoping=True, max_msg_size=0)
        await ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
        first = await ws.receive(timeout=10)
        if first.type != aiohttp.WSMsgType.TEXT or json.loads(first.data.split(RS)[0]).get("error"):
            await ws.close()
            raise SubscriberError(f"handshake refused: {first.data!r}")
        self._ws = ws
        self._tasks = [
            asyncio.create_task(self._read(ws, on_message)),
            asyncio.create_task(self._ping(ws)),
        ]

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, on_message: OnMessage) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.time()
            for record in msg.data.split(RS):
                if not record:
                    continue
                frame = json.loads(record)
                kind = frame.get("type")
                if kind == 1 and frame.get("arguments"):
                    self.messages += 1
                    on_message(self.user, now, frame["target"], frame["arguments"][0])
                elif kind == 7:
                    self.closed = frame.get("error") or "closed"
        if self.closed is None:
            self.closed = "socket closed"

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # A client pings every 15 s so the service keeps it (its server timeout is 30 s).
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not ws.closed:
                await asyncio.sleep(15)
                await ws.send_str(json.dumps({"type": 6}) + RS)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self._ws.send_str(json.dumps({"type": 7}) + RS)
            await self._ws.close()


class SubscriberPool:
    """Open, hold and close many subscribers over one aiohttp session."""

    def __init__(self, app: str, on_message: OnMessage, *, parallel: int = 20) -> None:
        self.app = app
        self.on_message = on_message
        self.parallel = parallel
        self.subscribers: dict[str, Subscriber] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SubscriberPool:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_all()
        if self._session is not None:
            await self._session.close()

    async def open(self, users: list[str]) -> float:
        """Connect one subscriber per user (`parallel` at a time); seconds it took."""
        assert self._session is not None, "use `async with SubscriberPool(...)`"
        session = self._session
        gate = asyncio.Semaphore(self.parallel)
        started = time.monotonic()

        async def one(user: str) -> None:
            async with gate:
                sub = Subscriber(user)
                await sub.connect(session, self.app, self.on_message)
                self.subscribers[user] = sub

        await asyncio.gather(*(one(u) for u in users))
        return time.monotonic() - started

    async def close_all(self) -> None:
        subs, self.subscribers = list(self.subscribers.values()), {}
        await asyncio.gather(*(s.close() for s in subs), return_exceptions=True)
