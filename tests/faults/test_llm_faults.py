"""Azure OpenAI faults through the whole stack: rate limits and outages before the first
delta, a cut connection and a stall mid-stream, a content-filter ending."""

from __future__ import annotations

import pytest

from .harness import Case, FaultStack, expected, verify

pytestmark = pytest.mark.e2e

FAST = "tokens=60 rate=300 ttft_ms=0"

CASES = [
    Case("429 before the first delta", "llm429",
         f"Rate limited. [[emulator {FAST} fault=429 retry_after=1 times=1]]", attempt=2),
    Case("500 before the first delta", "llm500",
         f"Outage. [[emulator {FAST} fault=500 times=1]]", attempt=2),
    Case("429 twice, then success", "llm429x2",
         f"Twice. [[emulator {FAST} fault=429 retry_after=1 times=2]]", attempt=3),
    Case("cut mid-stream", "llmcut",
         f"Cut me. [[emulator {FAST} fault=cut after=12 times=1]]", attempt=2),
    # The app's stall timeout is 30 s (relay.llm); the emulator goes quiet for 40 s.
    Case("stall mid-stream", "llmstall",
         f"Stall. [[emulator {FAST} fault=stall after=9 seconds=40 times=1]]", attempt=2),
    Case("500 on every attempt", "llm500all",
         f"Down. [[emulator {FAST} fault=503]]", status="failed", attempt=3,
         error="llm_unavailable", text=""),
    Case("content filter mid-stream", "llmfilter",
         f"Filter me. [[emulator {FAST} fault=content_filter after=7]]", status="failed",
         attempt=1, error="content_filtered"),
    Case("prompt refused by the filter", "llmprompt",
         f"Refuse me. [[emulator {FAST} fault=prompt_filter]]", status="failed", attempt=1,
         error="content_filtered", text=""),
]  # fmt: skip
for _case in CASES:
    if _case.name == "content filter mid-stream":
        _case.text = expected(_case.prompt, 7)


@pytest.fixture(scope="module")
def started(fstack: FaultStack) -> dict[str, Case]:
    """All LLM cases at once (they share nothing but the stack), each with a live listener."""
    for case in CASES:
        case.listener = fstack.listen(case.user)
    for case in CASES:
        case.job_id = fstack.submit(case.user, case.prompt)
    return {c.name: c for c in CASES}


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_llm_fault(started: dict[str, Case], fstack: FaultStack, name: str) -> None:
    verify(fstack, started[name], timeout=60)
