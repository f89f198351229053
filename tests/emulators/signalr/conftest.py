"""Fixtures: an emulator on a free port, a stand-in negotiate endpoint, a REST caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.signalr_emulator import EmulatorThread, run_in_thread

from .helpers import Rest, negotiate_app, serve_in_thread


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with run_in_thread(port=0) as emu:
        yield emu


@pytest.fixture
def negotiate_base(emulator: EmulatorThread) -> Iterator[str]:
    """The `--url` a client is given: `{base}/api`, whose /negotiate redirects."""
    with serve_in_thread(negotiate_app(emulator)) as base:
        yield f"{base}/api"


@pytest.fixture
def rest(emulator: EmulatorThread) -> Rest:
    return Rest(emulator)
