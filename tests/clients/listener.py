"""Run tests/clients/signalr_listen.mjs (the real @microsoft/signalr client) from a test.

with NodeListener(url=f"{base}/api", transport="sse", headers={...}) as listener:
    connection_id = listener.wait_connected()
    ...
    listener.wait_for(lambda e: e["event"] == "message" and e["target"] == "delta")
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LISTEN_SCRIPT", "NodeListener"]

LISTEN_SCRIPT = Path(__file__).resolve().parent / "signalr_listen.mjs"
Event = dict[str, Any]


class NodeListener:
    def __init__(
        self,
        url: str,
        *,
        transport: str | None = None,
        headers: Mapping[str, str] | None = None,
        access_token: str | None = None,
        targets: Sequence[str] = ("delta", "status", "claim"),
        duration_ms: int | None = None,
        until_status: str | None = None,
        reconnect: bool = True,
        reconnect_delays: Sequence[int] | None = None,
        log_level: str = "none",
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        args = [node, str(LISTEN_SCRIPT), "--url", url, "--targets", ",".join(targets)]
        if transport:
            args += ["--transport", transport]
        for name, value in (headers or {}).items():
            args += ["--header", f"{name}={value}"]
        if access_token:
            args += ["--access-token", access_token]
        if duration_ms is not None:
            args += ["--duration-ms", str(duration_ms)]
        if until_status:
            args += ["--until-status", until_status]
        if not reconnect:
            args.append("--no-reconnect")
        if reconnect_delays is not None:
            args += ["--reconnect-delays", ",".join(str(d) for d in reconnect_delays)]
        args += ["--log-level", log_level]
        self.args = args
        self.events: list[Event] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> NodeListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> NodeListener:
        self._proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=LISTEN_SCRIPT.parent,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        return self

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "exited"})
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr_lines.append(line.rstrip())

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 30.0, start: int = 0
    ) -> Event:
        """The first event from index `start` on that matches; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[start:]:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching event within {timeout}s; events={self.events[-20:]} "
                        f"stderr={self.stderr_lines[-20:]}"
                    )
                self._cond.wait(left)

    def wait_connected(self, timeout: float = 60.0) -> str:  # Node starting on a busy CI
        event = self.wait_for(lambda e: e["event"] in ("connected", "error", "exited"), timeout)
        if event["event"] != "connected":
            raise AssertionError(f"client did not connect: {event}; stderr={self.stderr_lines}")
        return str(event["connectionId"])

    def messages(self, target: str | None = None) -> list[Event]:
        with self._cond:
            return [
                e
                for e in self.events
                if e["event"] == "message" and (target is None or e["target"] == target)
            ]

    def wait_messages(
        self, count: int, target: str | None = None, timeout: float = 15.0
    ) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(target)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            with self._cond:
                self._cond.wait(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return proc.returncode
