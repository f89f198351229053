"""Fixtures for the local host tests: an in-process host on a free port, env restored."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.host import Host, HostOptions

APPS = Path(__file__).parent / "fixture_apps"

StartHost = Callable[..., Awaitable[Host]]


@pytest.fixture
def clean_environ() -> Iterator[None]:
    """The host writes app settings into os.environ, as the worker sees them; undo that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
async def start_host(clean_environ: None) -> AsyncIterator[StartHost]:
    hosts: list[Host] = []

    async def start(app: str | Path, env: dict[str, str] | None = None, **options: Any) -> Host:
        os.environ.update(env or {})
        app_dir = app if isinstance(app, Path) else APPS / app
        options.setdefault("shutdown_timeout", 5.0)
        host = Host(HostOptions(app_dir=app_dir, port=0, durable_rpc_port=0, **options))
        await host.start()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        await host.stop()


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def wait_for(
    check: Callable[[], bool], within: float = 10.0, interval: float = 0.05
) -> float:
    """Poll `check` until true; return the seconds it took; fail the test on timeout."""
    import asyncio

    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
    return time.monotonic() - start
