"""A REST send's frame is written to the target's WebSocket before the send is answered."""

from __future__ import annotations

import httpx
from aiohttp import web

from local.signalr_emulator import SignalREmulator, issue_token

from .rawclient import connect_healthy

HUB = "stream"


class _Watched(SignalREmulator):
    """Records, as each REST send's answer is prepared, how many frames were written."""

    written_at_answer: list[int]

    def build_app(self) -> web.Application:
        self.written_at_answer = []
        app = super().build_app()
        app.on_response_prepare.append(self._on_prepare)
        return app

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.endswith("/:send"):
            (conn,) = self.core.registry.live_connections()
            self.written_at_answer.append(conn.counters.written_frames)


async def test_frame_is_on_the_socket_before_the_202() -> None:
    emu = _Watched()
    conns = emu.core.registry
    async with emu, httpx.AsyncClient() as http:
        _, ws = await connect_healthy(http, emu, HUB, user="ann")
        before = conns.live_connections()[0].counters.written_frames
        url = f"{emu.url}/api/hubs/{HUB}/users/ann/:send"
        token = issue_token(emu.access_key, url)
        answer = await http.post(
            url,
            params={"api-version": "2022-06-01"},
            json={"target": "delta", "arguments": [{"seq": 1}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 202
        frame = await ws.recv()
        await ws.close()
    assert '"target":"delta"' in frame and '"seq":1' in frame
    assert emu.written_at_answer == [before + 1]
