"""Local-only control endpoints (`/_emulator/...`): counters, reset, fault injection; and CORS.

`/_emulator/*` answers loopback callers only (403 otherwise). Faults apply to the REST
API (`/api/...`), never to client transports, so a test can make the app's sends fail
while its listeners stay connected.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import error_response

if TYPE_CHECKING:
    from .server import SignalREmulator

__all__ = ["FaultPlan", "control_routes", "cors_middleware", "cors_prepare", "stats_of"]

LOOPBACK = ("127.", "::1", "::ffff:127.")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FaultPlan:
    """What the next REST calls suffer. `count` None: until cleared."""

    rest_status: int | None = None
    count: int | None = None
    rest_delay_ms: int = 0
    path_contains: str | None = None
    retry_after_s: int | None = None

    @classmethod
    def parse(cls, body: Any) -> FaultPlan:
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        plan = cls(**body)
        for name in ("rest_status", "count", "rest_delay_ms", "retry_after_s"):
            value = getattr(plan, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative integer")
        if plan.rest_status is not None and not 400 <= plan.rest_status <= 599:
            raise ValueError("rest_status must be an HTTP error status (400-599)")
        if plan.path_contains is not None and not isinstance(plan.path_contains, str):
            raise ValueError("path_contains must be a string")
        return plan

    def active(self) -> bool:
        return bool(self.rest_delay_ms or (self.rest_status and self.count != 0))

    async def apply(self, path: str) -> bool:
        """Delay and/or fail one REST call; True when it must fail with `rest_status`."""
        if self.path_contains and self.path_contains not in path:
            return False
        if self.rest_delay_ms:
            await asyncio.sleep(self.rest_delay_ms / 1000)
        if self.rest_status is None or self.count == 0:
            return False
        if self.count is not None:
            self.count -= 1
        return True


def _loopback(request: web.Request) -> None:
    remote = request.remote or ""
    if not remote.startswith(LOOPBACK):
        raise error_response(403, "Forbidden", "The control endpoint is local-only")


def stats_of(emu: SignalREmulator) -> dict[str, Any]:
    core = emu.core
    totals = asdict(core.totals)
    hubs = {}
    for name, hub in core.registry.hubs.items():
        hubs[name] = {
            "connections": len(hub.connections),
            "users": len(hub.users),
            "groups": len(set(hub.groups) | set(hub.user_groups)),
            **asdict(hub.counters),
        }
    connections = {}
    for cid, (hub_name, user, counters) in core.history.items():
        hub_state = core.registry.find(hub_name)
        connections[cid] = {
            "hub": hub_name,
            "userId": user,
            "open": bool(hub_state and cid in hub_state.connections),
            **asdict(counters),
        }
    return {
        "connections": {
            "current": core.connected_count(),
            "peak": totals["connections_peak"],
            "opened": totals["connections_opened"],
        },
        "totals": totals,
        "hubs": hubs,
        "perConnection": connections,
        "faults": asdict(emu.faults),
    }


def control_routes(emu: SignalREmulator) -> list[web.RouteDef]:
    async def stats(request: web.Request) -> web.Response:
        _loopback(request)
        return web.json_response(stats_of(emu))

    async def reset(request: web.Request) -> web.Response:
        _loopback(request)
        emu.core.reset_counters()
        emu.faults = FaultPlan()
        return web.json_response({"reset": True})

    async def set_faults(request: web.Request) -> web.Response:
        _loopback(request)
        try:
            plan = FaultPlan.parse(json.loads(await request.text() or "{}"))
        except (ValueError, TypeError) as exc:
            raise error_response(400, "BadRequest", f"Invalid fault plan: {exc}") from exc
        emu.faults = plan
        return web.json_response(asdict(plan))

    async def get_faults(request: web.Request) -> web.Response:
        _loopback(request)
        return web.json_response(asdict(emu.faults))

    async def clear_faults(request: web.Request) -> web.Response:
        _loopback(request)
        emu.faults = FaultPlan()
        return web.json_response(asdict(emu.faults))

    async def disconnect(request: web.Request) -> web.Response:
        """Close connections as a service restart would (close message with allowReconnect).

        Body (all optional): {"connectionId": id, "hub": name, "userId": id,
        "allowReconnect": true, "error": text, "abort": false}; abort cuts the socket
        with no close message, as a network failure would.
        """
        _loopback(request)
        try:
            body = json.loads(await request.text() or "{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            raise error_response(400, "BadRequest", f"Invalid body: {exc}") from exc
        chosen = []
        for conn in emu.core.registry.live_connections():
            if body.get("connectionId") not in (None, conn.connection_id):
                continue
            if body.get("hub") is not None and str(body["hub"]).lower() != conn.hub:
                continue
            if body.get("userId") not in (None, conn.user_id):
                continue
            chosen.append(conn)
        for conn in chosen:
            if body.get("abort") and conn.on_abort is not None:
                conn.on_abort()
            else:
                emu.core.close(
                    conn,
                    str(body.get("error") or "Connection closed by the service."),
                    allow_reconnect=bool(body.get("allowReconnect", True)),
                )
        return web.json_response({"closed": [c.connection_id for c in chosen]})

    return [
        web.post("/_emulator/disconnect", disconnect),
        web.get("/_emulator/stats", stats),
        web.post("/_emulator/reset", reset),
        web.post("/_emulator/faults", set_faults),
        web.get("/_emulator/faults", get_faults),
        web.delete("/_emulator/faults", clear_faults),
    ]


def _cors_path(path: str) -> bool:
    return path == "/client" or path.startswith("/client/")


def cors_middleware(origins: tuple[str, ...]) -> Any:
    """Answer preflights for negotiate and the transports from the allowed origins."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and _cors_path(request.path):
            origin = request.headers.get("Origin")
            if origin is None or not request.headers.get("Access-Control-Request-Method"):
                return web.Response(status=204, headers={"Allow": "GET, POST, DELETE, OPTIONS"})
            if origin not in origins:
                raise error_response(403, "Forbidden", f"Origin {origin} is not allowed")
            asked = request.headers.get("Access-Control-Request-Headers", "")
            headers = {
                "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                "Access-Control-Max-Age": "600",
            }
            if asked:
                headers["Access-Control-Allow-Headers"] = asked
            return web.Response(status=204, headers=headers)
        return await handler(request)

    return middleware


def cors_prepare(origins: tuple[str, ...]) -> Any:
    """on_response_prepare hook: CORS headers for every client response (streams too)."""

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and origin in origins and _cors_path(request.path):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"

    return hook
