"""Session-wide fixtures: a real Azurite, started and stopped by the test session."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from local.azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite on free ports, in memory; one per test session."""
    with Azurite() as server:
        yield server


@pytest.fixture(scope="session")
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture(scope="session")
def refused_port() -> Iterator[int]:
    """A local port where connections are refused, for "service down" tests: bound and never
    listening, so, unlike a free port closed again, no other process can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
