"""The fault suite's harness: a local stack on an app dir with short recovery timers, and
the checks every case ends with (terminal status, exact final text for a contract client
and a live @microsoft/signalr subscriber, seqs 1..lastSeq exactly once, nothing left
running, admission released)."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.azurite import free_port
from local.openai_emulator import expected_tokens
from local.openai_emulator import run_in_thread as openai_in_thread
from local.signalr_emulator import run_in_thread as signalr_in_thread
from tests.clients.listener import NodeListener
from tests.e2e.contract import deltas_of, final_text
from tests.e2e.stack import ROOT, Stack, stack_env, stop_host
from tests.e2e.stack import start_host as e2e_start_host

__all__ = [
    "TERMINAL",
    "Case",
    "FaultStack",
    "expected",
    "fault_stack",
    "make_app_dir",
    "restart_host",
    "verify",
    "wait_durable_done",
]

TERMINAL = {"completed", "failed", "canceled"}
_DURABLE_DONE = {"Completed", "Failed", "Terminated"}
# The app's own files; the test app dir links to them and only host.json differs.
_APP_FILES = ("function_app.py", "api", "activities", "orchestrations", "relay", "web",
              "local.settings.json.example")  # fmt: skip

# Shorter than production so a crash recovers within a test: the queue trigger's retry
# delay and the durable task hub's lease on a work item / control message (the Azure
# Storage provider's workItemQueueVisibilityTimeout and controlQueueVisibilityTimeout,
# 5 minutes by default). Everything else is the project's host.json.
SHORT_TIMERS = {
    "queues": {"visibilityTimeout": "00:00:01"},
    "durableTask": {
        "storageProvider": {
            "workItemQueueVisibilityTimeout": "00:00:06",
            "controlQueueVisibilityTimeout": "00:00:06",
        }
    },
}


def make_app_dir(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for name in _APP_FILES:
        link = where / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    host = json.loads((ROOT / "host.json").read_text())
    ext = host["extensions"]
    ext["queues"].update(SHORT_TIMERS["queues"])
    ext["durableTask"]["storageProvider"].update(SHORT_TIMERS["durableTask"]["storageProvider"])
    (where / "host.json").write_text(json.dumps(host, indent=2))
    return where


@dataclass
class FaultStack(Stack):
    app_dir: Path = ROOT
    rpc_port: int = 0
    listeners: list[NodeListener] = field(default_factory=list)

    def durable(self, job_id: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.rpc_port}/durabletask/instances/{job_id}"
        try:
            with urllib.request.urlopen(url, timeout=10) as res:
                return dict(json.loads(res.read()))
        except urllib.error.HTTPError as err:
            return {"httpStatus": err.code}

    def control(self, emulator: Any, path: str, body: Any = None, method: str = "POST") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            emulator.url + path if hasattr(emulator, "url") else emulator.endpoint + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            text = res.read()
        return json.loads(text) if text else None

    def listen(self, user: str) -> NodeListener:
        listener = NodeListener(
            url=f"{self.base}/api",
            headers={"x-ms-client-principal-id": user},
            reconnect_delays=[0, 200, 500, 1000, 2000, 2000, 2000, 2000],
        ).start()
        self.listeners.append(listener)
        listener.wait_connected()
        return listener

    def submit(self, user: str, prompt: str) -> str:
        res = self.request("POST", "/api/jobs", {"prompt": prompt}, user=user)
        assert res.status == 202, res.body
        return str(res.body["jobId"])


def start_host(stack: FaultStack, log: Path) -> None:
    e2e_start_host(stack, log, app_dir=stack.app_dir, rpc_port=stack.rpc_port)


def restart_host(stack: FaultStack) -> None:
    assert stack.log_path is not None
    start_host(stack, stack.log_path)


@contextlib.contextmanager
def fault_stack(storage: str, log: Path, app_dir: Path, **settings: str) -> Iterator[FaultStack]:
    """`tests.e2e.stack.local_stack`, on `app_dir` and a known durable RPC port."""
    with signalr_in_thread(port=0) as sig, openai_in_thread(port=0) as oai:
        env = stack_env(storage, sig, oai, "f")
        env.update({
            # One live job per user: a leftover admission row shows as a refused next job.
            "USER_MAX_CONCURRENT_JOBS": "1",
            "USER_JOBS_PER_MINUTE": "1000",
        })  # fmt: skip
        env.update(settings)
        stack = FaultStack(
            base=f"http://127.0.0.1:{free_port()}", storage=storage, signalr=sig, openai=oai,
            env=env, app_dir=app_dir, rpc_port=free_port(),
        )  # fmt: skip
        start_host(stack, log)
        try:
            yield stack
        finally:
            for listener in stack.listeners:
                listener.stop()
            stop_host(stack)


def expected(prompt: str, tokens: int | None = None) -> str:
    """The emulator's answer to `prompt` (its first `tokens` deltas when given)."""
    parts = expected_tokens([{"role": "user", "content": prompt}], max_tokens=1024)
    return "".join(parts if tokens is None else parts[:tokens])


@dataclass
class Case:
    name: str
    user: str
    prompt: str
    status: str = "completed"
    text: str | None = None  # None: the full expected answer
    attempt: int | None = None
    error: str | None = None
    job_id: str = ""
    listener: NodeListener | None = None


def wait_durable_done(stack: FaultStack, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = stack.durable(job_id)
        if last.get("runtimeStatus") in _DURABLE_DONE:
            return last
        time.sleep(0.2)
    raise AssertionError(f"orchestration {job_id} still not finished: {last}")


def verify(stack: FaultStack, case: Case, *, timeout: float = 60.0,
           admitted_check: bool = True) -> dict[str, Any]:  # fmt: skip
    """Every check a fault case ends with; returns the final job status."""
    final = stack.wait_status(case.job_id, TERMINAL, user=case.user, timeout=timeout)
    where = f"case {case.name}: {final}"
    assert final["status"] == case.status, where
    if case.attempt is not None:
        assert final["attempt"] == case.attempt, where
    if case.error is not None:
        assert (final["error"] or {}).get("code") == case.error, where
    want = expected(case.prompt) if case.text is None else case.text
    # The record: seqs 1..lastSeq of the final attempt, each exactly once, in order.
    events = stack.events(case.job_id, user=case.user)
    assert events["attempt"] == final["attempt"], where
    seqs = [e["seq"] for e in events["events"]]
    assert seqs == list(range(1, final["lastSeq"] + 1)), (where, seqs)
    assert {e["attempt"] for e in events["events"]} <= {final["attempt"]}, where
    assert "".join(e["text"] for e in events["events"]) == want, where
    assert final["text"] == want, where
    # A late client (catch-up only) and the live subscriber both end with exactly the text.
    assert final_text(stack, case.job_id, [], user=case.user) == want, where
    if case.listener is not None:
        with contextlib.suppress(AssertionError):  # the final status may be lost: catch up
            case.listener.wait_for(
                lambda e: e["event"] == "message" and e["target"] == "status"
                and e["arguments"][0].get("jobId") == case.job_id
                and e["arguments"][0].get("status") in TERMINAL, timeout=10,
            )  # fmt: skip
        deltas = deltas_of(case.listener.messages("delta"), case.job_id)
        assert final_text(stack, case.job_id, deltas, user=case.user) == want, where
    # Nothing left running: the orchestration ended, and the user's admission slot is free.
    wait_durable_done(stack, case.job_id)
    if admitted_check:
        probe = stack.request("POST", "/api/jobs", {"prompt": "probe [[emulator tokens=3 "
                              "ttft_ms=0 rate=1000]]"}, user=case.user)  # fmt: skip
        assert probe.status == 202, (where, probe.body)
        done = stack.wait_status(probe.body["jobId"], TERMINAL, user=case.user, timeout=30)
        assert done["status"] == "completed", done
    return final
