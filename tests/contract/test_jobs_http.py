"""Issue 5's HTTP contract for one job, probed from outside with plain HTTP: the 202 and
where it points, the job document's fields, the events endpoint against the document,
cancel of a finished job, and erasing a job's data."""

from __future__ import annotations

import time

from tests.e2e.stack import Stack, expected_text

QUICK = "[[emulator tokens=40 rate=400 ttft_ms=0]]"
LONG = "[[emulator tokens=600 rate=15 ttft_ms=0]]"
JOB_FIELDS = {
    "jobId", "status", "createdAt", "startedAt", "completedAt", "target", "attempt",
    "lastSeq", "text", "usage", "metrics", "delivery", "error",
}  # fmt: skip


def _submit(s: Stack, prompt: str, user: str) -> dict[str, object]:
    res = s.request("POST", "/api/jobs", {"prompt": prompt}, user=user)
    assert res.status == 202, res.body
    assert res.body["status"] == "queued"
    return dict(res.body, location=res.headers["location"])


def test_the_202_points_at_the_job_and_its_events(contract_stack: Stack) -> None:
    s, user = contract_stack, "c-links"
    accepted = _submit(s, f"Links. {QUICK}", user)
    job_id = accepted["jobId"]
    # Location and statusUrl name the same resource, and a client can follow either.
    assert accepted["location"] == accepted["statusUrl"]
    assert str(accepted["location"]).endswith(f"/api/jobs/{job_id}")
    followed = s.request("GET", str(accepted["location"]), user=user)
    assert followed.status == 200 and followed.body["jobId"] == job_id
    events = s.request("GET", f"{accepted['eventsUrl']}?after=0", user=user)
    assert events.status == 200 and events.body["jobId"] == job_id


def test_a_finished_job_document_and_its_events_agree(contract_stack: Stack) -> None:
    s, user = contract_stack, "c-doc"
    prompt = f"Document. {QUICK}"
    job_id = _submit(s, prompt, user)["jobId"]
    doc = s.wait_status(str(job_id), {"completed"}, user=user)
    assert set(doc) >= JOB_FIELDS, JOB_FIELDS - set(doc)
    assert set(doc["metrics"]) >= {"ttftMs", "durationMs", "deltas", "messages"}
    assert doc["target"] == {"kind": "user", "id": user}
    assert doc["text"] == expected_text(prompt)
    assert doc["error"] is None and doc["delivery"] == "ok"
    assert doc["usage"] and doc["usage"]["completionTokens"] == 40
    assert doc["createdAt"] <= doc["startedAt"] <= doc["completedAt"]  # ISO 8601, one zone
    assert doc["metrics"]["messages"] >= doc["lastSeq"] >= 1

    batches = s.events(str(job_id), user=user)["events"]
    assert [b["seq"] for b in batches] == list(range(1, doc["lastSeq"] + 1))
    assert {b["attempt"] for b in batches} == {doc["attempt"]}
    assert "".join(b["text"] for b in batches) == doc["text"]
    tail = s.request("GET", f"/api/jobs/{job_id}/events?after={doc['lastSeq']}", user=user)
    assert tail.status == 200 and tail.body["events"] == []
    middle = s.request("GET", f"/api/jobs/{job_id}/events?after=2", user=user)
    assert [b["seq"] for b in middle.body["events"]] == list(range(3, doc["lastSeq"] + 1))


def test_canceling_a_finished_job_changes_nothing(contract_stack: Stack) -> None:
    s, user = contract_stack, "c-finished"
    job_id = str(_submit(s, f"Finish first. {QUICK}", user)["jobId"])
    before = s.wait_status(job_id, {"completed"}, user=user)
    res = s.request("DELETE", f"/api/jobs/{job_id}", user=user)
    assert res.status == 409 and res.body["error"]["code"] == "job_finished"
    after = s.request("GET", f"/api/jobs/{job_id}", user=user).body
    assert (after["status"], after["text"], after["lastSeq"]) == (
        "completed",
        before["text"],
        before["lastSeq"],
    )


def test_erasing_a_jobs_data(contract_stack: Stack) -> None:
    s, user = contract_stack, "c-erase"
    job_id = str(_submit(s, f"Erase me later. {LONG}", user)["jobId"])
    running = s.wait_status(job_id, {"running"}, user=user)
    assert running["status"] == "running"
    early = s.request("DELETE", f"/api/jobs/{job_id}/data", user=user)
    assert early.status == 409 and early.body["error"]["code"], early.body
    assert s.request("DELETE", f"/api/jobs/{job_id}", user=user).status == 202
    s.wait_status(job_id, {"canceled"}, user=user)
    erased = s.request("DELETE", f"/api/jobs/{job_id}/data", user=user)
    assert erased.status == 200, erased.body
    doc = s.request("GET", f"/api/jobs/{job_id}", user=user).body
    assert doc["status"] == "canceled" and doc["text"] == ""
    assert s.events(job_id, user=user)["events"] == []
    assert doc["jobId"] == job_id  # the job itself stays listed; only its content is gone
    listed = s.request("GET", "/api/jobs", user=user).body["jobs"]
    assert [j["jobId"] for j in listed] == [job_id]


def test_jobs_per_minute_limit_is_429_with_retry_after(contract_stack: Stack) -> None:
    s, user = contract_stack, "c-perminute"
    per_minute = int(s.env["USER_JOBS_PER_MINUTE"])
    tiny = "[[emulator tokens=2 rate=500 ttft_ms=0]]"
    # The window slides (the last 60 s): all `per_minute` submissions must land well inside
    # one window even on a loaded machine, so jobs are not awaited one by one; only a
    # concurrency refusal waits (for the running jobs; their slots free just after their
    # final status, so it may come again) and is not counted.
    accepted: list[str] = []
    refused = None
    while refused is None and len(accepted) <= per_minute:
        res = s.request("POST", "/api/jobs", {"prompt": f"n{len(accepted)} {tiny}"}, user=user)
        if res.status == 202:
            accepted.append(res.body["jobId"])
        elif res.status == 429 and "at once" in res.body["error"]["message"]:
            for job_id in accepted:
                s.wait_status(job_id, {"completed"}, user=user)
            time.sleep(0.1)
        else:
            refused = res
    assert len(accepted) == per_minute, refused
    assert refused is not None and refused.status == 429, refused
    assert refused.body["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The limit is per user: someone else is still admitted.
    other = s.request("POST", "/api/jobs", {"prompt": f"other {tiny}"}, user="c-perminute-2")
    assert other.status == 202, other.body
