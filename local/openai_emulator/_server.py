"""Running the emulator: in-process on an event loop, or in a background thread.

The socket is bound before uvicorn starts, so `port=0` gives a free port that is known
at once. Stopping first releases every paced or stalled stream, then stops uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import uvicorn

from ._app import build_app
from ._checks import API_VERSIONS, EmulatorState
from ._pacing import Pacing
from ._profiles import DEFAULT_DEPLOYMENTS, Profile
from ._stats import Stats
from ._timeline import Timeline

__all__ = ["DEFAULT_API_KEY", "OpenAIEmulator", "run_in_thread"]

DEFAULT_API_KEY = "local-emulator-key"  # not a secret: the emulator accepts nothing else


class _DropCutNotice(logging.Filter):
    """A `cut` fault ends a response on purpose; uvicorn's complaint about it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropCutNotice())


class OpenAIEmulator:
    """A local Azure OpenAI endpoint. `await start()`, use `.endpoint`, `await stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = DEFAULT_API_KEY,
        bearer_token: str | None = None,
        deployments: Mapping[str, Profile] | None = None,
        pacing: Pacing | None = None,
        reasoning_ttft_ms: float | None = None,
        api_versions: frozenset[str] = API_VERSIONS,
        timeline: bool = False,
    ) -> None:
        profiles = dict(deployments if deployments is not None else DEFAULT_DEPLOYMENTS)
        if reasoning_ttft_ms is not None:
            profiles = {
                name: replace(p, ttft_ms=reasoning_ttft_ms) if p.reasoning else p
                for name, p in profiles.items()
            }
        self.host = host
        self.port = port
        self.state = EmulatorState(
            api_key=api_key,
            deployments=profiles,
            pacing=pacing or Pacing(),
            bearer_token=bearer_token,
            api_versions=api_versions,
            timeline=Timeline() if timeline else None,
        )
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        """The resource endpoint (what AZURE_OPENAI_ENDPOINT holds)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.state.api_key

    @property
    def stats(self) -> Stats:
        return self.state.stats

    async def start(self) -> OpenAIEmulator:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on such sockets, and
        # with Nagle on, one small SSE event per delta waits for the peer's delayed ACK.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        self.state.stopping = asyncio.Event()
        config = uvicorn.Config(
            build_app(self.state),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self.state.stopping.set()
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    async def __aenter__(self) -> OpenAIEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@contextmanager
def run_in_thread(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Iterator[OpenAIEmulator]:
    """Run an emulator on its own event loop in a daemon thread for sync code."""
    emulator = OpenAIEmulator(host, port, **options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(emulator.start())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="openai-emulator", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise failure[0]
    try:
        yield emulator
    finally:
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
