from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.azurite import Azurite

from .stack import Stack, local_stack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def stack(azurite: Azurite) -> Iterator[Stack]:
    """The whole local stack, shared by the end-to-end tests (each test uses its own users)."""
    with local_stack(azurite.connection_string, ARTIFACTS / "e2e-host.log") as s:
        yield s
