"""bench.pipeline's arithmetic: stages, the overlapping claim, the aim line."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from bench.pipeline import JobTiming, _log_stamps, render


def _timing(offset: float, claim_after_request: float = 0.003) -> JobTiming:
    t = JobTiming("j", "p", submit=100.0, accepted=100.020, first_delta=100.050 + offset)
    t.stamps = {
        "pickup": 100.023,
        "orchestrator": 100.027,
        "activity": 100.033,
        "episode": 100.038,  # persisted after the activity started
        "model_request": 100.036,
        "claimed": 100.036 + claim_after_request,
        "model_first": 100.046,  # model ttft 10 ms
    }
    return t


def test_stages_chain_and_the_claim_overlapping_the_model_request() -> None:
    t = _timing(0.0)
    assert round(t.overhead * 1000) == 40  # 50 ms raw minus the model's 10 ms
    stages = {k: round(v * 1000) for k, v in t.stages().items()}
    assert stages == {
        "202 at client": 20,
        "queue pickup (intake starts)": 3,
        "orchestrator invoked (first episode)": 4,
        "stream activity invoked": 6,
        "model request at emulator": 3,
        "first model delta (minus model ttft)": 0,
        "first delta at client": 4,
        "(queue pickup to attempt claimed)": 16,
        "(model request to attempt claimed)": 3,
        "(orchestrator invoked to first episode persisted)": 11,
    }


def test_log_stamps_read_the_invocations_episode_pickup_and_claim(tmp_path: Path) -> None:
    job = "a" * 32

    def line(stamp: str, message: str, **fields: str) -> str:
        return json.dumps({"timestamp": f"2026-11-25T10:00:00.{stamp}Z", "message": message,
                           **fields})  # fmt: skip

    log = tmp_path / "host.log"
    log.write_text("\n".join([
        "not json",
        line("010", "Executing 'Functions.intake' (Reason='New queue message', Id=i1)",
             invocationId="i1"),
        line("014", "orchestration started", jobId=job, invocationId="i1"),
        line("016", "Executing 'Functions.job_orchestrator' (Reason='(null)', Id=o1)",
             instanceId=job),
        line("020", "Executing 'Functions.stream_job' (Reason='(null)', Id=a1)",
             instanceId=job),
        line("023", "stream attempt started", jobId=job),
        line("025", f"orchestration {job} episode: Running (0 new events, 1 activities, 5 ms)"),
        line("090", "Executing 'Functions.job_orchestrator' (Reason='(null)', Id=o2)",
             instanceId=job),
    ]))  # fmt: skip
    t = JobTiming(job, "p", submit=0.0)
    _log_stamps(log, [t])
    base = datetime.datetime(2026, 11, 25, 10, tzinfo=datetime.UTC).timestamp()
    got = {k: round((v - base) * 1000) for k, v in t.stamps.items()}
    assert got == {"pickup": 10, "orchestrator": 16, "activity": 20, "claimed": 23,
                   "episode": 25}  # fmt: skip  # the first of each, the later episode ignored


def test_the_aim_line_follows_the_percentiles() -> None:
    met = render([_timing(0.0) for _ in range(10)], [], 20.0)
    assert "overhead: submit to first delta at the client, minus model ttft** | 40 / 40 |" in met
    assert "**met**" in met
    slow = render([_timing(0.0)] * 9 + [_timing(0.2)], [], 20.0)
    assert "40 / 240" in slow and "**not met**" in slow
