"""Start and stop Azurite (from node_modules) for development and tests.

Tests run Azurite on free ports with in-memory persistence, so several test sessions
can run side by side; `make dev` runs it on the standard ports with on-disk state.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ACCOUNT", "ACCOUNT_KEY", "Azurite", "connection_string", "free_port"]

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connection_string(blob: int, queue: int, table: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{ACCOUNT};"
    )


class _Exited(Exception):
    """Azurite exited while starting (typically: a port was taken after we chose it)."""


def _wait_port(port: int, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    while True:
        if proc.poll() is not None:
            raise _Exited(f"Azurite exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Azurite did not open port {port}") from None
            time.sleep(0.05)


@dataclass
class Azurite:
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    location: Path | None = None  # None: in-memory
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def start(self, timeout: float = 30.0) -> Azurite:
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            found = shutil.which("azurite")
            if not found:
                raise FileNotFoundError("azurite is not installed: run `npm ci`")
            binary = Path(found)
        # Ports we choose ourselves may be taken by another process before Azurite binds
        # them (free_port only asks the kernel for one that is free now): then Azurite
        # exits, and we try again with new ports. Ports given to us are not changed.
        chosen = not (self.blob_port or self.queue_port or self.table_port)
        for tries_left in range(2, -1, -1):
            try:
                return self._start_once(binary, timeout)
            except _Exited:
                if not chosen or tries_left == 0:
                    raise RuntimeError(
                        "Azurite exited while starting: are ports "
                        f"{self.blob_port}/{self.queue_port}/{self.table_port} in use?"
                    ) from None
                self.blob_port = self.queue_port = self.table_port = 0
        raise AssertionError("unreachable")

    def _start_once(self, binary: Path, timeout: float) -> Azurite:
        self.blob_port = self.blob_port or free_port()
        self.queue_port = self.queue_port or free_port()
        self.table_port = self.table_port or free_port()
        args = [
            str(binary), "--silent", "--skipApiVersionCheck", "--loose",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
        ]  # fmt: skip
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        proc = self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        deadline = time.monotonic() + timeout
        for port in (self.blob_port, self.queue_port, self.table_port):
            _wait_port(port, deadline, proc)
        # Something answered on every port; make sure it was our Azurite, not a squatter
        # that held one of them while ours exited.
        time.sleep(0.05)
        if proc.poll() is not None:
            raise _Exited(f"Azurite exited with code {proc.returncode} while starting")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # Azurite exits promptly on SIGINT; it ignores SIGTERM until it is killed.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
