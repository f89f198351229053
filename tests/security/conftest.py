"""One whole local stack for the security tests (its own host, tables and queue), on free
ports, sharing the session's Azurite; its log file is what the log-hygiene test greps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.azurite import Azurite
from tests.e2e.stack import Stack, local_stack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def sec_stack(azurite: Azurite) -> Iterator[Stack]:
    log = ARTIFACTS / "security-host.log"
    log.unlink(missing_ok=True)
    with local_stack(azurite.connection_string, log) as stack:
        yield stack
