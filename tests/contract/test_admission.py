"""Issue 5: over "the app's global concurrency cap (sized to the model deployment's quota)"
a submission is 429 with Retry-After, whoever sends it; a slot freed by a finished job
admits the next one. A stack of its own with GLOBAL_MAX_CONCURRENT_JOBS=2."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.azurite import Azurite
from tests.e2e.stack import Stack, local_stack

from .conftest import ARTIFACTS

CAP = 2
LONG = "[[emulator tokens=2000 rate=20 ttft_ms=0]]"


@pytest.fixture(scope="module")
def capped(azurite: Azurite) -> Iterator[Stack]:
    log = ARTIFACTS / "contract-capped-host.log"
    with local_stack(azurite.connection_string, log,
                     GLOBAL_MAX_CONCURRENT_JOBS=str(CAP)) as stack:  # fmt: skip
        yield stack


def test_global_cap_refuses_any_user_then_admits_after_a_slot_frees(capped: Stack) -> None:
    running = []
    for i in range(CAP):
        res = capped.request("POST", "/api/jobs", {"prompt": f"hold {i} {LONG}"}, user=f"cap{i}")
        assert res.status == 202, res.body
        running.append((f"cap{i}", res.body["jobId"]))

    refused = capped.request("POST", "/api/jobs", {"prompt": "one more"}, user="cap-late")
    assert refused.status == 429, refused.body
    assert refused.body["error"]["code"] == "rate_limited" and refused.body["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1

    user, job_id = running[0]
    assert capped.request("DELETE", f"/api/jobs/{job_id}", user=user).status == 202
    capped.wait_status(job_id, {"canceled"}, user=user)
    # The slot is released just after the final status is recorded (the activity's last
    # step), so a client that saw "canceled" may still meet one 429: it retries, as told.
    deadline = time.monotonic() + 60  # a liveness bound, generous for a loaded machine
    while True:
        admitted = capped.request("POST", "/api/jobs", {"prompt": "now"}, user="cap-late")
        if admitted.status != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert admitted.status == 202, admitted.body

    user, job_id = running[1]
    assert capped.request("DELETE", f"/api/jobs/{job_id}", user=user).status == 202
