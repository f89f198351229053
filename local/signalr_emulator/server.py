"""`SignalREmulator`: the aiohttp server around `EmulatorCore`, in-process or in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .control import FaultPlan, control_routes, cors_middleware, cors_prepare, stats_of
from .core import EmulatorCore, EmulatorOptions
from .rest import rest_routes
from .transports import client_routes

__all__ = ["DEFAULT_ACCESS_KEY", "EmulatorThread", "SignalREmulator", "run_in_thread"]

# The official emulator's fixed, public key (not a secret).
DEFAULT_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"


class SignalREmulator:
    """A local Azure SignalR Service (Serverless mode). `port=0` picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str = DEFAULT_ACCESS_KEY,
        options: EmulatorOptions | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.access_key = access_key
        self.core = EmulatorCore(options or EmulatorOptions())
        self.faults = FaultPlan()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    # --- addresses ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connection_string(self) -> str:
        return (
            f"Endpoint=http://{self.host};Port={self.port};AccessKey={self.access_key};Version=1.0;"
        )

    def _bases(self, request: web.Request) -> list[str]:
        return [self.url, f"{request.scheme}://{request.host}"]

    def client_audiences(self, request: web.Request, hub: str) -> list[str]:
        return [f"{base}/client/?hub={hub}" for base in self._bases(request)]

    def rest_audiences(self, request: web.Request) -> list[str]:
        raw = request.raw_path.split("?", 1)[0]
        return [base + path for base in self._bases(request) for path in (raw, request.path)]

    def stats(self) -> dict[str, Any]:
        return stats_of(self)

    # --- lifecycle ---------------------------------------------------------------------
    def build_app(self) -> web.Application:
        origins = self.core.options.cors_origins
        app = web.Application(
            middlewares=[cors_middleware(origins)],
            client_max_size=self.core.options.max_body_bytes,
        )
        app.on_response_prepare.append(cors_prepare(origins))
        app.add_routes(client_routes(self))
        app.add_routes(rest_routes(self))
        app.add_routes(control_routes(self))
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.build_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1])
        self._ticker = asyncio.create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.core.options.ping_interval_s)
            self.core.tick()

    async def stop(self) -> None:
        """Send every client a close message, give them a moment, then shut down."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        conns = self.core.registry.live_connections()
        for conn in conns:
            self.core.close(conn, "Server is shutting down.", allow_reconnect=True)
        deadline = asyncio.get_running_loop().time() + self.core.options.close_grace_s + 0.5
        while any(c.state != "closed" for c in conns):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        for conn in conns:
            self.core.finish(conn)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SignalREmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass
class EmulatorThread:
    """Handle of an emulator running on its own event loop in a background thread."""

    emulator: SignalREmulator
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def port(self) -> int:
        return self.emulator.port

    @property
    def connection_string(self) -> str:
        return self.emulator.connection_string

    @property
    def access_key(self) -> str:
        return self.emulator.access_key

    def call(self, fn: Any, *args: Any) -> Any:
        """Run a plain function on the emulator's loop (its state is not thread-safe)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call(self.emulator.stats)
        return result

    def stop(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.emulator.stop(), self.loop).result(15)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(15)


@contextlib.contextmanager
def run_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    access_key: str = DEFAULT_ACCESS_KEY,
    options: EmulatorOptions | None = None,
) -> Iterator[EmulatorThread]:
    emulator = SignalREmulator(host, port, access_key, options)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(emulator.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name="signalr-emulator", daemon=True)
    thread.start()
    started.wait(15)
    if failure:
        raise RuntimeError("the SignalR emulator did not start") from failure[0]
    handle = EmulatorThread(emulator, loop, thread)
    try:
        yield handle
    finally:
        handle.stop()
