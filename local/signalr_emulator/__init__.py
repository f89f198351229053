"""A local Azure SignalR Service (Serverless mode) for development and tests.

    python -m local.signalr_emulator [--host 127.0.0.1] [--port 8888]

In-process: `async with SignalREmulator(port=0) as emu: ...`, or from sync code
`with run_in_thread() as emu: emu.url, emu.connection_string`. See README.md.
"""

from __future__ import annotations

from .core import EmulatorOptions
from .server import DEFAULT_ACCESS_KEY, EmulatorThread, SignalREmulator, run_in_thread
from .tokens import client_audience, issue_token

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "EmulatorOptions",
    "EmulatorThread",
    "SignalREmulator",
    "client_audience",
    "issue_token",
    "run_in_thread",
]
