"""Bad input gets a clear 4xx with a JSON error body, through the real host."""

from __future__ import annotations

import pytest

from .stack import Stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ([1, 2], "body"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "temperature": 9}, "temperature"),
        ({"prompt": "x", "maxTokens": True}, "maxTokens"),
        ({"prompt": "x", "bogus": 1}, "bogus"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"prompt": "x", "groupName": "../etc"}, "groupName"),
    ],
)
def test_invalid_job_bodies_name_the_field(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    res = stack.request("POST", "/api/jobs", body, user="ivy")
    assert res.status == 400, res.body
    assert res.body["error"]["code"] == "invalid_request"
    assert res.body["error"]["field"].startswith(field.split("[")[0])


def test_no_identity_is_401(stack: Stack) -> None:
    res = stack.request("POST", "/api/jobs", {"prompt": "x"}, user=None)
    assert res.status == 401 and res.body["error"]["code"] == "unauthenticated"


def test_wrong_content_type_is_415(stack: Stack) -> None:
    res = stack.request("POST", "/api/jobs", raw=b"prompt=x", user="ivy",
                        headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert res.status == 415 and res.body["error"]["code"] == "unsupported_media_type"


def test_malformed_json_is_400(stack: Stack) -> None:
    res = stack.request("POST", "/api/jobs", raw=b'{"prompt": "x"', user="ivy",
                        headers={"content-type": "application/json"})  # fmt: skip
    assert res.status == 400 and res.body["error"]["code"] == "invalid_json"


def test_oversized_body_is_413(stack: Stack) -> None:
    res = stack.request("POST", "/api/jobs", {"prompt": "x" * 300_000}, user="ivy")
    assert res.status == 413


def test_unclaimed_connection_target_is_403(stack: Stack) -> None:
    res = stack.request("POST", "/api/jobs", {"prompt": "x", "connectionId": "abc"}, user="ivy")
    assert res.status == 403 and res.body["error"]["code"] == "connection_not_claimed"


def test_not_a_member_group_target_is_403(stack: Stack) -> None:
    res = stack.request("POST", "/api/jobs", {"prompt": "x", "groupName": "nobody"}, user="ivy")
    assert res.status == 403 and res.body["error"]["code"] == "not_a_member"


def test_bad_query_params_are_400(stack: Stack) -> None:
    assert stack.request("GET", "/api/jobs?limit=0", user="ivy").status == 400
    job = stack.request("POST", "/api/jobs", {"prompt": "y [[emulator tokens=5]]"}, user="ivy")
    res = stack.request("GET", f"/api/jobs/{job.body['jobId']}/events?after=-1", user="ivy")
    assert res.status == 400 and res.body["error"]["field"] == "after"


def test_unknown_api_path_is_json_404(stack: Stack) -> None:
    res = stack.request("GET", "/api/nothing-here", user="ivy")
    assert res.status == 404 and res.body["error"]["code"] == "not_found"


def test_rate_limit_is_429_with_retry_after(stack: Stack) -> None:
    slow = {"prompt": "Slow. [[emulator tokens=300 rate=5 ttft_ms=0]]"}
    answers = [stack.request("POST", "/api/jobs", slow, user="quinn") for _ in range(6)]
    codes = [a.status for a in answers]
    assert codes[:4] == [202] * 4  # USER_MAX_CONCURRENT_JOBS=4 in the example settings
    assert 429 in codes[4:]
    refused = next(a for a in answers if a.status == 429)
    assert int(refused.headers["retry-after"]) >= 1
    for a in answers:
        if a.status == 202:
            stack.request("DELETE", f"/api/jobs/{a.body['jobId']}", user="quinn")


def test_health_and_openapi(stack: Stack) -> None:
    assert stack.request("GET", "/api/health", user=None).body == {"status": "ok"}
    ready = stack.request("GET", "/api/health?ready=1", user=None)
    assert ready.status == 200, ready.body
    assert all(c["ok"] for c in ready.body["checks"].values())
    doc = stack.request("GET", "/api/openapi.json", user=None).body
    assert doc["openapi"].startswith("3.")
