"""Idempotency-Key through the whole local stack: same body -> same job; other body -> 422."""

from __future__ import annotations

import pytest

from .stack import Stack

pytestmark = pytest.mark.e2e

FAST = "[[emulator tokens=20 rate=500 ttft_ms=0]]"


def test_reusing_a_key_with_another_body_is_refused_and_creates_nothing(stack: Stack) -> None:
    user, key = "idem-ivy", {"Idempotency-Key": "order-42"}
    body = {"prompt": f"Count sheep. {FAST}", "maxTokens": 40}
    first = stack.request("POST", "/api/jobs", body, user=user, headers=key)
    assert first.status == 202, first.body
    job_id = first.body["jobId"]
    # The same content, keys reordered: the same request, so the same job.
    same = stack.request("POST", "/api/jobs", {"maxTokens": 40, "prompt": body["prompt"]},
                         user=user, headers=key)  # fmt: skip
    assert same.status == 202 and same.body["jobId"] == job_id
    for other in (
        {"prompt": f"Count goats. {FAST}", "maxTokens": 40},
        {"prompt": body["prompt"], "maxTokens": 41},
        {"prompt": body["prompt"]},
    ):
        res = stack.request("POST", "/api/jobs", other, user=user, headers=key)
        assert res.status == 422, res.body
        assert res.body["error"]["code"] == "idempotency_key_reused"
        assert res.body["error"]["message"]
        assert "Count" not in res.body["error"]["message"]
    listed = stack.request("GET", "/api/jobs", user=user).body["jobs"]
    assert [j["jobId"] for j in listed] == [job_id]
    # Another user's identical key is theirs alone.
    theirs = stack.request("POST", "/api/jobs", body, user="idem-jay", headers=key)
    assert theirs.status == 202 and theirs.body["jobId"] != job_id
    stack.wait_status(job_id, {"completed"}, user=user)
