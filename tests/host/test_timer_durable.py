"""Timer triggers and the durable engine through the host."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from .conftest import StartHost, read_records, wait_for


async def test_timer_fires_on_schedule_and_on_startup(
    start_host: StartHost, storage_connection_string: str, tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    await start_host(
        "timer_app", {"AzureWebJobsStorage": storage_connection_string, "RECORD_FILE": str(records)}
    )
    await wait_for(lambda: sum(r["fn"] == "every_second" for r in read_records(records)) >= 3)
    fired = read_records(records)
    assert [r["fn"] for r in fired].count("on_startup") == 1  # runOnStartup, then next year
    ticks = [r["t"] for r in fired if r["fn"] == "every_second"]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(0.5 < g < 1.6 for g in gaps), gaps
    assert not any(r["past_due"] for r in fired)


@pytest.fixture
async def close_durable_session() -> AsyncIterator[None]:
    yield
    from azure.durable_functions.models.utils import http_utils

    await http_utils._close_session()  # its module-level aiohttp session is bound to this loop


@pytest.mark.azurite
async def test_durable_client_starts_an_orchestration_that_calls_an_activity(
    start_host: StartHost, storage_connection_string: str, close_durable_session: None
) -> None:
    # A task hub of its own on the shared Azurite: no other engine's leftovers to pick up.
    hub = f"Fixture{uuid.uuid4().hex[:12]}"
    host = await start_host("durable_app", {
        "AzureWebJobsStorage": storage_connection_string,
        "AzureFunctionsJobHost__extensions__durableTask__hubName": hub,
    })  # fmt: skip
    name = f"n{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.port}", timeout=10) as c:
        r = await c.post(f"/api/start/{name}")
        assert r.status_code == 202, r.text
        instance = r.json()["id"]
        body: dict[str, object] = {}
        for _ in range(1200):  # up to a minute on a loaded machine
            body = (await c.get(f"/api/status/{instance}")).json()
            if body["status"] in ("Completed", "Failed"):
                break
            await asyncio.sleep(0.05)
    assert body == {"status": "Completed", "output": f"hello {name}"}
