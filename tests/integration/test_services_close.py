"""`Services.aclose` closes every HTTP session the app opened (the local host calls it at
stop; an unclosed one made aiohttp warn "Unclosed client session" at every host stop)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.integration._services import services_on_azurite

pytestmark = pytest.mark.azurite


async def test_aclose_closes_every_session_the_app_opened(
    azurite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[aiohttp.ClientSession] = []
    real_init = aiohttp.ClientSession.__init__

    def recording_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", recording_init)
    async with services_on_azurite(azurite.connection_string, "close") as services:
        # Touch every storage client once: each opens its session on first use.
        await services.queue.position_in_line()
        await services.store.ping()
        assert opened and not all(s.closed for s in opened)
    still_open = [s for s in opened if not s.closed]
    assert still_open == []
