"""Client endpoints: negotiate, WebSockets, Server-Sent Events and long polling.

Follows TransportProtocols.md: `POST /client/negotiate?hub=` answers v0 (connectionId)
or v1 (connectionId + connectionToken); `GET /client/?hub=&id=` opens a WebSocket, an
event stream (`Accept: text/event-stream`) or a poll; `POST ?id=` carries client data for
SSE and long polling; `DELETE ?id=` ends a long-polling connection. A WebSocket without
`id` is accepted too (skipNegotiation; pysignalr does this after a redirect). Every
request needs a client token whose audience is this endpoint's `/client/?hub=` URL.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .connection import Connection
from .errors import error_response, read_body, valid_hub
from .tokens import TokenError, bearer_token, user_id_of, verify_token

if TYPE_CHECKING:
    from .server import SignalREmulator

__all__ = ["client_routes"]

TRANSPORTS = [
    {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
    {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
    {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
]


def client_routes(emu: SignalREmulator) -> list[web.RouteDef]:
    async def negotiate(request: web.Request) -> web.StreamResponse:
        hub, claims = _authorize(emu, request)
        version = request.query.get("negotiateVersion", "0")
        v1 = version.isdigit() and int(version) >= 1
        conn = emu.core.negotiate(hub, user_id_of(claims), with_token=v1)
        body: dict[str, Any] = {
            "negotiateVersion": 1 if v1 else 0,
            "connectionId": conn.connection_id,
            "availableTransports": TRANSPORTS,
        }
        if v1:
            body["connectionToken"] = conn.token
        return web.json_response(body)

    async def connect(request: web.Request) -> web.StreamResponse:
        hub, claims = _authorize(emu, request)
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        token = request.query.get("id")
        if not token:
            if request.method == "GET" and is_ws:
                conn = emu.core.negotiate(hub, user_id_of(claims), with_token=False)
                return await _websocket(emu, request, conn)
            raise error_response(400, "BadRequest", "Connection ID required", "id")
        found = emu.core.registry.by_token.get(token)
        if found is None or found.is_closed:
            raise error_response(404, "NotFound", "No Connection with that ID", "id")
        conn = found
        if conn.hub != hub.lower() or conn.user_id != user_id_of(claims):
            raise error_response(403, "Forbidden", "The connection belongs to another user or hub")
        if request.method == "POST":
            return await _receive(emu, request, conn)
        if request.method == "DELETE":
            emu.core.finish(conn)
            return web.Response(status=202, text="")
        if is_ws:
            return await _claim(emu, request, conn, "WebSockets", _websocket)
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await _claim(emu, request, conn, "ServerSentEvents", _event_stream)
        return await _poll(emu, request, conn)

    return [
        web.post("/client/negotiate", negotiate),
        web.post("/client/negotiate/", negotiate),
        web.route("*", "/client", connect),
        web.route("*", "/client/", connect),
    ]


def _authorize(emu: SignalREmulator, request: web.Request) -> tuple[str, dict[str, Any]]:
    hub = request.query.get("hub", "")
    if not hub:
        raise error_response(400, "BadRequest", "The 'hub' query parameter is required", "hub")
    if not valid_hub(hub):
        raise error_response(400, "BadRequest", "Invalid hub name", "hub")
    token = bearer_token(request.headers, request.query)
    if token is None:
        raise error_response(401, "Unauthorized", "No access token (Authorization or access_token)")
    try:
        claims = verify_token(
            token,
            emu.access_key,
            emu.client_audiences(request, hub),
            keep_hub=True,
            leeway_s=emu.core.options.token_leeway_s,
        )
    except TokenError as exc:
        raise error_response(401, "Unauthorized", exc.reason) from exc
    return hub, claims


async def _claim(
    emu: SignalREmulator, request: web.Request, conn: Connection, name: str, run: Any
) -> web.StreamResponse:
    if conn.transport is not None:
        raise error_response(400, "BadRequest", f"The connection already uses {conn.transport}")
    response: web.StreamResponse = await run(emu, request, conn)
    return response


async def _websocket(
    emu: SignalREmulator, request: web.Request, conn: Connection
) -> web.StreamResponse:
    ws = web.WebSocketResponse(
        autoping=True, heartbeat=None, max_msg_size=emu.core.options.max_body_bytes
    )
    await ws.prepare(request)
    emu.core.attach(conn, "WebSockets")
    transport = request.transport
    conn.on_abort = transport.abort if transport is not None else None

    async def writer() -> None:
        while True:
            await conn.outbox.wait(None)
            text = conn.outbox.take_all()
            if text:
                await ws.send_str(text)
                conn.counters.written_frames += 1
            if conn.closing and not len(conn.outbox):
                await ws.close()
                return

    task = asyncio.create_task(writer())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                emu.core.feed(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                emu.core.close(
                    conn,
                    "Connection closed with an error: binary frames are not "
                    "supported by the JSON protocol.",
                )
    finally:
        if conn.closing and not task.done():  # let the close message out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), 0.2)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        emu.core.finish(conn)
    return ws


def _sse_encode(text: str) -> bytes:
    lines = "".join(f"data: {line}\r\n" for line in text.split("\n"))
    return (lines + "\r\n").encode("utf-8")


async def _event_stream(
    emu: SignalREmulator, request: web.Request, conn: Connection
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    emu.core.attach(conn, "ServerSentEvents")
    transport = request.transport
    conn.on_abort = transport.abort if transport is not None else None
    try:
        await response.write(b":\r\n\r\n")  # flushes the headers so the client sees "open"
        while True:
            await conn.outbox.wait(1.0)
            if transport is None or transport.is_closing():
                break
            text = conn.outbox.take_all()
            if text:
                await response.write(_sse_encode(text))
                conn.counters.written_frames += 1
            if conn.closing and not len(conn.outbox):
                break
    except (ConnectionError, RuntimeError):
        pass
    finally:
        emu.core.finish(conn)
    return response


async def _receive(emu: SignalREmulator, request: web.Request, conn: Connection) -> web.Response:
    if conn.transport not in ("ServerSentEvents", "LongPolling"):
        raise error_response(400, "BadRequest", "POST is only for SSE and long polling")
    data = await read_body(request, emu.core.options.max_body_bytes)
    emu.core.feed(conn, data.decode("utf-8", errors="replace"))
    return web.Response(status=200, text="")


async def _poll(emu: SignalREmulator, request: web.Request, conn: Connection) -> web.Response:
    core = emu.core
    if conn.transport is None:  # the first poll only establishes the connection
        core.attach(conn, "LongPolling")
        return web.Response(status=200, body=b"", content_type="text/plain")
    if conn.transport != "LongPolling":
        raise error_response(400, "BadRequest", f"The connection uses {conn.transport}")
    if conn.is_closed or (conn.closing and not len(conn.outbox)):
        core.finish(conn)
        return web.Response(status=204)
    conn.poll_generation += 1
    generation = conn.poll_generation
    conn.outbox.wake()  # ends an older poll still waiting
    conn.polling = True
    try:
        deadline = asyncio.get_running_loop().time() + core.options.poll_timeout_s
        while not len(conn.outbox) and not conn.is_closed:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not await conn.outbox.wait(left) or generation != conn.poll_generation:
                break
        if generation != conn.poll_generation:
            return web.Response(status=200, body=b"", content_type="text/plain")
        text = conn.outbox.take_all()
    finally:
        if generation == conn.poll_generation:
            conn.polling = False
        conn.last_activity = core.clock()
    if not text and conn.is_closed:
        return web.Response(status=204)
    if text:
        conn.counters.written_frames += 1
    return web.Response(status=200, body=text.encode("utf-8"), content_type="text/plain")
