"""The whole local stack as separate processes, so each one's CPU and memory can be read.

Azurite (local/azurite.py, in-memory, free ports), the SignalR and Azure OpenAI emulators
(`python -m local.<emulator> --port P`) and the local Functions host running this project's
function_app.py, all on 127.0.0.1. Usage and memory come from /proc (no psutil here): a
process's figure includes its descendants, so a tool that forks a helper is counted whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local.azurite import Azurite, free_port
from local.openai_emulator import DEFAULT_API_KEY

__all__ = ["ROOT", "Sample", "Sampler", "StackProcs", "proc_usage", "running_stack"]

ROOT = Path(__file__).resolve().parent.parent
SIGNALR_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"  # the emulator's fixed public key
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def proc_usage(pid: int, tree: Mapping[int, list[int]] | None = None) -> tuple[float, float]:
    """(CPU seconds used so far, resident MB) of `pid` and its descendants (none when `tree`
    is empty); (0, 0) if it is gone."""
    tree = _children() if tree is None else tree
    cpu, rss_kb, todo = 0.0, 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(tree.get(p, ()))
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After the command: state is field 3, utime 14 and stime 15, rss (pages) 24.
        cpu += (int(fields[11]) + int(fields[12])) / _TICK
        rss_kb += int(fields[21]) * _PAGE_KB
    return cpu, rss_kb / 1024


@dataclass
class Sample:
    t: float  # monotonic seconds
    usage: dict[str, tuple[float, float]]  # name -> (cpu seconds, rss MB)


class Sampler:
    """Samples every named process every `interval` seconds in a daemon thread."""

    def __init__(
        self, pids: Mapping[str, int], interval: float = 1.0, alone: frozenset[str] = frozenset()
    ) -> None:
        self.pids = dict(pids)
        self.alone = alone  # counted without descendants (the harness: the stack is its child)
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def sample(self) -> Sample:
        tree = _children()
        usage = {n: proc_usage(p, {} if n in self.alone else tree) for n, p in self.pids.items()}
        s = Sample(time.monotonic(), usage)
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class StackProcs:
    base: str  # the host, e.g. http://127.0.0.1:PORT
    signalr_url: str
    openai_url: str
    storage: str
    pids: dict[str, int]
    env: dict[str, str] = field(repr=False)
    log_dir: Path = field(default=ROOT)


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what} exited early:\n{tail}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as res:
            if res.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready at {url}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def running_stack(log_dir: Path, **settings: str) -> Iterator[StackProcs]:
    """Start everything on free ports; stop everything (by PID) on the way out."""
    log_dir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    azurite = Azurite().start()
    try:
        sig_port, oai_port, host_port = free_port(), free_port(), free_port()
        launch = {
            "signalr": [py, "-m", "local.signalr_emulator", "--port", str(sig_port)],
            "openai": [py, "-m", "local.openai_emulator", "--port", str(oai_port), "--timeline"],
        }
        for name, argv in launch.items():
            out = (log_dir / f"{name}.log").open("wb")
            procs.append(
                subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            )  # fmt: skip
        sig_url, oai_url = f"http://127.0.0.1:{sig_port}", f"http://127.0.0.1:{oai_port}"
        _wait_http(sig_url + "/_emulator/stats", procs[0], "SignalR emu", log_dir / "signalr.log")
        _wait_http(oai_url + "/_emulator/health", procs[1], "OpenAI emu", log_dir / "openai.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "Azure"))}
        example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
        env.update(example)
        env.update({
            "AzureWebJobsStorage": azurite.connection_string,
            "AzureSignalRConnectionString":
                f"Endpoint=http://127.0.0.1;Port={sig_port};AccessKey={SIGNALR_KEY};Version=1.0;",
            "AZURE_OPENAI_ENDPOINT": oai_url,
            "AZURE_OPENAI_API_KEY": DEFAULT_API_KEY,
            "TABLE_PREFIX": f"load{host_port}",
            "JOBS_QUEUE": f"load{host_port}",
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        env.update(settings)
        host_log = log_dir / "host.log"
        host = subprocess.Popen(
            [py, "-m", "local.host", "--app-dir", str(ROOT), "--port", str(host_port),
             "--durable-rpc-port", "0"],
            cwd=ROOT, env=env, stdout=host_log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        procs.append(host)
        base = f"http://127.0.0.1:{host_port}"
        _wait_http(base + "/api/health", host, "host", host_log)
        assert azurite.proc is not None
        pids = {
            "host": host.pid,
            "azurite": azurite.proc.pid,
            "signalr-emu": procs[0].pid,
            "openai-emu": procs[1].pid,
            "harness": os.getpid(),
        }
        yield StackProcs(base, sig_url, oai_url, azurite.connection_string, pids, env, log_dir)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        azurite.stop()
