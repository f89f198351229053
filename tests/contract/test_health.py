"""Issue 5: `GET /api/health` is liveness, and `?ready=1` the readiness of storage, SignalR
and the model endpoint. Here the model endpoint and the SignalR Service are unreachable
(closed ports), storage is up: liveness stays 200, readiness says which ones are down."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from local.azurite import Azurite
from tests.e2e.stack import Stack, local_stack

from .conftest import ARTIFACTS

# The official SignalR emulator's published fixed key (not a secret).
EMULATOR_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"


@pytest.fixture(scope="module")
def broken_stack(azurite: Azurite) -> Iterator[Stack]:
    # Bound and never listening: connections are refused, and no other process can take
    # these ports while the fixture holds them (a closed free port could be reused).
    llm_sock, signalr_sock = socket.socket(), socket.socket()
    llm_sock.bind(("127.0.0.1", 0))
    signalr_sock.bind(("127.0.0.1", 0))
    dead_llm, dead_signalr = llm_sock.getsockname()[1], signalr_sock.getsockname()[1]
    settings = {
        "AZURE_OPENAI_ENDPOINT": f"http://127.0.0.1:{dead_llm}",
        "AzureSignalRConnectionString": (
            f"Endpoint=http://127.0.0.1;Port={dead_signalr};AccessKey={EMULATOR_KEY};Version=1.0;"
        ),
    }
    with (
        llm_sock,
        signalr_sock,
        local_stack(
            azurite.connection_string, ARTIFACTS / "contract-broken-host.log", **settings
        ) as stack,
    ):
        yield stack


def test_liveness_is_up_while_dependencies_are_down(broken_stack: Stack) -> None:
    res = broken_stack.request("GET", "/api/health", user=None)
    assert res.status == 200 and res.body == {"status": "ok"}


def test_readiness_names_each_dependency_that_is_down(broken_stack: Stack) -> None:
    res = broken_stack.request("GET", "/api/health?ready=1", user=None, timeout=60)
    assert res.status == 503, res.body
    assert res.headers["content-type"].startswith("application/json")
    checks = res.body["checks"]
    assert {name: c["ok"] for name, c in checks.items()} == {
        "storage": True,
        "signalr": False,
        "llm": False,
    }


def test_a_job_is_still_accepted_and_then_fails_cleanly(broken_stack: Stack) -> None:
    # Admission does not depend on the model: the job is recorded and queued, and the
    # pipeline ends it with a reason instead of leaving it running.
    res = broken_stack.request("POST", "/api/jobs", {"prompt": "nobody answers"}, user="dead")
    assert res.status == 202, res.body
    job_id = res.body["jobId"]
    doc = broken_stack.wait_status(job_id, {"failed", "completed"}, user="dead", timeout=120)
    assert doc["status"] == "failed" and doc["error"]["code"], doc
