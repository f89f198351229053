"""The host closes the app's shared clients when it stops (no "Unclosed client session")."""

from __future__ import annotations

import asyncio
import sys
import types

import aiohttp
import pytest

from local.host.host import _close_app_services


def test_host_stop_resets_the_apps_services(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[aiohttp.ClientSession] = []

    async def scenario() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession()  # stands for the LLM / SignalR pooled sessions

        async def reset_services() -> None:
            await session.close()
            closed.append(session)

        fake = types.ModuleType("relay.services")
        fake.reset_services = reset_services  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "relay.services", fake)
        await _close_app_services()
        return session

    session = asyncio.run(scenario())
    assert closed == [session]
    assert session.closed


def test_host_stop_without_the_app_module_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "relay.services", raising=False)
    asyncio.run(_close_app_services())  # nothing imported it: nothing to close, no error


def test_a_failing_close_does_not_stop_the_host_stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def reset_services() -> None:
        calls.append("reset")
        raise RuntimeError("storage already gone")

    fake = types.ModuleType("relay.services")
    fake.reset_services = reset_services  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "relay.services", fake)
    asyncio.run(_close_app_services())
    assert calls == ["reset"]
