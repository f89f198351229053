"""`python -m local.host [--app-dir DIR] [--port 7071] [--log-format text|json]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from local.settings_files import LocalSettingsError, load_local_settings

from .host import Host, HostError, HostOptions
from .logs import setup_logging
from .memtrace import start_from_env as start_memtrace
from .profiler import start_from_env

__all__ = ["main"]


def _ports(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("expected BLOB,QUEUE,TABLE ports")
    return parts[0], parts[1], parts[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd())
    parser.add_argument(
        "--port", type=int, default=None, help="default: Host.LocalHttpPort, else 7071"
    )
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--durable-rpc-port", type=int, default=17071)
    parser.add_argument(
        "--dev-storage-ports", type=_ports, default=(10000, 10001, 10002),
        help="Azurite ports that UseDevelopmentStorage=true maps to (blob,queue,table)",
    )  # fmt: skip
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    setup_logging(args.log_format)
    port = args.port
    if port is None:
        try:
            port = load_local_settings(args.app_dir.resolve()).local_http_port or 7071
        except LocalSettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    options = HostOptions(
        app_dir=args.app_dir, port=port, bind=args.bind,
        durable_rpc_port=args.durable_rpc_port, dev_storage_ports=args.dev_storage_ports,
        shutdown_timeout=args.shutdown_timeout,
    )  # fmt: skip
    start_from_env()  # dev-only sampling profiler, off unless LOCAL_HOST_PROFILE is set
    start_memtrace()  # dev-only heap-growth tracer, off unless LOCAL_HOST_TRACEMALLOC is set
    try:
        asyncio.run(Host(options).run())
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
