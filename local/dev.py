"""`make dev`: the whole local stack in one command (`python -m local.dev`).

Starts Azurite (state in .dev/azurite), the SignalR Service emulator, the Azure OpenAI
emulator and the local Functions host with the project's function_app.py; waits for each to
be ready; prints the page URL and the settings in use (secrets masked). A service whose
setting is exported in the environment (AzureWebJobsStorage, AzureSignalRConnectionString,
AZURE_OPENAI_ENDPOINT) is used as is and its stand-in is not started. Ctrl-C (or SIGTERM)
stops everything this command started, each by its process group, and leaves nothing running.

`--check` starts everything, checks readiness, prints the timings and stops: a smoke test.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from local.azurite import Azurite, connection_string
from local.settings_files import LocalSettingsError, effective_values, load_local_settings, masked

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
# The official SignalR emulator's fixed key (public, documented; not a secret).
EMULATOR_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"


class DevError(RuntimeError):
    pass


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    azurite: Azurite | None = None
    started: float = field(default_factory=time.monotonic)
    ready_s: float = 0.0
    stop_s: float = 0.0

    def alive(self) -> bool:
        proc = self.azurite.proc if self.azurite else self.proc
        return proc is not None and proc.poll() is None

    def stop(self, grace: float) -> None:
        proc = self.azurite.proc if self.azurite else self.proc
        if proc is None or proc.poll() is not None:
            return
        # Azurite closes on SIGINT (it ignores SIGTERM for ~10 s); our Python services on either.
        first = signal.SIGINT if self.azurite else signal.SIGTERM
        for sig, wait in ((first, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)  # its own session: the group is the whole service
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_http(service: Service, method: str, url: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not service.alive():
            raise DevError(f"{service.name} exited during startup")
        try:
            httpx.request(method, url, timeout=1.0)
            service.ready_s = time.monotonic() - service.started
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise DevError(f"{service.name} was not ready at {url} within {within:.0f}s")


def _spawn(name: str, args: list[str], env: dict[str, str], quiet: bool) -> Service:
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
    )
    return Service(name, proc=proc)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m local.dev", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="start, check readiness, stop")
    p.add_argument("--app-dir", type=Path, default=ROOT)
    p.add_argument("--host-port", type=int, default=7071)
    p.add_argument("--signalr-port", type=int, default=8888)
    p.add_argument("--openai-port", type=int, default=8889)
    p.add_argument("--durable-rpc-port", type=int, default=17071)
    p.add_argument("--azurite-ports", default="10000,10001,10002", help="blob,queue,table")
    p.add_argument("--state-dir", type=Path, default=ROOT / ".dev")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--timeout", type=float, default=60.0, help="readiness timeout per service")
    return p


def _plan(args: argparse.Namespace) -> tuple[dict[str, int], dict[str, str]]:
    """Ports to claim (by what needs them) and the settings the host gets."""
    blob, queue, table = (int(p) for p in args.azurite_ports.split(","))
    ports = {"host": args.host_port, "durable RPC": args.durable_rpc_port}
    overrides: dict[str, str] = {}
    if not os.environ.get("AzureWebJobsStorage"):  # noqa: SIM112 (the real name)
        ports |= {"Azurite blob": blob, "Azurite queue": queue, "Azurite table": table}
        overrides["AzureWebJobsStorage"] = connection_string(blob, queue, table)
    if not os.environ.get("AzureSignalRConnectionString"):  # noqa: SIM112
        ports["SignalR emulator"] = args.signalr_port
        overrides["AzureSignalRConnectionString"] = (
            f"Endpoint=http://127.0.0.1;Port={args.signalr_port};"
            f"AccessKey={EMULATOR_ACCESS_KEY};Version=1.0;"
        )
    if not os.environ.get("AZURE_OPENAI_ENDPOINT"):
        ports["Azure OpenAI emulator"] = args.openai_port
        overrides["AZURE_OPENAI_ENDPOINT"] = f"http://127.0.0.1:{args.openai_port}"
    return ports, overrides


def _start_all(args: argparse.Namespace, services: list[Service]) -> dict[str, str]:
    try:
        local = load_local_settings(args.app_dir.resolve())
    except LocalSettingsError as exc:
        raise DevError(str(exc)) from exc
    ports, overrides = _plan(args)
    for what, port in ports.items():
        if not _port_free(port):
            raise DevError(f"port {port} ({what}) is already in use: stop what holds it, or "
                           "export that service's setting to use it instead")  # fmt: skip
    env = {**os.environ, **overrides}
    quiet = args.check
    if "Azurite blob" in ports:
        blob, queue, table = (int(p) for p in args.azurite_ports.split(","))
        service = Service("Azurite")
        services.append(service)
        service.azurite = Azurite(blob, queue, table, location=args.state_dir / "azurite")
        service.azurite.start(timeout=args.timeout)
        service.ready_s = time.monotonic() - service.started
    host_origins = [f"http://127.0.0.1:{args.host_port}", f"http://localhost:{args.host_port}"]
    if "SignalR emulator" in ports:
        cors = [a for o in host_origins for a in ("--cors-origin", o)]
        service = _spawn(
            "SignalR emulator",
            ["-m", "local.signalr_emulator", "--port", str(args.signalr_port), *cors],
            env, quiet,
        )  # fmt: skip
        services.append(service)
        _wait_http(
            service, "HEAD", f"http://127.0.0.1:{args.signalr_port}/api/health", args.timeout
        )
    if "Azure OpenAI emulator" in ports:
        key = effective_values(local, os.environ).get("AZURE_OPENAI_API_KEY")
        extra = ["--api-key", key] if key else []
        service = _spawn(
            "Azure OpenAI emulator",
            ["-m", "local.openai_emulator", "--port", str(args.openai_port), *extra],
            env, quiet,
        )  # fmt: skip
        services.append(service)
        url = f"http://127.0.0.1:{args.openai_port}/_emulator/health"
        _wait_http(service, "GET", url, args.timeout)
    service = _spawn(
        "Functions host",
        ["-m", "local.host", "--app-dir", str(args.app_dir), "--port", str(args.host_port),
         "--durable-rpc-port", str(args.durable_rpc_port), "--log-format", args.log_format],
        env, quiet,
    )  # fmt: skip
    services.append(service)
    _wait_http(service, "GET", f"http://127.0.0.1:{args.host_port}/", args.timeout)
    return {**effective_values(local, os.environ), **overrides}


def _report(args: argparse.Namespace, services: list[Service], settings: dict[str, str]) -> None:
    print(f"\nLocal stack ready. Page: http://127.0.0.1:{args.host_port}/\n", flush=True)
    for s in services:
        print(f"  {s.name:<24} ready in {s.ready_s:.2f}s", flush=True)
    print("\nSettings in use:", flush=True)
    for name in sorted(settings):
        print(f"  {name}={masked(name, settings[name])}", flush=True)
    if not args.check:
        print("\nCtrl-C stops everything.\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    services: list[Service] = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        settings = _start_all(args, services)
        _report(args, services, settings)
        while not args.check and not stopping:
            dead = [s.name for s in services if not s.alive()]
            if dead:
                print(f"error: {', '.join(dead)} stopped unexpectedly", file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    except (DevError, TimeoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan children
        for service in reversed(services):
            began = time.monotonic()
            service.stop(grace=35.0 if service.name == "Functions host" else 10.0)
            service.stop_s = time.monotonic() - began
        if services:
            stopped = ", ".join(f"{s.name} ({s.stop_s:.1f}s)" for s in reversed(services))
            print(f"Stopped: {stopped}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
