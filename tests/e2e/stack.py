"""The whole local stack for end-to-end tests: Azurite, both emulators, and the local
Functions host running this project's function_app.py as a subprocess, on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.azurite import free_port
from local.openai_emulator import DEFAULT_API_KEY, expected_answer
from local.openai_emulator import run_in_thread as openai_in_thread
from local.signalr_emulator import run_in_thread as signalr_in_thread
from local.signalr_emulator.core import EmulatorOptions

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Stack:
    base: str
    storage: str
    signalr: Any
    openai: Any
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, *, user: str | None = "alice",
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                timeout: float = 15.0) -> Response:  # fmt: skip
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("content-type", "application/json")
        if user is not None:
            hdrs.setdefault("x-ms-client-principal-id", user)
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                status, resp_headers, text = res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as err:
            status, resp_headers, text = err.code, dict(err.headers), err.read()
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode("utf-8", "replace")
        return Response(status, {k.lower(): v for k, v in resp_headers.items()}, parsed)

    def wait_status(self, job_id: str, statuses: set[str], *, user: str = "alice",
                    timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            res = self.request("GET", f"/api/jobs/{job_id}", user=user)
            last = res.body
            if res.status == 200 and res.body["status"] in statuses:
                return dict(res.body)
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} not in {statuses} after {timeout}s: {last}")

    def events(
        self, job_id: str, *, user: str = "alice", attempt: int | None = None
    ) -> dict[str, Any]:
        q = f"?after=0&attempt={attempt}" if attempt else "?after=0"
        res = self.request("GET", f"/api/jobs/{job_id}/events{q}", user=user)
        assert res.status == 200, res.body
        return dict(res.body)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def expected_text(prompt: str, max_tokens: int = 1024) -> str:
    return expected_answer([{"role": "user", "content": prompt}], max_tokens=max_tokens)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"host exited early:\n{log.read_text(errors='replace')[-4000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(base + "/api/health", timeout=2) as res,
        ):
            if res.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"host not ready:\n{log.read_text(errors='replace')[-4000:]}")


def spawn_host(
    stack: Stack, log: Path, *, app_dir: Path = ROOT, rpc_port: int = 0, append: bool = True
) -> None:
    """Start `python -m local.host` on the stack's port without waiting for it.

    `append` keeps an earlier run's log (a restarted host writes after it); a test that
    reads the log for a line of this run starts it fresh.
    """
    port = int(stack.base.rsplit(":", 1)[1])
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:  # the child keeps its own descriptor
        stack.proc = subprocess.Popen(
            [sys.executable, "-m", "local.host", "--app-dir", str(app_dir), "--port", str(port),
             "--durable-rpc-port", str(rpc_port)],
            cwd=ROOT, env=stack.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    stack.log_path = log


def start_host(stack: Stack, log: Path, *, app_dir: Path = ROOT, rpc_port: int = 0) -> None:
    """Start the host and wait until its health endpoint answers 200."""
    spawn_host(stack, log, app_dir=app_dir, rpc_port=rpc_port)
    assert stack.proc is not None
    _wait_ready(stack.base, stack.proc, log)


HUB_OVERRIDE = "AzureFunctionsJobHost__extensions__durableTask__hubName"


def own_names(table_prefix: str) -> dict[str, str]:
    """Tables, jobs queue and durable task hub of one host's own, on a shared Azurite.

    Random, not a free port's number: ports are reused within a session, and two stacks on
    one name would share a queue or, with one task hub, take each other's orchestration
    work (it happened: the contract stack completed an episode of the capped stack's job).
    """
    tag = uuid.uuid4().hex[:12]
    return {
        "TABLE_PREFIX": f"{table_prefix}{tag}",
        "JOBS_QUEUE": f"jobs{tag}",
        HUB_OVERRIDE: f"Relay{tag}",
    }


def stack_env(storage: str, signalr: Any, openai: Any, table_prefix: str) -> dict[str, str]:
    """The host's environment: ours minus any real Azure settings, then the local example
    settings, pointed at this storage and these emulators with tables, queue and task hub of
    its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "Azure"))}
    env.update(json.loads((ROOT / "local.settings.json.example").read_text())["Values"])
    env.update({
        "AzureWebJobsStorage": storage,
        "AzureSignalRConnectionString": signalr.connection_string,
        "AZURE_OPENAI_ENDPOINT": openai.endpoint,
        "AZURE_OPENAI_API_KEY": DEFAULT_API_KEY,
        **own_names(table_prefix),
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return env


def stop_host(stack: Stack, timeout: float = 20.0) -> None:
    proc = stack.proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(2)  # SIGINT: graceful, like Ctrl-C on func start
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def kill_host(stack: Stack) -> None:
    if stack.proc is not None and stack.proc.poll() is None:
        stack.proc.kill()
        stack.proc.wait(10)


@contextlib.contextmanager
def local_stack(storage: str, log: Path, **settings: str) -> Iterator[Stack]:
    # The host's port is chosen first: the page's origin is the host's own, and the
    # SignalR emulator must allow it for a browser's cross-origin negotiate.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    options = EmulatorOptions(cors_origins=(base, f"http://localhost:{port}"))
    with signalr_in_thread(port=0, options=options) as sig, openai_in_thread(port=0) as oai:
        env = stack_env(storage, sig, oai, "e2e")
        env.update(settings)
        stack = Stack(base=base, storage=storage, signalr=sig, openai=oai, env=env)
        start_host(stack, log)
        try:
            yield stack
        finally:
            stop_host(stack)
