"""Benchmark: what the pipeline adds between `POST /api/jobs` and the first delta at a client.

The whole local stack runs as separate processes (Azurite in memory, both emulators, the local
Functions host with host.json as shipped and JSON logs); one subscribed client (local.cli's
WebSocket hub client, as a browser connects) submits jobs one at a time. Per job:

    overhead = (first delta at the client - submit) - the model's own time to first token

where the model's ttft is measured at the emulator (`--timeline`: when the request arrived and
when it wrote the first content delta). Stage stamps come from the host's JSON log (queue
pickup, first orchestrator and stream activity invocations, first episode persisted, attempt
claimed) and the emulator (model request, first model delta), all on this machine's wall
clock (log stamps have 1 ms resolution). Warm jobs follow
each other closely; idle jobs each follow `IDLE_S` of silence, so every poller has backed off.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from local.azurite import Azurite, free_port
from local.cli import ApiClient, HubClient

__all__ = ["IDLE_S", "JobTiming", "render", "run"]

ROOT = Path(__file__).resolve().parent.parent
IDLE_S = 20.0
OAI_KEY = "bench-key"
MARKER = "[[emulator tokens=40 rate=400 ttft_ms=0 jitter=0]]"
WARMUP_JOBS = 3
# The functions whose first invocation per job is a stage (api/intake.ORCHESTRATOR and the
# activity in activities/stream.py): named here so the bench reads the log, not the app.
INVOKED = {"job_orchestrator": "orchestrator", "stream_job": "activity"}


@dataclass
class JobTiming:
    job_id: str
    prompt: str
    submit: float  # wall clock, just before POST /api/jobs
    accepted: float = 0.0  # 202 received
    first_delta: float = 0.0  # first delta frame at the client
    stamps: dict[str, float] = field(default_factory=dict)  # from the host log and emulator
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def model_ttft(self) -> float:
        return self.stamps["model_first"] - self.stamps["model_request"]

    @property
    def overhead(self) -> float:
        return self.first_delta - self.submit - self.model_ttft

    def stages(self) -> dict[str, float]:
        s = self.stamps
        points = [("submit", self.submit), ("202 at client", self.accepted),
                  ("queue pickup (intake starts)", s.get("pickup")),
                  ("orchestrator invoked (first episode)", s.get("orchestrator")),
                  ("stream activity invoked", s.get("activity")),
                  ("model request at emulator", s.get("model_request")),
                  ("first model delta (minus model ttft)", s["model_first"] - self.model_ttft),
                  ("first delta at client", self.first_delta - self.model_ttft)]  # fmt: skip
        out: dict[str, float] = {}
        for (_, before), (name, at) in itertools.pairwise(points):
            if before is not None and at is not None:
                out[name] = at - before
        # Not in the chain: the activity starts as soon as its work item is sent, before its
        # episode is persisted (as in DTFx), so the episode's log line usually comes after
        # the activity's start; and the run opens its model request while its claim is
        # written, so the claim usually lands after the model request (that row is then
        # positive) and overlaps the model's ttft.
        if s.get("orchestrator") is not None and s.get("episode") is not None:
            out["(orchestrator invoked to first episode persisted)"] = (
                s["episode"] - s["orchestrator"]
            )
        if s.get("pickup") is not None and s.get("claimed") is not None:
            out["(queue pickup to attempt claimed)"] = s["claimed"] - s["pickup"]
        if s.get("claimed") is not None:
            out["(model request to attempt claimed)"] = s["claimed"] - s["model_request"]
        return out


def _wait_http(url: str, proc: subprocess.Popen[bytes], method: str = "GET") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early")
        with contextlib.suppress(OSError):
            req = urllib.request.Request(url, method=method)
            with urllib.request.urlopen(req, timeout=2) as res:
                if res.status < 300:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


@contextlib.contextmanager
def _stack(log: Path) -> Iterator[dict[str, str]]:
    """Azurite, both emulators and the host as processes; yields their URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def spawn(*args: str, out: Any = subprocess.DEVNULL, extra: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**env, **(extra or {})})  # fmt: skip
        procs.append(proc)
        return proc

    with Azurite() as azurite:
        try:
            oai, sig, host = free_port(), free_port(), free_port()
            p = spawn("local.openai_emulator", "--port", str(oai), "--api-key", OAI_KEY,
                      "--timeline")  # fmt: skip
            _wait_http(f"http://127.0.0.1:{oai}/_emulator/health", p)
            p = spawn("local.signalr_emulator", "--port", str(sig))
            _wait_http(f"http://127.0.0.1:{sig}/api/health", p, "HEAD")
            settings = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
            settings.update({
                "AzureWebJobsStorage": azurite.connection_string,
                "AzureSignalRConnectionString": f"Endpoint=http://127.0.0.1;Port={sig};"
                "AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;Version=1.0;",
                "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{oai}",
                "AZURE_OPENAI_API_KEY": OAI_KEY,
                "USER_JOBS_PER_MINUTE": "100000",  # one user submits every job
            })  # fmt: skip
            clean = {k: "" for k in env if k.startswith(("AZURE_", "Azure"))}
            with log.open("wb") as out:
                p = spawn("local.host", "--app-dir", str(ROOT), "--port", str(host),
                          "--durable-rpc-port", "0", "--log-format", "json",
                          out=out, extra={**clean, **settings})  # fmt: skip
            _wait_http(f"http://127.0.0.1:{host}/api/health", p)
            yield {"host": f"http://127.0.0.1:{host}", "oai": f"http://127.0.0.1:{oai}",
                   "sig": f"http://127.0.0.1:{sig}"}  # fmt: skip
        finally:
            for proc in reversed(procs):
                proc.send_signal(2)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


async def _one_job(api: ApiClient, hub: HubClient, urls: dict[str, str], tag: str,
                   http: httpx.AsyncClient) -> JobTiming:  # fmt: skip
    await http.post(f"{urls['sig']}/_emulator/reset")
    offset = time.time() - time.perf_counter()
    prompt = f"Benchmark job {tag}. {MARKER}"
    timing = JobTiming("", prompt, time.time())
    timing.job_id = await api.submit({"prompt": prompt})
    timing.accepted = time.time()
    while True:
        msg = await hub.next(30)
        if msg is None:
            raise RuntimeError(f"job {timing.job_id}: no end within 30 s ({hub.close_reason})")
        arg = msg.arguments[0] if msg.arguments else {}
        if arg.get("jobId") != timing.job_id:
            continue
        if msg.target == "delta" and not timing.first_delta:
            timing.first_delta = msg.at + offset
        if msg.target == "status" and arg.get("status") in ("completed", "failed", "canceled"):
            break
    job = await api.job(timing.job_id)
    if job["status"] != "completed":
        raise RuntimeError(f"job {timing.job_id} ended {job['status']}: {job.get('error')}")
    totals = (await http.get(f"{urls['sig']}/_emulator/stats")).json()["totals"]
    m = job["metrics"]
    timing.counts = {"deltas": m["deltas"], "delta messages": m["messages"],
                     "signalr messages": totals["messages"],
                     "billed units": totals["units"]}  # fmt: skip
    key = hashlib.sha256(prompt.encode()).hexdigest()[:32]
    for _ in range(50):
        streams = (await http.post(f"{urls['oai']}/_emulator/timeline")).json()["streams"]
        mine = [s for s in streams if s["key"] == key]
        if mine:
            timing.stamps["model_request"] = mine[0]["start"]
            timing.stamps["model_first"] = next(t for t, n in mine[0]["marks"] if n > 0)
            return timing
        await asyncio.sleep(0.05)
    raise RuntimeError(f"job {timing.job_id}: the emulator recorded no stream")


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _log_stamps(log: Path, timings: list[JobTiming]) -> None:
    """Queue pickup, the first orchestrator and activity invocations, the first episode's
    persist and the attempt's claim of each job, from the host log."""
    records = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    starts = {r.get("invocationId"): _epoch(r["timestamp"]) for r in records
              if str(r.get("message", "")).startswith("Executing 'Functions.intake'")}  # fmt: skip
    by_job = {t.job_id: t for t in timings}
    for r in records:
        message = str(r.get("message", ""))
        if message.startswith("orchestration ") and " episode: " in message:
            episode = by_job.get(message.split()[1])  # the engine names the instance in the text
            if episode is not None:
                episode.stamps.setdefault("episode", _epoch(r["timestamp"]))
        invoked = by_job.get(r.get("instanceId"))  # the engine's invocation lines
        if invoked is not None and message.startswith("Executing 'Functions."):
            kind = INVOKED.get(message.split("'")[1].removeprefix("Functions."))
            if kind is not None:
                invoked.stamps.setdefault(kind, _epoch(r["timestamp"]))
        t = by_job.get(r.get("jobId"))
        if t is None:
            continue
        if r["message"].startswith("orchestration started") and r.get("invocationId") in starts:
            t.stamps["pickup"] = starts[r["invocationId"]]
        elif r["message"].startswith("stream attempt started"):
            t.stamps.setdefault("claimed", _epoch(r["timestamp"]))


async def _measure(urls: dict[str, str], warm: int, idle: int, idle_s: float
                   ) -> tuple[list[JobTiming], list[JobTiming]]:  # fmt: skip
    api = ApiClient(urls["host"], "bench")
    hub = await HubClient.connect(await api.negotiate())
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(WARMUP_JOBS):
                await _one_job(api, hub, urls, f"warmup {i}", http)
            warm_runs = []
            for i in range(warm):
                warm_runs.append(await _one_job(api, hub, urls, f"warm {i}", http))
                await asyncio.sleep(0.2)
            idle_runs = []
            for i in range(idle):
                await asyncio.sleep(idle_s)
                idle_runs.append(await _one_job(api, hub, urls, f"idle {i}", http))
        return warm_runs, idle_runs
    finally:
        await hub.aclose()
        await api.aclose()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def _cell(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{_pct(ms, 0.5):.0f} / {_pct(ms, 0.95):.0f}" if ms else "-"


def render(warm: list[JobTiming], idle: list[JobTiming], idle_s: float) -> str:
    rows = [("**overhead: submit to first delta at the client, minus model ttft**",
             [t.overhead for t in warm], [t.overhead for t in idle]),
            ("submit to first delta at the client (raw)", [t.first_delta - t.submit for t in warm],
             [t.first_delta - t.submit for t in idle]),
            ("model ttft at the emulator (subtracted)", [t.model_ttft for t in warm],
             [t.model_ttft for t in idle])]  # fmt: skip
    for stage in warm[0].stages() if warm else {}:
        w = [t.stages()[stage] for t in warm if stage in t.stages()]
        label = f"stage: {stage[1:-1]}" if stage.startswith("(") else f"stage: … to {stage}"
        rows.append((label, w, [t.stages()[stage] for t in idle if stage in t.stages()]))
    lines = [f"| ms, p50 / p95 | warm (n={len(warm)}) | after {idle_s:g} s idle (n={len(idle)}) |",
             "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {name} | {_cell(w)} | {_cell(i)} |" for name, w, i in rows]
    ov = [t.overhead * 1000 for t in warm]
    met = ov and _pct(ov, 0.5) < 50 and _pct(ov, 0.95) < 150
    lines += [
        "",
        f"Aim (warm overhead p50 < 50 ms, p95 < 150 ms): **{'met' if met else 'not met'}**.",
    ]
    lines += ["", "| per job (mean) | deltas | delta messages | SignalR messages | billed units |",
              "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, runs in (("warm", warm), ("idle", idle)):
        if runs:
            mean = {k: sum(t.counts[k] for t in runs) / len(runs) for k in runs[0].counts}
            cells = " | ".join(f"{mean[k]:.1f}" for k in runs[0].counts)
            lines.append(f"| {name} | {cells} |")
    lines += ["", f"Jobs: one user, one WebSocket client, prompts ending `{MARKER}`; "
              f"{WARMUP_JOBS} warm-up jobs not counted; warm jobs 0.2 s apart. SignalR messages "
              "count every invocation routed to the client (deltas plus `running`/`completed` "
              "status); billed units = per message ceil(bytes / 2 KB)."]  # fmt: skip
    return "\n".join(lines)


def run(jobs: int, idle: int | None = None, idle_s: float = IDLE_S) -> str:
    """`jobs` warm jobs and `idle` (default max(3, jobs // 10)) jobs after `idle_s` idle."""
    idle = max(3, jobs // 10) if idle is None else idle
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "host.log"
        with _stack(log) as urls:
            warm, idle_runs = asyncio.run(_measure(urls, jobs, idle, idle_s))
        _log_stamps(log, warm + idle_runs)
    return render(warm, idle_runs, idle_s)
