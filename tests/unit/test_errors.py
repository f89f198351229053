"""Structured failures survive the activity boundary, whatever text surrounds them."""

from __future__ import annotations

import json

from relay.errors import LLMRateLimited, error_from_details


def test_details_are_found_in_the_local_engine_text() -> None:
    details = LLMRateLimited("busy", retry_after=7).to_details()
    text = f"Activity function 'stream_job' failed: {json.dumps(details)} \n ActivityFailed: x"
    got = error_from_details(text)
    assert got["code"] == "llm_rate_limited" and got["retryable"] and got["retryAfter"] == 7


def test_details_are_found_when_a_trace_and_json_details_follow() -> None:
    details = LLMRateLimited("busy", retry_after=3).to_details()
    text = (
        f"Activity function 'stream_job' failed: Result: Failure\\nException: ActivityFailed: "
        f'{json.dumps(details)}\\nStack:   File "x.py", line 1, in f {{not json}}'
        f' \n {{"$type": "System.Exception", "Message": "boom", "code": 3}}'
    )
    got = error_from_details(text)
    assert got["code"] == "llm_rate_limited" and got["retryAfter"] == 3


def test_unknown_text_is_not_retryable() -> None:
    assert error_from_details("no json here")["retryable"] is False
    assert error_from_details('{"no": "code"}')["code"] == "unknown"
