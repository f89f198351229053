"""A Python SignalR client (pysignalr, negotiate v0) receives messages from the emulator."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from aiohttp import web
from pysignalr.client import SignalRClient

from local.signalr_emulator import SignalREmulator, client_audience, issue_token

from .helpers import HUB, negotiate_app


async def _run_client(
    client: SignalRClient, opened: asyncio.Event, got: list[Any]
) -> asyncio.Task[None]:
    async def on_open() -> None:
        opened.set()

    async def on_delta(args: list[Any]) -> None:
        got.append(args[0])

    client.on_open(on_open)
    client.on("delta", on_delta)
    return asyncio.create_task(client.run())


async def _send_user(emu: SignalREmulator, user: str, payload: Any) -> None:
    url = f"{emu.url}/api/hubs/{HUB}/users/{user}/:send"
    token = issue_token(emu.access_key, url)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url,
            params={"api-version": "2022-06-01"},
            json={"target": "delta", "arguments": [payload]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 202


@pytest.mark.parametrize("via", ["direct-negotiate-v0", "function-redirect"])
async def test_pysignalr_receives(via: str) -> None:
    async with SignalREmulator(port=0) as emu:
        runner = None
        if via == "direct-negotiate-v0":
            token = issue_token(emu.access_key, client_audience(emu.url, HUB), user_id="carol")
            # pysignalr applies access_token_factory only after negotiate; pass the header.
            client = SignalRClient(
                f"{emu.url}/client/?hub={HUB}", headers={"Authorization": f"Bearer {token}"}
            )
        else:
            runner = web.AppRunner(negotiate_app(emu))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            client = SignalRClient(
                f"http://127.0.0.1:{port}/api", headers={"x-ms-client-principal-id": "carol"}
            )
        opened = asyncio.Event()
        got: list[Any] = []
        task = await _run_client(client, opened, got)
        try:
            await asyncio.wait_for(opened.wait(), 10)
            for _ in range(100):  # the handshake completes just after on_open
                if emu.core.registry.hub(HUB).users.get("carol"):
                    break
                await asyncio.sleep(0.02)
            await _send_user(emu, "carol", {"seq": 1, "text": "hi"})
            await _send_user(emu, "carol", {"seq": 2, "text": "there"})
            for _ in range(200):
                if len(got) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert got == [{"seq": 1, "text": "hi"}, {"seq": 2, "text": "there"}]
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if runner is not None:
                await runner.cleanup()
