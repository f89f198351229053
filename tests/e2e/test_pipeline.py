"""The whole path through the local stack, with the real @microsoft/signalr client."""

from __future__ import annotations

import pytest

from local.openai_emulator import expected_answer
from tests.clients.listener import NodeListener

from .contract import deltas_of, final_text
from .stack import Stack, expected_text

pytestmark = pytest.mark.e2e

FAST = "[[emulator tokens=60 rate=300 ttft_ms=0]]"


def _listen(stack: Stack, user: str) -> NodeListener:
    return NodeListener(url=f"{stack.base}/api", headers={"x-ms-client-principal-id": user})


def test_prompt_streams_live_in_order_and_completes(stack: Stack) -> None:
    prompt = f"Tell me about rivers. {FAST}"
    with _listen(stack, "alice") as listener:
        listener.wait_connected()
        res = stack.request("POST", "/api/jobs", {"prompt": prompt})
        assert res.status == 202, res.body
        job_id = res.body["jobId"]
        assert res.headers["location"] == f"/api/jobs/{job_id}"
        assert res.body["statusUrl"] == f"/api/jobs/{job_id}"
        listener.wait_for(
            lambda e: e["event"] == "message" and e["target"] == "status"
            and e["arguments"][0]["status"] == "completed", timeout=30,
        )  # fmt: skip
        deltas = deltas_of(listener.messages("delta"), job_id)
        statuses = [m["arguments"][0] for m in listener.messages("status")]
    expected = expected_text(prompt)
    assert len(expected) > 100
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert {d["attempt"] for d in deltas} == {1}
    assert "".join(d["text"] for d in deltas) == expected
    assert [s["status"] for s in statuses if s["jobId"] == job_id] == ["running", "completed"]
    done = statuses[-1]
    assert done["lastSeq"] == len(deltas) and done["usage"]["completionTokens"] > 0

    status = stack.request("GET", f"/api/jobs/{job_id}").body
    assert status["status"] == "completed" and status["text"] == expected
    assert status["metrics"]["messages"] == len(deltas)
    assert status["metrics"]["deltas"] >= len(deltas)
    assert status["metrics"]["ttftMs"] is not None and status["delivery"] == "ok"
    # Batching: fewer messages than model deltas.
    assert len(deltas) < status["metrics"]["deltas"]


def test_late_client_catches_up_from_the_events_endpoint(stack: Stack) -> None:
    prompt = f"Explain tides. {FAST}"
    job_id = stack.request("POST", "/api/jobs", {"prompt": prompt}, user="bob").body["jobId"]
    stack.wait_status(job_id, {"completed"}, user="bob")
    assert final_text(stack, job_id, [], user="bob") == expected_text(prompt)
    page = stack.request("GET", f"/api/jobs/{job_id}/events?after=2", user="bob").body
    assert page["events"][0]["seq"] == 3


def test_cancel_mid_stream_ends_canceled(stack: Stack) -> None:
    prompt = "A long story. [[emulator tokens=400 rate=20 ttft_ms=0]]"
    with _listen(stack, "carol") as listener:
        listener.wait_connected()
        job_id = stack.request("POST", "/api/jobs", {"prompt": prompt}, user="carol").body["jobId"]
        listener.wait_for(lambda e: e["event"] == "message" and e["target"] == "delta", timeout=20)
        res = stack.request("DELETE", f"/api/jobs/{job_id}", user="carol")
        assert res.status == 202, res.body
        final = stack.wait_status(job_id, {"canceled", "completed", "failed"}, user="carol")
    assert final["status"] == "canceled"
    assert expected_text(prompt).startswith(final["text"])
    assert len(final["text"]) < len(expected_text(prompt))
    again = stack.request("DELETE", f"/api/jobs/{job_id}", user="carol")
    assert again.status == 409 and again.body["error"]["code"] == "job_finished"


def test_mid_stream_llm_failure_retries_and_ends_with_the_final_attempts_text(stack: Stack) -> None:
    prompt = "Retry me. [[emulator tokens=60 rate=300 ttft_ms=0 fault=cut after=10 times=1]]"
    with _listen(stack, "dave") as listener:
        listener.wait_connected()
        job_id = stack.request("POST", "/api/jobs", {"prompt": prompt}, user="dave").body["jobId"]
        final = stack.wait_status(job_id, {"completed", "failed"}, user="dave", timeout=45)
        listener.wait_for(
            lambda e: e["event"] == "message" and e["target"] == "status"
            and e["arguments"][0]["status"] == "completed", timeout=10,
        )  # fmt: skip
        deltas = deltas_of(listener.messages("delta"), job_id)
    assert final["status"] == "completed" and final["attempt"] == 2
    assert {d["attempt"] for d in deltas} == {1, 2}
    assert final_text(stack, job_id, deltas, user="dave") == expected_text(prompt)
    events = stack.events(job_id, user="dave")["events"]
    assert [e["seq"] for e in events] == list(range(1, final["lastSeq"] + 1))


def test_non_retryable_failure_ends_failed_with_a_reason(stack: Stack) -> None:
    prompt = "Filter me. [[emulator tokens=60 rate=300 ttft_ms=0 fault=content_filter after=5]]"
    job_id = stack.request("POST", "/api/jobs", {"prompt": prompt}, user="erin").body["jobId"]
    final = stack.wait_status(job_id, {"completed", "failed"}, user="erin")
    assert final["status"] == "failed"
    assert final["error"]["code"] == "content_filtered"
    assert final["attempt"] == 1


def test_other_users_cannot_see_or_cancel_a_job(stack: Stack) -> None:
    job_id = stack.request("POST", "/api/jobs", {"prompt": f"Mine. {FAST}"}, user="frank").body[
        "jobId"
    ]
    for method, path in (("GET", f"/api/jobs/{job_id}"), ("GET", f"/api/jobs/{job_id}/events"),
                         ("DELETE", f"/api/jobs/{job_id}")):  # fmt: skip
        res = stack.request(method, path, user="mallory")
        assert res.status == 404 and res.body["error"]["code"] == "not_found"
    unknown = stack.request("GET", "/api/jobs/" + "0" * 32, user="mallory")
    assert unknown.status == 404 and unknown.body == res.body


def test_idempotency_key_returns_the_same_job(stack: Stack) -> None:
    body = {"prompt": f"Once. {FAST}"}
    first = stack.request(
        "POST", "/api/jobs", body, user="gina", headers={"Idempotency-Key": "k-1"}
    )
    second = stack.request(
        "POST", "/api/jobs", body, user="gina", headers={"Idempotency-Key": "k-1"}
    )
    other = stack.request(
        "POST", "/api/jobs", body, user="hank", headers={"Idempotency-Key": "k-1"}
    )
    assert first.status == second.status == 202
    assert first.body["jobId"] == second.body["jobId"] != other.body["jobId"]
    listed = stack.request("GET", "/api/jobs", user="gina").body["jobs"]
    assert [j["jobId"] for j in listed] == [first.body["jobId"]]


def test_a_continued_conversation_gets_its_own_answer(stack: Stack) -> None:
    p1 = "First [[emulator tokens=20 rate=500 ttft_ms=0]]"
    j1 = stack.request("POST", "/api/jobs", {"prompt": p1}, user="conv").body["jobId"]
    a1 = stack.wait_status(j1, {"completed"}, user="conv")["text"]
    msgs = [
        {"role": "user", "content": p1},
        {"role": "assistant", "content": a1},
        {"role": "user", "content": "Second [[emulator tokens=20 rate=500 ttft_ms=0]]"},
    ]
    j2 = stack.request("POST", "/api/jobs", {"messages": msgs}, user="conv").body["jobId"]
    a2 = stack.wait_status(j2, {"completed"}, user="conv")["text"]
    assert a2 == expected_answer(msgs, max_tokens=1024)
