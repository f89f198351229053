"""The host: settings, function index, triggers, durable engine and their lifecycle.

Startup order follows `func start`: app settings into the environment, host.json, import and
index the app (refusing unsupported triggers and bindings), then the durable engine, the
queue and timer listeners, and last the HTTP listener. Shutdown (SIGINT/SIGTERM, or `stop()`)
stops accepting requests and fetching messages, lets running invocations finish for up to
`shutdown_timeout` seconds, then stops the durable engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.settings_files import (
    LocalSettings,
    apply_to_environ,
    dev_storage_connection_string,
    load_local_settings,
)

from .config import HostConfig, load_host_json
from .http_front import HttpFront, HttpLimits
from .http_server import HttpServer, ListenError, bind_socket, build_key_ring, build_routes
from .index import DURABLE_TRIGGERS, FunctionSpec, IndexError_, load_functions, resolve_expression
from .invoker import InvocationResult, Invoker
from .logs import HOST_LOGGER, install_record_factory
from .queue_listener import QueueListener
from .routing import RouteTable
from .storage import Storage
from .timers import TimerListener, timer_schedule

__all__ = ["Host", "HostError", "HostOptions"]


class HostError(RuntimeError):
    """The host cannot start; the message says why (port taken, bad app, bad settings)."""


@dataclass
class HostOptions:
    app_dir: Path
    port: int = 7071  # 0: a free port
    bind: str = "127.0.0.1"
    durable_rpc_port: int = 17071
    dev_storage_ports: tuple[int, int, int] = (10000, 10001, 10002)
    shutdown_timeout: float = 30.0
    queue_fetch_visibility: float = 600.0  # seconds a fetched message stays invisible
    queue_min_polling: float = 0.1
    max_body_bytes: int | None = None  # None: FUNCTIONS_REQUEST_BODY_SIZE_LIMIT or 100 MB
    extra: dict[str, Any] = field(default_factory=dict)


async def _close_durable_client_session() -> None:
    """The durable SDK's client keeps one module-level aiohttp session; the worker closes it
    when it exits, so do we (else aiohttp warns about an unclosed session at exit)."""
    module = sys.modules.get("azure.durable_functions.models.utils.http_utils")
    close = getattr(module, "_close_session", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


async def _close_app_services() -> None:
    """The app's shared clients (the LLM and SignalR aiohttp sessions, the table and queue
    clients) live in `relay.services` for the life of the worker; on Azure the worker process
    just exits, here the host stops first, so close them (else aiohttp warns about unclosed
    sessions and connectors at exit). Looked up only if the app imported it."""
    module = sys.modules.get("relay.services")
    reset = getattr(module, "reset_services", None)
    if reset is not None:
        with contextlib.suppress(Exception):
            await reset()


class Host:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.log = logging.getLogger(HOST_LOGGER)
        self.settings: LocalSettings | None = None
        self.config: HostConfig | None = None
        self.functions: list[FunctionSpec] = []
        self.engine: Any = None
        self.storage: Storage | None = None
        self.invoker: Invoker | None = None
        self.front: HttpFront | None = None
        self.queue_listeners: list[QueueListener] = []
        self.timers: list[TimerListener] = []
        self._sock: socket.socket | None = None
        self._http: HttpServer | None = None
        self.port = options.port
        install_record_factory()

    # -- startup ---------------------------------------------------------------------------

    def _load(self) -> None:
        app_dir = self.options.app_dir.resolve()
        self.settings = load_local_settings(app_dir)
        apply_to_environ(self.settings)  # the environment wins, as with func start
        self.config = load_host_json(app_dir, os.environ)
        self.functions = load_functions(app_dir, os.environ)

    def _storage_connection(self) -> str:
        value = os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 (the real name)
        if not value:
            raise HostError("AzureWebJobsStorage is not set (needed by queue, timer and durable)")
        return dev_storage_connection_string(value, self.options.dev_storage_ports)

    def _make_engine(self, durable: list[FunctionSpec]) -> Any:
        try:
            from local.durable import DurableEngine
        except ImportError as exc:
            names = ", ".join(s.name for s in durable) or "durableClient bindings"
            raise HostError(f"durable functions ({names}) need local.durable: {exc}") from exc
        assert self.config is not None
        return DurableEngine(
            storage_connection_string=self._storage_connection(),
            host_json=self.config.raw,
            functions=[s.function for s in durable],
            rpc_host="127.0.0.1",
            rpc_port=self.options.durable_rpc_port,
            logger=logging.getLogger("Host.Durable"),
        )

    async def start(self) -> None:
        try:
            self._load()
            assert self.config is not None and self.settings is not None
            routes = build_routes(self.functions, self.config.http.route_prefix)
            keys = build_key_ring(self.functions, os.environ)
            durable = [s for s in self.functions if s.trigger_type in DURABLE_TRIGGERS]
            needs_client = any(
                b["type"] == "durableClient" for s in self.functions for b in s.bindings
            )
            self._sock = bind_socket(self.options.bind, self.options.port)
            self.port = self._sock.getsockname()[1]
            self.storage = Storage(
                os.environ,
                encoding=self.config.queues.message_encoding,
                dev_ports=self.options.dev_storage_ports,
            )
            self.invoker = Invoker(
                app_dir=str(self.options.app_dir.resolve()),
                function_timeout=self.config.function_timeout,
            )
            for spec in self.functions:
                if spec.trigger_type == "queueTrigger":
                    where = f"function {spec.name!r}"
                    queue = resolve_expression(str(spec.trigger["queueName"]), os.environ, where)
                    self.storage.connection_string(spec.trigger.get("connection"))
                    self.queue_listeners.append(
                        QueueListener(
                            spec, queue.lower(), self.storage, self.config.queues,
                            self._execute_ok,
                            fetch_visibility=self.options.queue_fetch_visibility,
                            min_polling=self.options.queue_min_polling,
                        )
                    )  # fmt: skip
                elif spec.trigger_type == "timerTrigger":
                    schedule = timer_schedule(spec, os.environ)
                    self.timers.append(TimerListener(spec, schedule, self._execute_ok))
            if durable or needs_client:
                self.engine = self._make_engine(durable)
        except (IndexError_, ValueError, ListenError) as exc:
            await self._close_partial()
            raise HostError(str(exc)) from exc
        except HostError:
            await self._close_partial()
            raise
        if self.engine is not None:
            await self.engine.start()
        for listener in self.queue_listeners:
            listener.start()
        for timer in self.timers:
            timer.start()
        origins = self.settings.cors or [
            f"http://127.0.0.1:{self.port}",
            f"http://localhost:{self.port}",
        ]
        limit = self.options.max_body_bytes or int(
            os.environ.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "104857600")
        )
        http = self.config.http
        self.front = HttpFront(
            routes, self._execute, origins=origins,
            cors_credentials=self.settings.cors_credentials,
            limits=HttpLimits(limit, http.max_outstanding_requests, http.max_concurrent_requests),
            keys=keys,
        )  # fmt: skip
        self._http = HttpServer(self.front, self._sock, self.options.shutdown_timeout)
        if not await self._http.start():
            raise HostError("the HTTP listener stopped during startup")
        self._announce(routes)

    def _announce(self, routes: RouteTable[FunctionSpec]) -> None:
        self.log.info("Functions:")
        base = f"http://{self.options.bind}:{self.port}"
        for route in routes.routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "ALL"
            self.log.info("    %s: [%s] %s/%s", route.target.name, methods, base, route.template)
        for spec in self.functions:
            if spec.trigger_type != "httpTrigger":
                self.log.info("    %s: %s", spec.name, spec.trigger_type)
        self.log.info("Host started on %s", base)

    async def _close_partial(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.storage is not None:
            await self.storage.close()

    # -- invocation ------------------------------------------------------------------------

    async def _execute(
        self, spec: FunctionSpec, inputs: dict[str, Any], reason: str
    ) -> InvocationResult:
        assert self.invoker is not None and self.storage is not None
        for binding in spec.inputs():
            if binding["type"] == "durableClient" and self.engine is not None:
                inputs.setdefault(binding["name"], self.engine.client_binding_json())
        result = await self.invoker.invoke(spec, inputs, reason)
        if not result.ok:
            return result
        # Output bindings are flushed after the function succeeds, as in the host.
        for binding in spec.outputs():
            if binding["type"] != "queue":
                continue
            name = binding["name"]
            value = result.value if name == "$return" else result.outputs.get(name)
            queue = resolve_expression(str(binding["queueName"]), os.environ, spec.name).lower()
            try:
                await self.storage.write_output(binding, value, queue)
            except Exception as exc:  # a failed flush fails the invocation, as in the host
                self.log.error(
                    "Function '%s': writing output binding '%s' failed: %s", spec.name, name, exc
                )
                result.ok = False
                result.error = exc
        return result

    async def _execute_ok(self, spec: FunctionSpec, inputs: dict[str, Any], reason: str) -> bool:
        return (await self._execute(spec, inputs, reason)).ok

    # -- shutdown --------------------------------------------------------------------------

    async def stop(self) -> None:
        timeout = self.options.shutdown_timeout
        self.log.info("Stopping the host")
        if self.front is not None:
            self.front.accepting = False
        await asyncio.gather(
            *(q.stop(timeout) for q in self.queue_listeners),
            *(t.stop(timeout) for t in self.timers),
        )
        if self._http is not None:
            await self._http.stop()
        if self.invoker is not None and not await self.invoker.wait_idle(timeout):
            self.log.warning("Invocations still running after %ss; stopping anyway", timeout)
        if self.engine is not None:
            await self.engine.stop()
        await _close_durable_client_session()
        await _close_app_services()
        if self.storage is not None:
            await self.storage.close()
        if self.invoker is not None:
            self.invoker.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.log.info("Host stopped")

    async def run(self) -> None:
        """Start, serve until SIGINT or SIGTERM, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await self.start()
        try:
            await stopping.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
