"""One whole local stack for the contract tests (its own host, tables and queue) on free
ports, sharing the session's Azurite. The tests probe it from outside only: plain HTTP,
the real @microsoft/signalr client, and direct REST calls to the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.azurite import Azurite
from tests.e2e.stack import Stack, local_stack

from ._signing import RestCaller

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def contract_stack(azurite: Azurite) -> Iterator[Stack]:
    with local_stack(azurite.connection_string, ARTIFACTS / "contract-host.log") as stack:
        yield stack


@pytest.fixture(scope="session")
def signalr_rest(contract_stack: Stack) -> Iterator[RestCaller]:
    caller = RestCaller(contract_stack.env["AzureSignalRConnectionString"])
    try:
        yield caller
    finally:
        caller.close()
