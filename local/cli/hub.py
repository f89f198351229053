"""A small SignalR client: the JSON hub protocol over WebSockets, as a browser connects.

The app's negotiate (`POST /api/negotiate`) redirects to the service (`{url, accessToken}`);
the client then negotiates with the service (v1: `connectionId` for REST addressing,
`connectionToken` for the transport), opens the WebSocket with the token as `access_token`,
shakes hands and receives invocations. Only what a listener needs: no invocations from the
client, no reconnect. Each received invocation is stamped with `time.perf_counter()` at the
moment its frame arrived (the benchmark measures with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from .api import ServiceDown

__all__ = ["HubClient", "HubMessage", "service_urls"]

RS = "\x1e"
_PING = json.dumps({"type": 6}) + RS
_PING_EVERY_S = 15.0  # the service drops a client silent for 30 s


@dataclass(frozen=True)
class HubMessage:
    target: str
    arguments: list[Any]
    at: float  # time.perf_counter() when the frame arrived


def service_urls(url: str) -> tuple[str, str]:
    """(negotiate URL, WebSocket URL without id) of the service URL negotiate redirected to."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    path = parts.path.rstrip("/")
    negotiate = urlunsplit(
        (parts.scheme, parts.netloc, path + "/negotiate",
         urlencode({**query, "negotiateVersion": "1"}), "")
    )  # fmt: skip
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    socket = urlunsplit((scheme, parts.netloc, path + "/", urlencode(query), ""))
    return negotiate, socket


class HubClient:
    """Connect with `await HubClient.connect(info)`; read `messages` (an asyncio.Queue)."""

    def __init__(self, ws: ClientConnection, connection_id: str) -> None:
        self.connection_id = connection_id
        self.messages: asyncio.Queue[HubMessage] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self._ws = ws
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]

    @classmethod
    async def connect(cls, info: dict[str, Any], wait_s: float = 10.0) -> HubClient:
        """`info` is the app's negotiate answer: `{url, accessToken}`."""
        negotiate_url, socket_url = service_urls(str(info["url"]))
        token = str(info["accessToken"])
        try:
            async with httpx.AsyncClient(timeout=wait_s) as http:
                res = await http.post(negotiate_url, headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            raise ServiceDown(f"cannot reach the SignalR service at {negotiate_url}") from exc
        if res.status_code != 200:
            raise ServiceDown(f"SignalR negotiate answered HTTP {res.status_code}")
        body = res.json()
        conn_token = body.get("connectionToken") or body["connectionId"]
        sep = "&" if "?" in socket_url else "?"
        url = f"{socket_url}{sep}{urlencode({'id': conn_token, 'access_token': token})}"
        try:
            ws = await websockets.connect(url, open_timeout=wait_s, max_size=2**22)
            await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
            first = await asyncio.wait_for(ws.recv(), wait_s)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise ServiceDown(f"SignalR WebSocket failed: {type(exc).__name__}") from exc
        text = first if isinstance(first, str) else first.decode()
        handshake, _, rest = text.partition(RS)
        if json.loads(handshake or "{}").get("error"):
            await ws.close()
            raise ServiceDown(f"SignalR handshake refused: {json.loads(handshake)['error']}")
        client = cls(ws, str(body["connectionId"]))
        if rest:
            client._handle(rest, time.perf_counter())
        return client

    def _handle(self, frame: str, at: float) -> None:
        for raw in frame.split(RS):
            if not raw:
                continue
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == 1:
                self.messages.put_nowait(HubMessage(msg["target"], msg.get("arguments", []), at))
            elif kind == 7:
                self.close_reason = msg.get("error") or "closed by the service"

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                self._handle(
                    frame if isinstance(frame, str) else frame.decode(), time.perf_counter()
                )
        except websockets.WebSocketException as exc:
            self.close_reason = self.close_reason or f"connection lost ({type(exc).__name__})"
        finally:
            self.close_reason = self.close_reason or "connection closed"
            self.closed.set()

    async def _ping(self) -> None:
        with contextlib.suppress(websockets.WebSocketException):
            while True:
                await asyncio.sleep(_PING_EVERY_S)
                await self._ws.send(_PING)

    async def next(self, wait_s: float) -> HubMessage | None:
        """The next invocation, or None after `wait_s` s or once the connection closed."""
        if self.messages.empty() and self.closed.is_set():
            return None
        getter = asyncio.ensure_future(self.messages.get())
        closer = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({getter, closer}, timeout=wait_s,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        closer.cancel()
        if getter in done:
            return getter.result()
        getter.cancel()
        return None

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await self._ws.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
