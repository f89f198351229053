"""Fixtures of the fault suite: its own on-disk Azurite (restartable on the same ports, and
its own durable task hub, apart from the e2e stack's) and one shared stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.azurite import Azurite

from .harness import FaultStack, fault_stack, make_app_dir

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def disk_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(location=tmp_path_factory.mktemp("azurite-disk"))
    with server:
        yield server


@pytest.fixture(scope="session")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_app_dir(tmp_path_factory.mktemp("fault-app"))


@pytest.fixture(scope="session")
def fstack(disk_azurite: Azurite, app_dir: Path) -> Iterator[FaultStack]:
    """The stack most cases share (each case uses its own users)."""
    with fault_stack(disk_azurite.connection_string, ARTIFACTS / "faults-host.log",
                     app_dir) as stack:  # fmt: skip
        yield stack
