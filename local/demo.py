"""`python -m local.demo`: submit a prompt and watch the answer stream in the terminal.

    python -m local.demo [--base http://127.0.0.1:7071] [--user alice] [--prompt "..."]
                         [--group G | --tab] [--max-tokens N] [--timeout S]

It does what the page does: names the user with the dev identity header (AUTH_MODE=dev),
connects to SignalR through /api/negotiate, submits the job (to the user; to a group it
joins first; or, with --tab, to this one connection after claiming it), prints the answer
as batches arrive (by the stream contract: highest attempt, seq order, no repeats, gaps
filled from /api/jobs/{id}/events), then the status and metrics on stderr.

The answer goes to stdout, everything else to stderr. Exit codes: 0 completed, 1 failed
or canceled, 2 the app refused the request (4xx, body shown), 3 a service is unreachable
or answered 5xx, 4 no end within --timeout, 130 interrupted (the job is canceled).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, TextIO

from local.cli import ApiClient, CliError, Follower, HubClient
from local.cli.follow import TERMINAL, Change

__all__ = ["main", "run"]

DEFAULT_PROMPT = "Explain in a few sentences how a river delta forms."
EXIT_TIMEOUT = 4
_QUIET_S = 1.0  # no message for this long: ask the status endpoint (a missed status)


class Printer:
    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err

    def changes(self, changes: list[Change]) -> None:
        for kind, value in changes:
            if kind == "attempt":
                self.out.write(f"\n--- attempt {value}: the answer restarts ---\n")
            else:
                self.out.write(value)
        if changes:
            self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()


async def _claim_tab(api: ApiClient, hub: HubClient, printer: Printer) -> None:
    """Prove this connection is ours: the app sends a nonce to it, we post it back."""
    await api.claim(hub.connection_id)
    deadline = time.monotonic() + 10
    while (left := deadline - time.monotonic()) > 0:
        msg = await hub.next(left)
        if msg is None:
            break
        if msg.target == "claim" and msg.arguments and isinstance(msg.arguments[0], dict):
            await api.claim(hub.connection_id, str(msg.arguments[0].get("nonce")))
            printer.note(f"connection {hub.connection_id} claimed")
            return
    raise CliError("no claim nonce arrived on this connection within 10 s")


async def _fill(api: ApiClient, follower: Follower) -> list[Change]:
    changes: list[Change] = []
    for event in await api.events(follower.job_id, follower.attempt, follower.seq):
        changes += follower.apply({"jobId": follower.job_id, **event})
    return changes


async def _follow(
    api: ApiClient, hub: HubClient, follower: Follower, printer: Printer, limit_s: float
) -> float | None:
    """Print the answer until the job ends; returns perf_counter() of the first delta."""
    deadline = time.monotonic() + limit_s
    first_delta: float | None = None
    while not follower.finished:
        if time.monotonic() > deadline:
            raise TimeoutError
        msg = await hub.next(_QUIET_S)
        if msg is not None and msg.arguments:
            if msg.target == "delta":
                changes = follower.apply(msg.arguments[0])
                if first_delta is None and changes:
                    first_delta = msg.at
                printer.changes(changes)
            elif msg.target == "status":
                printer.changes(follower.apply_status(msg.arguments[0]))
                if follower.error and follower.status == "running":
                    printer.note(f"[attempt {follower.attempt} failed: {follower.error}; retrying]")
            continue
        # Quiet (or the connection is gone): the status endpoint is the source of truth.
        printer.changes(follower.apply_status(await api.job(follower.job_id)))
        if hub.closed.is_set() and follower.status not in TERMINAL:
            await asyncio.sleep(_QUIET_S)
        if follower.has_gap():
            printer.changes(await _fill(api, follower))
    return first_delta


def _summary(job: dict[str, Any], submitted: float, first: float | None) -> list[str]:
    m = job.get("metrics") or {}
    usage = job.get("usage") or {}
    lines = [f"status: {job['status']} (attempt {job['attempt']}, delivery {job.get('delivery')})"]
    if job.get("error"):
        lines.append(f"error: {job['error']}")
    here = f"{(first - submitted) * 1000:.0f} ms" if first is not None else "-"
    ttft = f"{m['ttftMs']:.0f} ms" if m.get("ttftMs") is not None else "-"
    duration = f"{m['durationMs']:.0f} ms" if m.get("durationMs") is not None else "-"
    lines.append(f"ttft: {ttft} (activity start to first model delta); first delta here: "
                 f"{here} after submit; duration: {duration}")  # fmt: skip
    lines.append(f"tokens: {usage.get('completionTokens', '-')} completion, "
                 f"{usage.get('promptTokens', '-')} prompt; messages: {m.get('messages', 0)} "
                 f"for {m.get('deltas', 0)} model deltas")  # fmt: skip
    return lines


async def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    printer = Printer(out, err)
    api = ApiClient(args.base, args.user)
    hub: HubClient | None = None
    job_id: str | None = None
    try:
        if args.group:
            printer.note(f"group {args.group}: {await api.join_group(args.group)}")
        hub = await HubClient.connect(await api.negotiate())
        body: dict[str, Any] = {"prompt": args.prompt}
        if args.max_tokens is not None:
            body["maxTokens"] = args.max_tokens
        if args.group:
            body["groupName"] = args.group
        if args.tab:
            await _claim_tab(api, hub, printer)
            body["connectionId"] = hub.connection_id
        submitted = time.perf_counter()
        job_id = await api.submit(body)
        printer.note(f"job {job_id} queued for {args.user}")
        follower = Follower(job_id)
        first = await _follow(api, hub, follower, printer, args.timeout)
        out.write("\n")
        out.flush()
        job = await api.job(job_id)
        for line in _summary(job, submitted, first):
            printer.note(line)
        return 0 if job["status"] == "completed" else 1
    except CliError as exc:
        printer.note(f"error: {exc.message}")
        return exc.exit_code
    except TimeoutError:
        printer.note(f"error: job {job_id} did not end within {args.timeout:g} s")
        return EXIT_TIMEOUT
    except asyncio.CancelledError:
        if job_id is not None:
            printer.note(f"\ninterrupted: canceling job {job_id}")
            try:
                await asyncio.shield(api.call("DELETE", f"/api/jobs/{job_id}"))
            except CliError as exc:
                printer.note(f"cancel failed: {exc.message}")
        raise
    finally:
        if hub is not None:
            await hub.aclose()
        await api.aclose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--base", default="http://127.0.0.1:7071", help="the Functions host")
    p.add_argument("--user", default="alice", help="who you are (dev identity header)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--group", help="send to this group (joined, or created, first)")
    where.add_argument("--tab", action="store_true", help="send to this connection only")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the end")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
