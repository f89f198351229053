"""`python -m local.dev --check`: the whole local stack starts, is ready, and stops cleanly."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from local.azurite import ACCOUNT_KEY, free_port

from .conftest import APPS

ROOT = Path(__file__).resolve().parents[2]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _args(ports: dict[str, int], state: Path) -> list[str]:
    return [
        sys.executable, "-m", "local.dev", "--check", "--app-dir", str(APPS / "http_app"),
        "--host-port", str(ports["host"]), "--signalr-port", str(ports["signalr"]),
        "--openai-port", str(ports["openai"]), "--durable-rpc-port", str(ports["rpc"]),
        "--azurite-ports", f"{ports['blob']},{ports['queue']},{ports['table']}",
        "--state-dir", str(state),
    ]  # fmt: skip


def test_check_starts_every_service_then_leaves_nothing_running(tmp_path: Path) -> None:
    names = ("host", "signalr", "openai", "rpc", "blob", "queue", "table")
    ports = {name: free_port() for name in names}
    env_clean = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("AzureWebJobsStorage", "AzureSignalRConnectionString", "AZURE_OPENAI_ENDPOINT")
    }
    done = subprocess.run(
        _args(ports, tmp_path), cwd=ROOT, env=env_clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Page: http://127.0.0.1:{ports['host']}/" in out
    for service in ("Azurite", "SignalR emulator", "Azure OpenAI emulator", "Functions host"):
        assert f"{service} " in out and "ready in" in out
    assert ACCOUNT_KEY not in out and "AccountKey=***" in out  # secrets masked
    assert (tmp_path / "azurite").is_dir()  # on-disk Azurite state
    assert all(_free(p) for p in ports.values()), "a service is still listening"


def test_taken_port_is_named_and_nothing_is_started(tmp_path: Path) -> None:
    names = ("host", "signalr", "openai", "rpc", "blob", "queue", "table")
    ports = {name: free_port() for name in names}
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["signalr"]))
        blocker.listen(1)
        done = subprocess.run(
            _args(ports, tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert f"port {ports['signalr']} (SignalR emulator) is already in use" in done.stderr
    assert not (tmp_path / "azurite").exists()
