"""The host as `python -m local.host`: startup, JSON logs, refusals, graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.azurite import free_port

from .conftest import APPS

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "local.host", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, within: float = 60.0) -> str:  # generous: loaded CI
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}; output:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.stop()


def test_serves_logs_json_and_drains_in_flight_requests_on_sigterm(procs: list[Proc]) -> None:
    port = free_port()
    p = Proc("--app-dir", str(APPS / "http_app"), "--port", str(port), "--log-format", "json")
    procs.append(p)
    p.wait_line("Host started")
    base = f"http://127.0.0.1:{port}"
    inv = httpx.get(f"{base}/api/logs", timeout=10).json()["invocationId"]
    record = json.loads(p.wait_line('"working on a job"'))
    assert record["jobId"] == "job-42" and record["invocationId"] == inv
    assert record["category"] == "fixture" and record["level"] == "INFO"

    result: dict[str, object] = {}

    def slow_call() -> None:
        r = httpx.get(f"{base}/api/slow?s=1.5", timeout=10)
        result["status"], result["body"] = r.status_code, r.text

    caller = threading.Thread(target=slow_call)
    caller.start()
    p.wait_line("Executing 'Functions.slow'")
    p.proc.send_signal(signal.SIGTERM)
    caller.join(10)
    assert result == {"status": 200, "body": "done"}  # the in-flight request finished
    assert p.proc.wait(10) == 0
    p.wait_line("Host stopped")


def test_unsupported_binding_is_refused_naming_function_and_binding(
    procs: list[Proc], tmp_path: Path
) -> None:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.blob_trigger(arg_name='blob', path='c/{name}', connection='AzureWebJobsStorage')\n"
        "def on_blob(blob: func.InputStream) -> None:\n"
        "    pass\n"
    )
    p = Proc("--app-dir", str(tmp_path), "--port", str(free_port()))
    procs.append(p)
    assert p.proc.wait(20) == 1
    line = p.wait_line("error:")
    assert "'on_blob'" in line and "'blobTrigger'" in line and "not supported" in line


def test_taken_port_is_named(procs: list[Proc]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        p = Proc("--app-dir", str(APPS / "http_app"), "--port", str(port))
        procs.append(p)
        assert p.proc.wait(20) == 1
        assert f"port {port}" in p.wait_line("already in use")
