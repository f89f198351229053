"""`python -m bench load [--levels 10,50,100,200] [--soak-seconds 180] [--no-write]`
(also `python -m bench.load`)

Concurrent jobs through the whole local stack (Azurite, both emulators and the local
Functions host, each its own process, all on 127.0.0.1 and free ports), each job followed
live by its own user's SignalR subscriber (bench/clients.py, all in this one process).
Prints the tables and writes them into the "## Load" and "## Soak" sections of
docs/benchmarks.md. Every run is bounded: each level has a deadline, the soak a duration.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ._jobs import JobRecord, Tracker, fetch_text, make_prompt, submit
from ._loadstats import added_delays, cpu_percent, emission_times, percentile, rss_summary
from ._machine import machine
from ._stackproc import ROOT, Sampler, StackProcs, running_stack
from .clients import SubscriberPool

__all__ = ["Pacing", "keeps_up", "machine", "main", "run", "shortfalls", "write_sections"]

# Below the host's 5 s (uvicorn's keep-alive): a pooled connection is never reused just as
# the server closes it (a soak worker waits about 5 s between its POST and its GET, and such
# a race surfaced as ECONNRESET).
KEEPALIVE_S = 2.0
PROCS = ("host", "azurite", "signalr-emu", "openai-emu", "harness")
STACK_SETTINGS = {  # per-user limits out of the way: every job has its own user anyway
    "GLOBAL_MAX_CONCURRENT_JOBS": "10000",
    "USER_JOBS_PER_MINUTE": "10000",
    "USER_MAX_CONCURRENT_JOBS": "8",
}


@dataclass(frozen=True)
class Pacing:
    tokens: int = 200
    rate: float = 50.0
    jitter: float = 0.3
    ttft_ms: float = 300.0

    @property
    def ideal_s(self) -> float:  # a job's stream alone, unloaded
        return self.ttft_ms / 1000 + self.tokens / self.rate


@dataclass
class Figures:
    """What one level (or the soak) measured."""

    jobs: int
    finished: int = 0
    exact: int = 0
    wall_s: float = 0.0
    delays: list[float] = field(default_factory=list)  # per model delta, seconds
    starts: list[float] = field(default_factory=list)  # POST sent -> LLM stream opened
    tails: list[float] = field(default_factory=list)  # last delta emitted -> final status
    posts: list[float] = field(default_factory=list)
    lag_max: float = 0.0  # the harness's own event-loop lateness
    errors: int = 0  # soak jobs lost to a client-side error (connection, timeout)
    first_error: str = ""
    signalr: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    rss: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_late: dict[str, dict[str, float]] = field(default_factory=dict)  # the soak's 2nd half


async def _json(session: aiohttp.ClientSession, method: str, url: str) -> Any:
    async with session.request(method, url) as res:
        return await res.json(content_type=None)


async def _lag(box: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.05
        await asyncio.sleep(0.05)
        box[0] = max(box[0], loop.time() - due)


def _account(fig: Figures, job: JobRecord, streams: dict[str, dict[str, Any]]) -> None:
    fig.posts.append(job.post_s)
    if job.final is None:
        return
    fig.finished += 1
    fig.exact += job.exact
    stream = streams.get(job.key)
    if stream is None or not stream["marks"]:
        return
    tokens = job.tokens
    emitted = emission_times(stream["marks"], len(tokens))
    fig.delays += added_delays(tokens, emitted, job.live())
    fig.starts.append(stream["start"] - job.posted)
    if emitted:
        fig.tails.append(job.final_at - emitted[-1])


async def _drain(session: aiohttp.ClientSession, stack: StackProcs) -> dict[str, dict[str, Any]]:
    body = await _json(session, "POST", stack.openai_url + "/_emulator/timeline")
    return {s["key"]: s for s in body["streams"]}  # a retried prompt: its last attempt


async def run_level(stack: StackProcs, sampler: Sampler, n: int, pacing: Pacing) -> Figures:
    tracker, fig, tag = Tracker(), Figures(n), secrets.token_hex(3)
    users = [f"load{n}-{tag}-{i}" for i in range(n)]
    jobs = [
        JobRecord(u, make_prompt(f"{tag}-{i}", pacing.tokens, pacing.rate, pacing.jitter,
                                 pacing.ttft_ms))
        for i, u in enumerate(users)
    ]  # fmt: skip
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S)
    async with (
        SubscriberPool(stack.base, tracker.on_message) as pool,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        await pool.open(users)
        await _json(http, "POST", stack.signalr_url + "/_emulator/reset")
        await _drain(http, stack)
        lag, stop = [0.0], asyncio.Event()
        lagger = asyncio.create_task(_lag(lag, stop))
        first = sampler.sample()
        started = time.monotonic()

        async def one(job: JobRecord) -> None:
            await submit(http, stack.base, job)
            if job.job_id:
                tracker.attach(job)
                await job.done.wait()

        deadline = 60 + 3 * pacing.ideal_s + 0.2 * n
        tasks = [asyncio.create_task(one(j)) for j in jobs]
        await asyncio.wait(tasks, timeout=deadline)
        for t in tasks:
            t.cancel()
        fig.wall_s = time.monotonic() - started
        last = sampler.sample()
        stop.set()
        await lagger
        fig.lag_max = lag[0]
        await asyncio.sleep(0.5)  # let the last streams' timeline records close
        streams = await _drain(http, stack)
        for job in jobs:
            if job.final is not None:
                job.text = await fetch_text(http, stack.base, job)
            _account(fig, job, streams)
        stats = await _json(http, "GET", stack.signalr_url + "/_emulator/stats")
        fig.signalr = stats["totals"]
    fig.cpu = cpu_percent(first, last)
    window = [s for s in sampler.samples if first.t <= s.t <= last.t]
    fig.rss = dict(rss_summary(window))
    return fig


async def run_soak(
    stack: StackProcs, sampler: Sampler, workers: int, seconds: float, pacing: Pacing
) -> Figures:
    """`workers` users, each running jobs back to back until `seconds` have passed."""
    tracker, fig, tag = Tracker(), Figures(0), secrets.token_hex(3)
    users = [f"soak-{tag}-{i}" for i in range(workers)]
    streams: dict[str, dict[str, Any]] = {}
    pending: list[JobRecord] = []
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S)
    async with (
        SubscriberPool(stack.base, tracker.on_message) as pool,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        await pool.open(users)
        await _json(http, "POST", stack.signalr_url + "/_emulator/reset")
        await _drain(http, stack)
        first = sampler.sample()
        started = time.monotonic()
        end = started + seconds
        lag, stop = [0.0], asyncio.Event()
        lagger = asyncio.create_task(_lag(lag, stop))

        async def worker(user: str) -> None:
            k = 0
            while time.monotonic() < end:
                job = JobRecord(user, make_prompt(f"{user}-{k}", pacing.tokens, pacing.rate,
                                                  pacing.jitter, pacing.ttft_ms))  # fmt: skip
                k += 1
                fig.jobs += 1
                try:
                    await one_job(job)
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                    # Counted and shown (a job lost is not exact), and the worker goes on:
                    # one error must not take a worker's load out of the rest of the soak.
                    fig.errors += 1
                    fig.first_error = fig.first_error or repr(exc)
                    tracker.forget(job)
                    fig.posts.append(job.post_s)
                    await asyncio.sleep(1)

        async def one_job(job: JobRecord) -> None:
            await submit(http, stack.base, job)
            if not job.job_id:
                fig.posts.append(job.post_s)
                await asyncio.sleep(1)
                return
            tracker.attach(job)
            await asyncio.wait_for(job.done.wait(), 60 + 3 * pacing.ideal_s)
            job.text = await fetch_text(http, stack.base, job)
            tracker.forget(job)
            pending.append(job)

        async def account_loop() -> None:
            # Figures are taken as jobs finish, and their deltas dropped, so the harness
            # holds no more than a few seconds of jobs however long the soak runs.
            while True:
                await asyncio.sleep(10)
                streams.update(await _drain(http, stack))
                keep = []
                for job in pending:
                    if job.key in streams:
                        _account(fig, job, {job.key: streams.pop(job.key)})
                    else:
                        keep.append(job)
                pending[:] = keep

        accountant = asyncio.create_task(account_loop())
        results = await asyncio.gather(*(worker(u) for u in users), return_exceptions=True)
        fig.wall_s = time.monotonic() - started
        last = sampler.sample()
        stop.set()
        await lagger
        fig.lag_max = lag[0]
        accountant.cancel()
        await asyncio.gather(accountant, return_exceptions=True)
        await asyncio.sleep(0.5)
        streams.update(await _drain(http, stack))
        for job in pending:
            _account(fig, job, streams)
        fig.signalr = (await _json(http, "GET", stack.signalr_url + "/_emulator/stats"))["totals"]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            print(f"soak: {len(errors)} workers stopped early: {errors[0]!r}", file=sys.stderr)
    fig.cpu = cpu_percent(first, last)
    window = [s for s in sampler.samples if first.t <= s.t <= last.t]
    fig.rss = dict(rss_summary(window))
    # A warming heap grows early and levels off; a leak grows at the same rate throughout:
    # the slope over the second half alone tells the two apart.
    fig.rss_late = dict(rss_summary(window[len(window) // 2 :]))
    return fig


def _ms(values: Sequence[float], q: float) -> str:
    v = percentile(values, q)
    return "–" if v != v else f"{v * 1000:.0f}"


def _bottleneck(fig: Figures) -> tuple[str, float]:
    name = max((n for n in fig.cpu if n != "harness"), key=lambda n: fig.cpu[n])
    return name, fig.cpu[name]


def shortfalls(fig: Figures, pacing: Pacing) -> list[str]:
    """Why a level did not keep up (empty when it did): transcripts not all exact, p99 added
    delay at 1 s or more, or the level not done within 2x ideal + 5 s (jobs still running at
    the level's deadline count as not exact)."""
    out = []
    if fig.exact != fig.jobs:
        out.append(f"{fig.jobs - fig.exact} of {fig.jobs} not exact or unfinished")
    p99 = percentile(fig.delays, 99)
    if p99 != p99:
        out.append("no added delay measured")
    elif not p99 < 1.0:
        out.append(f"p99 {p99 * 1000:.0f} ms")
    limit = 2 * pacing.ideal_s + 5
    if not fig.wall_s < limit:
        out.append(f"wall {fig.wall_s:.0f} s > {limit:.0f} s")
    return out


def keeps_up(fig: Figures, pacing: Pacing) -> bool:
    """Every transcript exact, p99 added delay under 1 s, the level done within 2x ideal + 5 s."""
    return not shortfalls(fig, pacing)


def activity_slots(settings: dict[str, str]) -> int | None:
    """maxConcurrentActivityFunctions the host ran with (host.json, or an app setting)."""
    key = "AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions"
    if key in settings:
        return int(settings[key])
    try:
        durable = json.loads((ROOT / "host.json").read_text())["extensions"]["durableTask"]
        return int(durable["maxConcurrentActivityFunctions"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_table(levels: Sequence[Figures], pacing: Pacing, slots: int | None = None) -> str:
    head = (
        "| jobs | exact | wall s | added delay p50 / p95 / p99 ms | start p50 / p95 ms "
        "| tail p50 / p95 ms | POST p95 ms | SignalR msgs / units / dropped "
        "| CPU % host / azurite / signalr / openai / harness | max RSS MB host / azurite "
        "| harness lag max ms | keeps up |\n" + "|---" * 12 + "|\n"
    )
    rows = []
    for f in levels:
        c, r = f.cpu, f.rss
        sig = f.signalr
        rows.append(
            f"| {f.jobs} | {f.exact}/{f.jobs} | {f.wall_s:.1f} "
            f"| {_ms(f.delays, 50)} / {_ms(f.delays, 95)} / {_ms(f.delays, 99)} "
            f"| {_ms(f.starts, 50)} / {_ms(f.starts, 95)} "
            f"| {_ms(f.tails, 50)} / {_ms(f.tails, 95)} | {_ms(f.posts, 95)} "
            f"| {sig.get('messages', 0)} / {sig.get('units', 0)} / "
            f"{sig.get('dropped_slow_clients', 0)} "
            f"| {' / '.join(f'{c.get(n, 0):.0f}' for n in PROCS)} "
            f"| {r.get('host', {}).get('max', 0):.0f} / {r.get('azurite', {}).get('max', 0):.0f} "
            f"| {f.lag_max * 1000:.0f} | {'; '.join(shortfalls(f, pacing)) or 'yes'} |"
        )
    verdict = ""
    failing = [f for f in levels if not keeps_up(f, pacing)]
    if failing:
        name, pct = _bottleneck(failing[0])
        verdict = (
            f"\nStops keeping up at **{failing[0].jobs} concurrent jobs** "
            f"({'; '.join(shortfalls(failing[0], pacing))}); the busiest process there is "
            f"**{name}** at {pct:.0f}% of a core (Python and Node run one thread of work each, "
            "so about 100% is a process's ceiling)"
        )
        if pct < 85 and slots is not None and failing[0].jobs > slots:
            verdict += (
                f". No process is at its ceiling: the host runs at most {slots} streams at "
                "once (`maxConcurrentActivityFunctions`), so the other jobs wait for a slot "
                f"(start p95 {_ms(failing[0].starts, 95)} ms)"
            )
        verdict += ".\n"
    else:
        name, pct = _bottleneck(levels[-1])
        verdict = (
            f"\nKeeps up at every level measured; the busiest process at the top level is "
            f"**{name}** at {pct:.0f}% of a core.\n"
        )
    return head + "\n".join(rows) + "\n" + verdict


def soak_table(fig: Figures, workers: int, seconds: float) -> str:
    lines = [
        f"{workers} users running jobs back to back for {seconds:.0f} s: {fig.jobs} jobs "
        f"submitted, {fig.finished} finished, {fig.exact} transcripts exact; added delay per "
        f"delta p50 / p95 / p99 {_ms(fig.delays, 50)} / {_ms(fig.delays, 95)} / "
        f"{_ms(fig.delays, 99)} ms over {len(fig.delays)} deltas; SignalR messages "
        f"{fig.signalr.get('messages', 0)}, units {fig.signalr.get('units', 0)}, slow clients "
        f"dropped {fig.signalr.get('dropped_slow_clients', 0)}; harness lag max "
        f"{fig.lag_max * 1000:.0f} ms; client-side errors {fig.errors}"
        + (f" (first: `{fig.first_error}`)" if fig.errors else "")
        + ".",
        "",
        "| process | CPU % of a core | RSS start MB | RSS end MB | RSS max MB | slope MB/min "
        "| slope 2nd half MB/min |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in PROCS:
        r = fig.rss.get(n, {})
        lines.append(
            f"| {n} | {fig.cpu.get(n, 0):.0f} | {r.get('start', 0):.0f} | {r.get('end', 0):.0f} "
            f"| {r.get('max', 0):.0f} | {r.get('slope', 0):+.1f} "
            f"| {fig.rss_late.get(n, {}).get('slope', 0):+.1f} |"
        )
    return "\n".join(lines) + "\n"


METHOD = """\
Method. Each job has its own user and its own subscriber (one WebSocket each, all held by
the harness process with one asyncio loop: bench/clients.py speaks the JSON hub protocol
through the app's `/api/negotiate` redirect). The OpenAI emulator runs with `--timeline`
and stamps the wall time of every write of content deltas; the harness stamps the wall time
each `delta` message is read off the socket. *Added delay* of a model delta = arrival of the
batch that carries its last character minus the time the emulator wrote it (same machine,
same clock); it includes the 90 ms batching window, Table writes, the SignalR REST call and
the emulator's fan-out, and also the harness's own lateness (its loop lag is in the table).
*Start* = POST sent until the emulator opened the stream (HTTP trigger, queue, queue
trigger, orchestration start, activity start). *Tail* = last delta written by the emulator
until the final `status` message reached the client. Transcripts are rebuilt by the stream
contract and compared with the emulator's deterministic answer. CPU is the share of one
core over the level's wall time, from /proc (a process with its descendants).
"""


def write_sections(path: Path, sections: dict[str, str], header: str) -> None:
    """Replace (or append) only our own `## Load` / `## Soak` sections, between markers."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    for title, body in sections.items():
        name = title.lower()
        begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
        block = f"{begin}\n{header}\n\n{body.rstrip()}\n{end}"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def run(args: argparse.Namespace) -> dict[str, str]:
    pacing = Pacing(args.tokens, args.rate, args.jitter, args.ttft_ms)
    out: dict[str, str] = {}
    logs = Path(tempfile.mkdtemp(prefix="bench-load-"))
    settings = {**STACK_SETTINGS, **dict(args.set)}
    with running_stack(logs, **settings) as stack:
        print(f"stack up (logs in {logs})", file=sys.stderr)
        sampler = Sampler(stack.pids, interval=1.0, alone=frozenset({"harness"}))
        with sampler:
            levels: list[Figures] = []
            for n in args.levels:
                fig = await run_level(stack, sampler, n, pacing)
                levels.append(fig)
                verdict = "; ".join(shortfalls(fig, pacing)) or "keeps up"
                print(f"level {n}: {fig.exact}/{n} exact, {fig.wall_s:.1f} s, "
                      f"p95 {_ms(fig.delays, 95)} ms: {verdict}", file=sys.stderr)  # fmt: skip
                await asyncio.sleep(2)  # let the host settle between levels
            if levels:
                marker = (
                    f"Pacing per job: `[[emulator tokens={pacing.tokens} rate={pacing.rate:g} "
                    f"jitter={pacing.jitter:g} ttft_ms={pacing.ttft_ms:g}]]` (one stream alone "
                    f"takes about {pacing.ideal_s:.1f} s).\n\n"
                )
                slots = activity_slots(settings)
                out["Load"] = marker + load_table(levels, pacing, slots) + "\n" + METHOD
        if args.soak_seconds > 0:
            sampler = Sampler(stack.pids, interval=5.0, alone=frozenset({"harness"}))
            with sampler:
                fig = await run_soak(stack, sampler, args.soak_workers, args.soak_seconds, pacing)
            out["Soak"] = soak_table(fig, args.soak_workers, args.soak_seconds) + (
                "\nRSS is sampled every 5 s; the slope is a least-squares fit over the whole "
                "run. Azurite keeps everything in memory (`--inMemoryPersistence`), so its "
                "growth is stored data (jobs, transcripts, durable history), not a leak.\n"
            )
    return out


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated job counts") from None
    if any(n < 1 or n > 1000 for n in levels):
        raise argparse.ArgumentTypeError("job counts must be between 1 and 1000")
    return levels


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name.strip(), value


def main(argv: list[str] | None = None, prog: str = "python -m bench.load") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--levels", type=_levels, default=[10, 50, 100, 200])
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--jitter", type=float, default=0.3)
    p.add_argument("--ttft-ms", type=float, default=300.0)
    p.add_argument("--soak-seconds", type=float, default=180.0, help="0 skips the soak")
    p.add_argument("--soak-workers", type=int, default=50)
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    p.add_argument(
        "--set", type=_setting, action="append", default=[], metavar="NAME=VALUE",
        help="an app setting for the host, e.g. AzureFunctionsJobHost__extensions__"
        "durableTask__maxConcurrentActivityFunctions=256 (repeatable)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if not 0 <= args.soak_seconds <= 3600 or args.soak_workers < 1:
        p.error("--soak-seconds must be 0..3600 and --soak-workers at least 1")
    sections = asyncio.run(run(args))
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join([prog, *(shlex.quote(a) for a in given)])  # `--levels ''` stays visible
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    header = f"_Generated by `{command.strip()}` on {today}; machine: {machine()}._"
    for title, body in sections.items():
        print(f"## {title}\n\n{header}\n\n{body}")
    if not args.no_write:
        write_sections(ROOT / "docs" / "benchmarks.md", sections, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
