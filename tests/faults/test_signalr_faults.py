"""SignalR Service faults through the whole stack: REST 5xx (brief and lasting), a
timeout, a slow service, and a subscriber cut off mid-stream that reconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.contract import deltas_of

from .harness import Case, FaultStack, verify, wait_durable_done

pytestmark = pytest.mark.e2e

FAST = "tokens=60 rate=300 ttft_ms=0"
SLOW = "tokens=120 rate=40 ttft_ms=0"


@pytest.fixture
def faults(fstack: FaultStack) -> Iterator[Any]:
    def set_plan(**plan: Any) -> None:
        fstack.control(fstack.signalr, "/_emulator/faults", plan)

    yield set_plan
    fstack.control(fstack.signalr, "/_emulator/faults", method="DELETE")


def _run(fstack: FaultStack, case: Case) -> dict[str, Any]:
    case.listener = fstack.listen(case.user)
    case.job_id = fstack.submit(case.user, case.prompt)
    return verify(fstack, case)


def test_brief_rest_5xx_is_retried_and_delivery_stays_ok(fstack: FaultStack, faults: Any) -> None:
    faults(rest_status=503, count=2, retry_after_s=0, path_contains="/users/sig503")
    final = _run(fstack, Case("REST 503 x2", "sig503", f"Brief outage. [[emulator {FAST}]]"))
    assert final["delivery"] == "ok" and final["attempt"] == 1
    stats = fstack.control(fstack.signalr, "/_emulator/stats", method="GET")
    assert stats["totals"]["rest_faults_injected"] >= 2


def test_lasting_rest_5xx_degrades_delivery_but_not_the_job(
    fstack: FaultStack, faults: Any
) -> None:
    faults(rest_status=500, path_contains="/users/sig500")  # until cleared
    case = Case("REST 500 throughout", "sig500", f"Long outage. [[emulator {FAST}]]")
    case.listener = fstack.listen(case.user)
    case.job_id = fstack.submit(case.user, case.prompt)
    final = fstack.wait_status(case.job_id, {"completed", "failed"}, user=case.user, timeout=60)
    assert final["delivery"] == "degraded" and final["attempt"] == 1
    assert case.listener.messages("delta") == []  # nothing got through: catch-up does it all
    fstack.control(fstack.signalr, "/_emulator/faults", method="DELETE")
    verify(fstack, case)


def test_one_rest_timeout_is_retried(fstack: FaultStack, faults: Any) -> None:
    # The app's SignalR REST timeout is 10 s; the first request hangs for 11 s (the
    # emulator delays every matching request, so the plan is cleared once one hangs).
    faults(rest_delay_ms=11_000, path_contains="/users/sigtimeout")
    case = Case("REST timeout once", "sigtimeout", f"Hang once. [[emulator {FAST}]]")
    case.listener = fstack.listen(case.user)
    case.job_id = fstack.submit(case.user, case.prompt)
    time.sleep(1.0)
    fstack.control(fstack.signalr, "/_emulator/faults", method="DELETE")
    final = verify(fstack, case)
    assert final["attempt"] == 1 and final["delivery"] == "ok"


def test_lasting_rest_timeouts_bound_the_run(fstack: FaultStack, faults: Any) -> None:
    """Every send hangs: the job completes degraded, and its run (which holds the user's
    admission slot) ends within the drain and final-status bounds, not after every retry."""
    faults(rest_delay_ms=60_000, path_contains="/users/sighang")
    case = Case("REST hangs throughout", "sighang", f"Hang always. [[emulator {FAST}]]")
    case.job_id = fstack.submit(case.user, case.prompt)
    started = time.monotonic()
    final = fstack.wait_status(case.job_id, {"completed", "failed"}, user=case.user, timeout=40)
    assert final["status"] == "completed" and final["delivery"] == "degraded"
    wait_durable_done(fstack, case.job_id, timeout=15)
    assert time.monotonic() - started < 30
    fstack.control(fstack.signalr, "/_emulator/faults", method="DELETE")
    verify(fstack, case)


def test_slow_service_delays_but_delivers_everything(fstack: FaultStack, faults: Any) -> None:
    faults(rest_delay_ms=250, path_contains="/users/sigslow")
    case = Case("slow REST", "sigslow", f"Slowly. [[emulator {FAST}]]")
    final = _run(fstack, case)
    assert final["delivery"] == "ok"
    assert case.listener is not None
    deltas = deltas_of(case.listener.messages("delta"), case.job_id)
    assert [d["seq"] for d in deltas] == list(range(1, final["lastSeq"] + 1))


@pytest.mark.parametrize("abort", [False, True], ids=["close", "abort"])
def test_subscriber_cut_off_mid_stream_reconnects_and_catches_up(
    fstack: FaultStack, abort: bool
) -> None:
    user = f"sigdisc{int(abort)}"
    case = Case(f"disconnect ({'abort' if abort else 'close'})", user,
                f"Reconnect. [[emulator {SLOW}]]")  # fmt: skip
    listener = case.listener = fstack.listen(user)
    case.job_id = fstack.submit(user, case.prompt)
    listener.wait_for(lambda e: e["event"] == "message" and e["target"] == "delta", timeout=20)
    fstack.control(fstack.signalr, "/_emulator/disconnect",
                   {"userId": user, "allowReconnect": True, "abort": abort})  # fmt: skip
    listener.wait_for(lambda e: e["event"] == "reconnected", timeout=20)
    final = verify(fstack, case)
    assert final["attempt"] == 1
