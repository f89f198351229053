"""Secrets and prompt text stay out of the host's log (info level, the default), and the
per-user concurrency limit holds under a burst of concurrent submissions."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from local.openai_emulator import DEFAULT_API_KEY
from local.signalr_emulator.server import DEFAULT_ACCESS_KEY
from tests.e2e.stack import Response, Stack

from .hostile import assert_json_error

pytestmark = pytest.mark.e2e

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
USER_MAX_CONCURRENT_JOBS = 4  # local.settings.json.example


def test_prompts_keys_and_tokens_stay_out_of_the_log(sec_stack: Stack) -> None:
    marker = "zebra-" + uuid.uuid4().hex  # appears nowhere but in these prompts
    user = "logger"
    ok = sec_stack.request("POST", "/api/jobs", user=user, body={
        "prompt": f"{marker} ok [[emulator tokens=20 rate=400 ttft_ms=0]]",
        "system": f"{marker} system"})  # fmt: skip
    failing = sec_stack.request("POST", "/api/jobs", user=user, body={
        "prompt": f"{marker} fail [[emulator fault=400 times=5]]"})  # fmt: skip
    refused = sec_stack.request("POST", "/api/jobs", {"prompt": f"{marker}\u0000"}, user=user)
    assert assert_json_error(refused, 400)["field"] == "prompt"
    assert ok.status == 202 and failing.status == 202, (ok.body, failing.body)
    assert sec_stack.wait_status(ok.body["jobId"], {"completed"}, user=user, timeout=90)
    assert sec_stack.wait_status(failing.body["jobId"], {"failed"}, user=user, timeout=90)
    token = sec_stack.request("POST", "/api/negotiate", user=user).body["accessToken"]
    log = sec_stack.log()
    assert ok.body["jobId"] in log  # the log does hold the run: the grep is looking at it
    assert marker not in log
    for name, secret in [("OpenAI key", DEFAULT_API_KEY), ("SignalR AccessKey",
                         DEFAULT_ACCESS_KEY), ("client token", token)]:  # fmt: skip
        assert secret not in log, name
    # No JWT of any kind (REST tokens, client tokens), and no other prompt of this session.
    assert JWT.search(log) is None, JWT.search(log)
    for other in ("Victor's secret plan", "Spam the team", "Plain after the barrage"):
        assert other not in log


def test_concurrent_burst_admits_at_most_the_user_limit(sec_stack: Stack) -> None:
    user, burst = "burster", 12
    slow = {"prompt": "Slow. [[emulator tokens=400 rate=5 ttft_ms=0]]"}
    start = Barrier(burst)

    def submit(_: int) -> Response:
        start.wait()
        return sec_stack.request("POST", "/api/jobs", slow, user=user, timeout=30)

    with ThreadPoolExecutor(burst) as pool:
        answers = list(pool.map(submit, range(burst)))
    admitted = [a.body["jobId"] for a in answers if a.status == 202]
    refused = [a for a in answers if a.status != 202]
    # Reserve-then-count never admits past the limit; under a truly simultaneous burst it
    # may refuse every racer (see relay/limits.py), so zero admitted is allowed here.
    assert len(admitted) <= USER_MAX_CONCURRENT_JOBS, [a.status for a in answers]
    for answer in refused:
        assert assert_json_error(answer, 429)["code"] == "rate_limited"
        assert int(answer.headers["retry-after"]) >= 1
    jobs = sec_stack.request("GET", "/api/jobs?limit=100", user=user).body["jobs"]
    assert sorted(j["jobId"] for j in jobs) == sorted(admitted)  # refusals left no job
    for job_id in admitted:
        assert sec_stack.request("DELETE", f"/api/jobs/{job_id}", user=user).status == 202
    for job_id in admitted:
        sec_stack.wait_status(job_id, {"canceled"}, user=user, timeout=90)
    # The released slots are usable again: a burst cannot wedge the user's limit. A slot
    # frees just after the final status is recorded, so a client that saw "canceled" may
    # still meet a 429 and retries as told (asserting the first answer was a race).
    deadline = time.monotonic() + 60
    while True:
        again = sec_stack.request("POST", "/api/jobs", {"prompt": "After. [[emulator tokens=5]]"},
                                  user=user)  # fmt: skip
        if again.status != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert again.status == 202, again.body
    sec_stack.wait_status(again.body["jobId"], {"completed"}, user=user, timeout=90)
