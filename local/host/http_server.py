"""The host's HTTP listener: its route table and key ring from the index, its socket, and
uvicorn serving the `HttpFront` on that socket without taking over signals.

The host binds the socket itself (before anything starts) so that a port in use fails
startup with a clear message, and so that port 0 can be resolved to the real port early.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import uvicorn

from .http_front import KeyRing
from .http_protocol import JsonErrorH11Protocol
from .index import FunctionSpec, IndexError_
from .routing import RouteError, RouteTable, parse_template

__all__ = ["HttpServer", "ListenError", "bind_socket", "build_key_ring", "build_routes"]


class ListenError(RuntimeError):
    """The listening socket cannot be had: the port is in use, or the address is wrong."""


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"port {port} on {host} is already in use") from exc
        raise ListenError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(512)
    sock.setblocking(False)
    return sock


def build_routes(functions: Iterable[FunctionSpec], prefix: str) -> RouteTable[FunctionSpec]:
    """Every HTTP function's route under host.json's `routePrefix`; IndexError_ on a bad one."""
    table: RouteTable[FunctionSpec] = RouteTable()
    for spec in functions:
        if spec.trigger_type != "httpTrigger":
            continue
        route = str(spec.trigger.get("route") or spec.name).strip("/")
        template = f"{prefix}/{route}" if prefix else route
        try:
            table.add(parse_template(template, spec, spec.trigger.get("methods")))
        except RouteError as exc:
            raise IndexError_(f"function {spec.name!r}: route {route!r}: {exc}") from exc
    return table


def build_key_ring(functions: Iterable[FunctionSpec], environ: Mapping[str, str]) -> KeyRing:
    """The master and function keys; IndexError_ when a function's authLevel needs a missing one."""
    keys = KeyRing(
        environ.get("LOCAL_HOST_MASTER_KEY") or None,
        environ.get("LOCAL_HOST_FUNCTION_KEY") or None,
    )
    for spec in functions:
        level = str(spec.trigger.get("authLevel", "")).lower()
        if spec.trigger_type != "httpTrigger" or level == "anonymous":
            continue
        if keys.master is None and (level == "admin" or keys.function is None):
            needed = "LOCAL_HOST_MASTER_KEY" if level == "admin" else "LOCAL_HOST_FUNCTION_KEY"
            raise IndexError_(
                f"function {spec.name!r}: authLevel {level!r} needs a key: set {needed} "
                "(app setting or environment), or make the function anonymous"
            )
    return keys


class HttpServer:
    """uvicorn serving `app` on a bound socket; stopping lets requests finish, up to a bound."""

    def __init__(self, app: Any, sock: socket.socket, shutdown_timeout: float) -> None:
        # JsonErrorH11Protocol: requests h11 refuses get a JSON 4xx, not uvicorn's plain text.
        # ws="none": HTTP triggers have no WebSocket; an Upgrade request is plain HTTP (with
        # a WebSocket protocol the front, which never accepts one, would make it a 500).
        config = uvicorn.Config(
            app, http=JsonErrorH11Protocol, ws="none", log_config=None, access_log=False,
            lifespan="off", server_header=False, timeout_graceful_shutdown=int(shutdown_timeout),
        )  # fmt: skip
        config.load()
        self._sock = sock
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Serve; False if the listener stopped during startup (its error, if any, raises)."""
        # _serve() is serve() without uvicorn's signal capture: the host handles signals.
        self._task = asyncio.create_task(self._server._serve(sockets=[self._sock]))
        for _ in range(1000):  # uvicorn exposes no startup event; `started` flips within ms
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            await self._task
            return False
        return True

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
