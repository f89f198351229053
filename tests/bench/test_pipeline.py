"""bench.pipeline's arithmetic: stages, the overlapping claim, the aim line."""

from __future__ import annotations

from bench.pipeline import JobTiming, render


def _timing(offset: float, claim_after_request: float = 0.003) -> JobTiming:
    t = JobTiming("j", "p", submit=100.0, accepted=100.020, first_delta=100.050 + offset)
    t.stamps = {
        "pickup": 100.023,
        "episode": 100.033,
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
        "first orchestrator episode persisted": 10,
        "model request at emulator": 3,
        "first model delta (minus model ttft)": 0,
        "first delta at client": 4,
        "(queue pickup to attempt claimed)": 16,
        "(model request to attempt claimed)": 3,
    }


def test_the_aim_line_follows_the_percentiles() -> None:
    met = render([_timing(0.0) for _ in range(10)], [], 20.0)
    assert "overhead: submit to first delta at the client, minus model ttft** | 40 / 40 |" in met
    assert "**met**" in met
    slow = render([_timing(0.0)] * 9 + [_timing(0.2)], [], 20.0)
    assert "40 / 240" in slow and "**not met**" in slow
