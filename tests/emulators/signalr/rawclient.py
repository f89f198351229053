"""Raw WebSocket SignalR clients for load tests: a healthy one (websockets library) and a
stalled one that completes the handshake and then never reads a byte."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

import httpx
import websockets

from local.signalr_emulator import SignalREmulator, client_audience, issue_token

__all__ = ["connect_healthy", "connect_stalled", "negotiate"]

RS = "\x1e"


async def negotiate(
    http: httpx.AsyncClient, emu: SignalREmulator, hub: str, user: str | None = None
) -> tuple[str, str, str]:
    """(connectionId, connectionToken, access token) from a v1 negotiate."""
    token = issue_token(emu.access_key, client_audience(emu.url, hub), user_id=user)
    response = await http.post(
        f"{emu.url}/client/negotiate",
        params={"hub": hub, "negotiateVersion": "1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    return body["connectionId"], body["connectionToken"], token


async def connect_healthy(
    http: httpx.AsyncClient, emu: SignalREmulator, hub: str, user: str | None = None
) -> tuple[str, Any]:
    cid, conn_token, token = await negotiate(http, emu, hub, user)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{emu.port}/client/?hub={hub}&id={conn_token}",
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
    )
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    answer = await ws.recv()
    assert str(answer).startswith("{}" + RS), answer  # a ping may ride along
    return cid, ws


def _masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


async def connect_stalled(
    http: httpx.AsyncClient, emu: SignalREmulator, hub: str
) -> tuple[str, asyncio.StreamWriter]:
    """Handshake over a socket with a tiny receive buffer, then never read again."""
    cid, conn_token, token = await negotiate(http, emu, hub)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", emu.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /client/?hub={hub}&id={conn_token} HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    writer.write(_masked_text_frame(json.dumps({"protocol": "json", "version": 1}) + RS))
    await writer.drain()
    return cid, writer
