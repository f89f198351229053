"""`python -m local.signalr_emulator [--host H] [--port P]`: run until Ctrl+C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .core import EmulatorOptions
from .server import DEFAULT_ACCESS_KEY, SignalREmulator

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.signalr_emulator", description="Local Azure SignalR Service emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        help="allowed browser origin (repeatable; default the local host's)",
    )
    parser.add_argument("--ping-interval", type=float, default=10.0)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    defaults = EmulatorOptions()
    options = EmulatorOptions(
        ping_interval_s=args.ping_interval,
        cors_origins=tuple(args.cors_origin) if args.cors_origin else defaults.cors_origins,
    )
    emulator = SignalREmulator(args.host, args.port, args.access_key, options)
    await emulator.start()
    print(emulator.connection_string, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
