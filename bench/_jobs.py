"""Jobs under load: submit through the app, follow them live, check each transcript.

The tracker records every `delta` and `status` invocation a subscriber receives, by job id,
with its arrival time. A transcript is rebuilt as the stream contract says (tests/e2e/
contract.py, web/contract.js): the final attempt's live deltas by seq, any gap filled from
`GET /api/jobs/{id}/events`, and compared with the emulator's deterministic answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from local.openai_emulator import expected_tokens

__all__ = ["FINAL", "JobRecord", "Tracker", "fetch_text", "make_prompt", "submit"]

FINAL = frozenset({"completed", "failed", "canceled"})


def make_prompt(tag: str, tokens: int, rate: float, jitter: float, ttft_ms: float) -> str:
    return (
        f"Load {tag}: describe a river delta. "
        f"[[emulator tokens={tokens} rate={rate:g} jitter={jitter:g} ttft_ms={ttft_ms:g}]]"
    )


@dataclass
class JobRecord:
    user: str
    prompt: str
    posted: float = 0.0  # wall time the POST was sent
    post_s: float = 0.0  # its round trip
    job_id: str = ""
    http_status: int = 0
    # attempt -> seq -> (arrival time, text)
    deltas: dict[int, dict[int, tuple[float, str]]] = field(default_factory=dict)
    final: dict[str, Any] | None = None
    final_at: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    text: str | None = None  # the transcript by the contract, once checked

    @property
    def key(self) -> str:  # the OpenAI emulator's timeline key for this prompt
        return hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()[:32]

    @property
    def tokens(self) -> list[str]:
        return expected_tokens([{"role": "user", "content": self.prompt}])

    @property
    def exact(self) -> bool:
        return self.text is not None and self.text == "".join(self.tokens)

    def live(self) -> list[tuple[float, str]]:
        """The final attempt's batches received live, in seq order, up to the first gap."""
        attempt = int(self.final["attempt"]) if self.final else max(self.deltas, default=0)
        parts = self.deltas.get(attempt, {})
        out, seq = [], 1
        while seq in parts:
            out.append(parts[seq])
            seq += 1
        return out


class Tracker:
    """Routes received invocations to job records (records appear on first sight of an id)."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRecord] = {}
        self._early: dict[str, list[tuple[float, str, dict[str, Any]]]] = {}

    def attach(self, job: JobRecord) -> None:
        self.jobs[job.job_id] = job
        for t, target, arg in self._early.pop(job.job_id, []):
            self._apply(job, t, target, arg)

    def on_message(self, user: str, t: float, target: str, arg: dict[str, Any]) -> None:
        job_id = str(arg.get("jobId", ""))
        job = self.jobs.get(job_id)
        if job is None:  # ahead of the POST's answer under load: keep it for attach()
            self._early.setdefault(job_id, []).append((t, target, arg))
            return
        self._apply(job, t, target, arg)

    @staticmethod
    def _apply(job: JobRecord, t: float, target: str, arg: dict[str, Any]) -> None:
        if target == "delta":
            job.deltas.setdefault(int(arg["attempt"]), {})[int(arg["seq"])] = (t, arg["text"])
        elif target == "status" and arg.get("status") in FINAL and job.final is None:
            job.final, job.final_at = arg, t
            job.done.set()

    def forget(self, job: JobRecord) -> None:
        self.jobs.pop(job.job_id, None)


async def submit(session: aiohttp.ClientSession, base: str, job: JobRecord) -> None:
    headers = {"x-ms-client-principal-id": job.user}
    job.posted = time.time()
    async with session.post(f"{base}/api/jobs", json={"prompt": job.prompt},
                            headers=headers) as res:  # fmt: skip
        job.http_status = res.status
        body = await res.json(content_type=None)
    job.post_s = time.time() - job.posted
    if res.status == 202:
        job.job_id = str(body["jobId"])


async def fetch_text(session: aiohttp.ClientSession, base: str, job: JobRecord) -> str:
    """The transcript by the contract: live deltas of the final attempt, gaps from events."""
    headers = {"x-ms-client-principal-id": job.user}
    async with session.get(f"{base}/api/jobs/{job.job_id}", headers=headers) as res:
        status = await res.json()
    attempt = int(status["attempt"])
    parts = {seq: text for seq, (_, text) in job.deltas.get(attempt, {}).items()}
    seq = 0
    while seq + 1 in parts:
        seq += 1
    if seq < status["lastSeq"]:
        url = f"{base}/api/jobs/{job.job_id}/events?after={seq}&attempt={attempt}"
        async with session.get(url, headers=headers) as res:
            for event in (await res.json())["events"]:
                parts.setdefault(int(event["seq"]), event["text"])
    return "".join(parts.get(i, "\ufffd") for i in range(1, int(status["lastSeq"]) + 1))
