"""`python -m local.openai_emulator [--host 127.0.0.1 --port 8889 ...]`"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from ._pacing import Pacing
from ._profiles import CHAT, REASONING, Profile
from ._server import DEFAULT_API_KEY, OpenAIEmulator

_PROFILES = {"chat": CHAT, "reasoning": REASONING}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m local.openai_emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8889)
    p.add_argument("--api-key", default=DEFAULT_API_KEY)
    p.add_argument("--bearer-token", default=None, help="a static bearer token to accept")
    p.add_argument(
        "--deployment",
        action="append",
        metavar="NAME=PROFILE",
        help="map a deployment to 'chat' or 'reasoning' (repeatable; "
        "default: chat=chat, reasoning=reasoning)",
    )
    p.add_argument("--ttft-ms", type=float, default=None, help="override every profile's ttft")
    p.add_argument("--reasoning-ttft-ms", type=float, default=None)
    p.add_argument("--rate", type=float, default=60.0, help="content deltas per second")
    p.add_argument("--jitter", type=float, default=0.2)
    p.add_argument("--burst", type=int, default=1, help="deltas released together")
    p.add_argument("--tokens", type=int, default=200, help="default answer length")
    p.add_argument(
        "--timeline",
        action="store_true",
        help="record when each delta is written (POST /_emulator/timeline drains it)",
    )
    return p


def _deployments(specs: list[str] | None) -> dict[str, Profile] | None:
    if not specs:
        return None
    out: dict[str, Profile] = {}
    for spec in specs:
        name, _, profile = spec.partition("=")
        if not name or profile not in _PROFILES:
            raise SystemExit(f"--deployment {spec!r}: expected NAME=chat or NAME=reasoning")
        out[name] = _PROFILES[profile]
    return out


async def _serve(args: argparse.Namespace) -> None:
    pacing = Pacing(args.ttft_ms, args.rate, args.jitter, args.burst, args.tokens)
    emulator = OpenAIEmulator(
        args.host,
        args.port,
        api_key=args.api_key,
        bearer_token=args.bearer_token,
        deployments=_deployments(args.deployment),
        pacing=pacing,
        reasoning_ttft_ms=args.reasoning_ttft_ms,
        timeline=args.timeline,
    )
    await emulator.start()
    names = ", ".join(f"{n} ({p.name})" for n, p in emulator.state.deployments.items())
    print(f"Azure OpenAI emulator on {emulator.endpoint}", flush=True)
    print(f"  AZURE_OPENAI_ENDPOINT={emulator.endpoint}", flush=True)
    print(f"  AZURE_OPENAI_API_KEY={emulator.api_key}", flush=True)
    print(f"  deployments: {names}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
