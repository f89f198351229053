"""Unit tests of the fixes the fault suite led to (no stack needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from relay.errors import StoreError
from relay.jobs import Target
from relay.store._model import record_from_entity
from relay.streaming._run import send_quietly


class _Hanging:
    def __init__(self) -> None:
        self.calls = 0

    async def send(self, target: Target, name: str, arguments: Sequence[Any]) -> None:
        self.calls += 1
        await asyncio.sleep(3600)


async def test_final_status_send_is_bounded() -> None:
    sender = _Hanging()
    loop = asyncio.get_running_loop()
    started = loop.time()
    ok = await send_quietly(sender, Target("user", "u"), "status", [{}], 0.05)
    assert ok is False and sender.calls == 1
    assert loop.time() - started < 1.0


def test_an_unreadable_stored_request_is_a_store_error() -> None:
    entity = {"PartitionKey": "j1", "owner": "u", "status": "queued", "targetKind": "user",
              "targetId": "u", "reqInline": 1, "req0": "{not json"}  # fmt: skip
    with pytest.raises(StoreError, match="unreadable"):
        record_from_entity(entity, "etag", [])
    # Reads that do not need the request still work (the poison trigger relies on it).
    assert record_from_entity(entity, "etag", None).status == "queued"
