"""Shared pieces of the SignalR emulator tests: a stand-in function-app negotiate endpoint,
a REST caller that signs its own tokens, and a small server-in-a-thread runner."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from local.signalr_emulator import (
    EmulatorThread,
    SignalREmulator,
    client_audience,
    issue_token,
)

__all__ = ["HUB", "Rest", "negotiate_app", "serve_in_thread"]

HUB = "stream"
API_VERSION = "2022-06-01"


def negotiate_app(emu: EmulatorThread | SignalREmulator, hub: str = HUB) -> web.Application:
    """`POST /api/negotiate` answering `{url, accessToken}` like the function app does.

    The user id comes from `x-ms-client-principal-id` (the app's dev identity header)."""

    async def negotiate(request: web.Request) -> web.Response:
        user = request.headers.get("x-ms-client-principal-id")
        url = client_audience(emu.url, hub)
        token = issue_token(emu.access_key, url, user_id=user, lifetime_s=600)
        return web.json_response({"url": url, "accessToken": token})

    app = web.Application()
    app.router.add_post("/api/negotiate", negotiate)
    return app


@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """Serve `app` on a free loopback port from a background thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        holder["port"] = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        holder["runner"] = runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@dataclass
class Rest:
    """Calls the emulator's REST API the way the app does: one signed token per request."""

    emu: EmulatorThread
    hub: str = HUB
    key: str | None = None

    def url(self, path: str) -> str:
        return f"{self.emu.url}/api/hubs/{self.hub}{path}"

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        lifetime_s: float = 60,
    ) -> httpx.Response:
        url = self.url(path)
        if token is None:
            token = issue_token(self.key or self.emu.access_key, url, lifetime_s=lifetime_s)
        query = {"api-version": API_VERSION, **(params or {})}
        headers = {"Authorization": f"Bearer {token}"} if token else {}  # "": no header
        return httpx.request(method, url, json=json, params=query, headers=headers, timeout=10)

    def send(self, path: str, target: str, *args: Any) -> httpx.Response:
        response = self.call(
            "POST", f"{path}/:send", json={"target": target, "arguments": list(args)}
        )
        assert response.status_code == 202, response.text
        return response

    def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.emu.url}/_emulator/{path}", json=body, timeout=10)


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
