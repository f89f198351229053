"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis), in
process, against the live local host: no 5xx, and every 4xx is JSON in the error shape.

Bounded: a fixed number of examples per operation and generation mode, no example database.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from .stack import Stack

pytestmark = pytest.mark.e2e

EXAMPLES = 30
IDENTITY = {"x-ms-client-principal-id": "fuzzer"}


def _operations(stack: Stack) -> list[Any]:
    """The operations of the document the live host serves (not the module's copy)."""
    res = stack.request("GET", "/api/openapi.json", user=None)
    assert res.status == 200
    schema = schemathesis.openapi.from_dict(res.body)
    documented = sum(len(ops) for ops in res.body["paths"].values())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == documented >= 16
    return operations


def _check(status: int, headers: dict[str, Any], content: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {content[:300]!r}"
    if 400 <= status < 500:  # every refusal, the host's own (414, malformed) included
        assert "application/json" in str(headers.get("content-type", "")), what
        err = json.loads(content)["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str), what


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_survives_fuzzing_from_its_openapi_document(stack: Stack, mode: Any) -> None:
    operations = _operations(stack)
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 240  # a hard cap on the whole run

    for operation in operations:
        strategy = operation.as_strategy(generation_mode=mode)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=strategy, identity=st.sampled_from([IDENTITY, {}]))
        def run(case: Any, identity: dict[str, str]) -> None:
            if time.monotonic() > deadline:
                return
            headers = {**(case.headers or {}), **identity}
            case.headers = headers
            response = case.call(base_url=stack.base, timeout=15)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            what = f"{case.method} {case.formatted_path} ({mode.value})"
            _check(response.status_code, dict(response.headers), response.content, what)

        try:
            run()
        except Unsatisfiable:  # negative mode: the operation has no input that can be wrong
            assert mode == GenerationMode.NEGATIVE, operation.label
    assert sum(seen.values()) >= len(operations)
    assert any(400 <= s < 500 for s in seen), seen  # the fuzzer did reach the error paths


def test_a_normal_job_still_works_after_fuzzing(stack: Stack) -> None:
    prompt = "After the fuzz. [[emulator tokens=20 rate=400 ttft_ms=0]]"
    res = stack.request("POST", "/api/jobs", {"prompt": prompt}, user="after-fuzz")
    assert res.status == 202, res.body
    assert stack.wait_status(res.body["jobId"], {"completed"}, user="after-fuzz")
