"""The data-plane REST API: 2022-06-01 / 2022-11-01 paths (`/api/hubs/{hub}/...`) and v1
paths (`/api/v1/hubs/{hub}/...`), dispatched by hand so that any percent-encoded user,
group or connection id works and every error has the documented JSON body.

Auth: `Authorization: Bearer` HS256 JWT signed with the AccessKey, `exp` in the future,
`aud` = the request URL without its query (compared normalised, see tokens.py).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from .errors import error_response, read_body, valid_group, valid_hub
from .tokens import TokenError, bearer_token, client_audience, issue_token, verify_token

if TYPE_CHECKING:
    from .connection import Connection
    from .server import SignalREmulator

__all__ = ["rest_routes"]

_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
OK = 200
ACCEPTED = 202
NO_CONTENT = 204


def rest_routes(emu: SignalREmulator) -> list[web.RouteDef]:
    async def handle(request: web.Request) -> web.StreamResponse:
        emu.core.totals.rest_requests += 1
        path = request.raw_path.split("?", 1)[0]
        if emu.faults.active() and await emu.faults.apply(path):
            emu.core.totals.rest_faults_injected += 1
            status = emu.faults.rest_status or 503
            headers = {}
            if emu.faults.retry_after_s is not None:
                headers["Retry-After"] = str(emu.faults.retry_after_s)
            raise error_response(
                status, "InjectedFault", f"Injected fault ({status})", headers=headers
            )
        segments = [unquote(s) for s in path.split("/")[2:]]
        while segments and segments[-1] == "":
            segments.pop()
        v1 = bool(segments) and segments[0] == "v1"
        if v1:
            segments = segments[1:]
        if segments == ["health"]:
            if request.method not in ("HEAD", "GET"):
                raise error_response(405, "MethodNotAllowed", "Use HEAD /api/health")
            return web.Response(status=OK)
        version = request.query.get("api-version")
        if not v1:
            if not version:
                raise error_response(
                    400, "BadRequest", "The api-version query parameter is required", "api-version"
                )
            if not _API_VERSION.match(version):
                raise error_response(
                    400, "BadRequest", f"Unsupported api-version {version}", "api-version"
                )
        _authorize(emu, request)
        if len(segments) < 2 or segments[0] != "hubs":
            raise error_response(404, "NotFound", "No such REST API path")
        hub = segments[1]
        if not valid_hub(hub):
            raise error_response(
                400,
                "BadRequest",
                "Invalid hub name: it must start with a "
                "letter and have only letters, digits and _ (1-128)",
                "hub",
            )
        return await _dispatch(emu, request, hub, segments[2:], v1, version or "")

    return [web.route("*", "/api/{tail:.*}", handle)]


def _authorize(emu: SignalREmulator, request: web.Request) -> None:
    token = bearer_token(request.headers, {})
    if token is None:
        raise error_response(401, "Unauthorized", "Authorization: Bearer <JWT> is required")
    try:
        verify_token(
            token,
            emu.access_key,
            emu.rest_audiences(request),
            keep_hub=False,
            leeway_s=emu.core.options.token_leeway_s,
        )
    except TokenError as exc:
        raise error_response(401, "Unauthorized", exc.reason) from exc


async def _payload(emu: SignalREmulator, request: web.Request) -> tuple[str, list[Any]]:
    limit = emu.core.options.max_body_bytes
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise error_response(400, "BadRequest", "The body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise error_response(400, "BadRequest", "The body must be a JSON object")
    fields = {k.lower(): v for k, v in body.items()}  # the service binds case-insensitively
    target = fields.get("target")
    if not isinstance(target, str) or not target:
        raise error_response(400, "BadRequest", "'target' is required", "target")
    arguments = fields.get("arguments", [])
    if arguments is None:
        arguments = []
    if not isinstance(arguments, list):
        raise error_response(400, "BadRequest", "'arguments' must be an array", "arguments")
    return target, arguments


def _group(name: str) -> str:
    if not valid_group(name):
        raise error_response(
            400, "BadRequest", "Invalid group name (1-1024 non-space characters)", "group"
        )
    return name


def _live(conns: list[Connection]) -> bool:
    # A connection the server has begun to close no longer exists for the REST API, even
    # while its close message is still being flushed: a DELETE is followed at once by a
    # 404 from the existence check, whatever the transport's timing.
    return any(not conn.closing for conn in conns)


def _status(ok: bool) -> web.Response:
    return web.Response(status=OK if ok else 404)


def _close_all(emu: SignalREmulator, conns: list[Connection], request: web.Request) -> None:
    excluded = set(request.query.getall("excluded", []))
    reason = request.query.get("reason")
    for conn in conns:
        if conn.connection_id not in excluded:
            emu.core.close(conn, _reason(reason))


def _reason(reason: str | None) -> str:
    return (
        f"Connection closed by the server: {reason}"
        if reason
        else "Connection closed by the server."
    )


async def _dispatch(
    emu: SignalREmulator,
    request: web.Request,
    hub_name: str,
    rest: list[str],
    v1: bool,
    version: str,
) -> web.StreamResponse:
    core = emu.core
    hub = core.registry.hub(hub_name)
    m = request.method
    send = (m == "POST" and rest and rest[-1] == ":send") or (m == "POST" and v1)
    parts = rest[:-1] if (m == "POST" and rest and rest[-1] == ":send") else rest
    if send:
        target, arguments = await _payload(emu, request)
        excluded = request.query.getall("excluded", [])
        match parts:
            case []:
                conns = hub.all_connections(excluded)
            case ["users", user]:
                conns = hub.user_connections(user)
            case ["connections", cid]:
                conns = [c for c in (hub.connections.get(cid),) if c is not None]
            case ["groups", group]:
                skip = set(excluded)
                conns = [
                    c for c in hub.group_connections(_group(group)) if c.connection_id not in skip
                ]
            case _:
                raise error_response(404, "NotFound", "No such REST API path")
        if core.deliver(hub_name, conns, target, arguments):
            # One turn of the loop first: the woken connection writers put the frame on their
            # sockets before this answer is built and written (the service accepts a send and
            # delivers it independently; the order of the two is not part of the API).
            await asyncio.sleep(0)
        return web.Response(status=ACCEPTED)
    exists = m in ("HEAD", "GET")
    match parts:
        case [":generateToken"] if m == "POST" and not v1:
            return _generate_token(emu, request, hub_name, version)
        case [":closeConnections"] if m == "POST":
            _close_all(emu, hub.all_connections(), request)
            return web.Response(status=NO_CONTENT)
        case ["connections", cid] if exists:
            return _status(_live([hub.connections[cid]] if cid in hub.connections else []))
        case ["connections", cid] if m == "DELETE":
            conn = hub.connections.get(cid)
            if conn is not None:
                core.close(conn, _reason(request.query.get("reason")))
            return web.Response(status=OK)
        case ["connections", cid, "groups"] if m == "DELETE":
            hub.remove_from_all_groups(cid)
            return web.Response(status=OK)
        case ["groups", group] if exists:
            return _status(_live(hub.group_connections(_group(group))))
        case ["groups", group, ":closeConnections"] if m == "POST":
            _close_all(emu, hub.group_connections(_group(group)), request)
            return web.Response(status=NO_CONTENT)
        case ["groups", group, "connections", cid] if m == "PUT":
            return _status(hub.add_to_group(_group(group), cid))
        case ["groups", group, "connections", cid] if m == "DELETE":
            return _status(hub.remove_from_group(_group(group), cid))
        case ["users", user] if exists:
            return _status(_live(hub.user_connections(user)))
        case ["users", user, ":closeConnections"] if m == "POST":
            _close_all(emu, hub.user_connections(user), request)
            return web.Response(status=NO_CONTENT)
        case ["users", user, "groups"] if m == "DELETE":
            hub.remove_user_from_all_groups(user)
            return web.Response(status=NO_CONTENT)
        case ["users", user, "groups", group] if m == "PUT":
            hub.add_user_to_group(_group(group), user, _ttl(request))
            return web.Response(status=OK)
        case ["users", user, "groups", group] if m == "DELETE":
            hub.remove_user_from_group(_group(group), user)
            return web.Response(status=NO_CONTENT)
        case ["users", user, "groups", group] if exists:
            return _status(hub.user_in_group(_group(group), user))
    raise error_response(404, "NotFound", f"No REST API for {m} on this path")


def _ttl(request: web.Request) -> int | None:
    raw = request.query.get("ttl")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise error_response(400, "BadRequest", "ttl must be a non-negative integer", "ttl")
    return int(raw)


def _generate_token(
    emu: SignalREmulator, request: web.Request, hub: str, version: str
) -> web.Response:
    if version < "2022-11-01":
        raise error_response(
            400, "BadRequest", ":generateToken needs api-version 2022-11-01 or later", "api-version"
        )
    raw = request.query.get("minutesToExpire", "60")
    if not raw.isdigit() or not 1 <= int(raw) <= 1440:
        raise error_response(
            400, "BadRequest", "minutesToExpire must be 1..1440", "minutesToExpire"
        )
    groups = request.query.getall("group", [])
    extra = {"asrs.s.gr": groups} if groups else None
    token = issue_token(
        emu.access_key,
        client_audience(emu.url, hub),
        user_id=request.query.get("userId") or None,
        lifetime_s=int(raw) * 60,
        extra=extra,
    )
    return web.json_response({"token": token})
