"""The terminal client (`python -m local.demo`) as a subprocess against the whole local stack,
and its stream-contract follower on its own."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from local.cli import Follower

from .stack import ROOT, Stack, expected_text

FAST = "[[emulator tokens=60 rate=300 ttft_ms=0]]"


def _demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.demo", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("user", "extra"), [("demo-u", []), ("demo-t", ["--tab"]), ("demo-g", ["--group", "demo-g1"])]
)
def test_demo_prints_the_answer_then_status_and_metrics(
    stack: Stack, user: str, extra: list[str]
) -> None:
    prompt = f"Tell me about deltas, {user}. {FAST}"
    done = _demo("--base", stack.base, "--user", user, "--prompt", prompt, *extra)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected_text(prompt) + "\n"
    assert "status: completed (attempt 1" in done.stderr
    assert "tokens: 60 completion" in done.stderr
    assert "for 60 model deltas" in done.stderr
    if extra == ["--tab"]:
        assert "claimed" in done.stderr


@pytest.mark.e2e
def test_demo_restarts_the_answer_when_a_new_attempt_begins(stack: Stack) -> None:
    prompt = "Retry me, demo. [[emulator tokens=60 rate=300 ttft_ms=0 fault=cut after=10 times=1]]"
    done = _demo("--base", stack.base, "--user", "demo-r", "--prompt", prompt)
    assert done.returncode == 0, done.stderr
    assert "--- attempt 2: the answer restarts ---\n" in done.stdout
    assert done.stdout.endswith("---\n" + expected_text(prompt) + "\n")
    assert "status: completed (attempt 2" in done.stderr


@pytest.mark.e2e
def test_demo_shows_the_apps_4xx_body_and_exits_2(stack: Stack) -> None:
    done = _demo("--base", stack.base, "--user", "demo-e", "--prompt", "  ")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: HTTP 400 invalid_request: must not be empty (prompt)"
    assert done.stdout == ""
    bad_group = _demo("--base", stack.base, "--user", "demo-e", "--group", "no spaces")
    assert bad_group.returncode == 2 and "HTTP 400" in bad_group.stderr


def test_demo_says_when_the_host_is_down_and_exits_3() -> None:
    with socket.socket() as held:  # bound, never listening: refused, and not reusable
        held.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{held.getsockname()[1]}"
        done = _demo("--base", base, timeout=30)
    assert done.returncode == 3
    assert f"cannot reach {base}" in done.stderr and "Traceback" not in done.stderr


def test_demo_refuses_group_and_tab_together() -> None:
    done = _demo("--group", "g", "--tab", timeout=30)
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def _delta(seq: int, text: str, attempt: int = 1, job: str = "j") -> dict[str, object]:
    return {"jobId": job, "seq": seq, "attempt": attempt, "text": text}


def test_follower_orders_dedupes_and_holds_early_batches() -> None:
    f = Follower("j")
    assert f.apply(_delta(2, "b")) == []
    assert f.has_gap()
    assert f.apply(_delta(1, "a")) == [("text", "ab")]
    assert f.apply(_delta(1, "a")) == [] and f.apply(_delta(2, "b")) == []
    assert f.apply(_delta(3, "c", job="other")) == []
    f.apply_status({"jobId": "j", "status": "completed", "attempt": 1, "lastSeq": 3})
    assert f.has_gap() and not f.finished
    assert f.apply(_delta(3, "c")) == [("text", "c")]
    assert f.finished and f.text == "abc"


def test_follower_keeps_only_the_highest_attempt() -> None:
    f = Follower("j")
    f.apply(_delta(1, "old"))
    assert f.apply(_delta(1, "new", attempt=2)) == [("attempt", 2), ("text", "new")]
    assert f.apply(_delta(2, "stale", attempt=1)) == []
    f.apply_status({"jobId": "j", "status": "running", "attempt": 1, "lastSeq": 9})
    assert f.last_seq is None and f.status is None
    assert f.apply_status({"jobId": "j", "status": "running", "attempt": 3}) == [("attempt", 3)]
    assert f.text == "" and f.attempt == 3
