"""Each function of function_app.py called directly (no host), with real Azurite and the
emulators behind it: the triggers are thin, so this checks the wiring of each one."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from activities.stream import ActivityFailed
from local.openai_emulator import DEFAULT_API_KEY
from local.openai_emulator import run_in_thread as openai_in_thread
from local.signalr_emulator import run_in_thread as signalr_in_thread
from relay.intake import encode_message
from relay.services import get_services, reset_services
from tests.e2e.stack import ROOT, expected_text

pytestmark = pytest.mark.azurite

PROMPT = "Direct call. [[emulator tokens=30 rate=500 ttft_ms=0]]"


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    # Load the project's function_app.py under its own name: fixture apps of the host and
    # fault tests are also called `function_app`, and may already be in sys.modules.
    spec = importlib.util.spec_from_file_location("project_function_app", ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    function_app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(function_app)
    # Durable-client functions: call the raw function (`client_function`) with a fake
    # client; the SDK's middleware would build a real one from the binding string.
    return {
        f.get_function_name(): getattr(f.get_user_function(), "client_function",
                                       f.get_user_function())
        for f in function_app.app.get_functions()
    }  # fmt: skip


@pytest.fixture
def env(storage_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with signalr_in_thread(port=0) as sig, openai_in_thread(port=0) as oai:
        stamp = str(int(time.time() * 1000) % 10**9)
        values = {
            "AzureWebJobsStorage": storage_connection_string,
            "AzureSignalRConnectionString": sig.connection_string,
            "AZURE_OPENAI_ENDPOINT": oai.endpoint,
            "AZURE_OPENAI_API_KEY": DEFAULT_API_KEY,
            "AZURE_OPENAI_DEPLOYMENT": "chat",
            "AUTH_MODE": "dev",
            "TABLE_PREFIX": "direct" + stamp,
            "JOBS_QUEUE": "direct" + stamp,
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        yield


@pytest.fixture
async def fresh(env: None) -> AsyncIterator[None]:
    await reset_services()
    yield
    await reset_services()


class Out:
    def __init__(self) -> None:
        self.value: str | None = None

    def set(self, value: str) -> None:
        self.value = value

    def get(self) -> str | None:
        return self.value


class FakeClient:
    """The durable client boundary (the host and engine are tested on their own)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, Any]] = []
        self.events: list[tuple[str, str]] = []

    async def get_status(self, instance_id: str) -> Any:
        live = any(started[1] == instance_id for started in self.started)
        return SimpleNamespace(runtime_status=SimpleNamespace(value="Running") if live else None)

    async def start_new(self, name: str, instance_id: str, spec: Any) -> str:
        self.started.append((name, instance_id, spec))
        return instance_id

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        self.events.append((instance_id, name))


def req(method: str, url: str, body: Any = None, user: str | None = "ann", **route: str) -> Any:
    headers = {"content-type": "application/json"}
    if user:
        headers["x-ms-client-principal-id"] = user
    params = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&")) if "?" in url else {}
    data = json.dumps(body).encode() if body is not None else b""
    return func.HttpRequest(method, "http://h" + url, headers=headers, params=params,
                            route_params=route, body=data)  # fmt: skip


def js(res: func.HttpResponse) -> Any:
    return json.loads(res.get_body())


async def test_a_job_through_each_function(functions: dict[str, Any], fresh: None) -> None:
    out = Out()
    res = await functions["create_job"](req("POST", "/api/jobs", {"prompt": PROMPT}), out)
    assert res.status_code == 202
    job_id = js(res)["jobId"]
    assert json.loads(out.get() or "{}") == json.loads(encode_message(job_id, "ann"))

    client = FakeClient()
    message = QueueMessage(id="m1", body=(out.get() or "").encode(), dequeue_count=1)
    await functions["intake"](message, client)
    assert client.started == [("job_orchestrator", job_id,
                               {"jobId": job_id, "maxAttempts": 3, "timeoutS": 600})]  # fmt: skip
    await functions["intake"](message, client)  # a duplicate message does nothing
    assert len(client.started) == 1

    result = await functions["stream_job"]({"jobId": job_id})
    assert result["status"] == "completed"

    res = await functions["get_job"](req("GET", f"/api/jobs/{job_id}", jobId=job_id))
    status = js(res)
    assert status["status"] == "completed" and status["text"] == expected_text(PROMPT)
    events = js(await functions["job_events"](
        req("GET", f"/api/jobs/{job_id}/events?after=1", jobId=job_id)))  # fmt: skip
    assert [e["seq"] for e in events["events"]] == list(range(2, status["lastSeq"] + 1))
    listed = js(await functions["list_jobs"](req("GET", "/api/jobs")))
    assert [j["jobId"] for j in listed["jobs"]] == [job_id]

    res = await functions["cancel_job"](req("DELETE", f"/api/jobs/{job_id}", jobId=job_id), client)
    assert res.status_code == 409
    res = await functions["erase_job"](req("DELETE", f"/api/jobs/{job_id}/data", jobId=job_id))
    assert res.status_code == 200
    after = js(await functions["get_job"](req("GET", f"/api/jobs/{job_id}", jobId=job_id)))
    assert after["text"] == "" and after["status"] == "completed"


async def test_cancel_queued_job_and_poison(functions: dict[str, Any], fresh: None) -> None:
    out = Out()
    job_id = js(await functions["create_job"](req("POST", "/api/jobs", {"prompt": "x"}), out))[
        "jobId"
    ]
    client = FakeClient()
    res = await functions["cancel_job"](req("DELETE", f"/api/jobs/{job_id}", jobId=job_id), client)
    assert res.status_code == 202 and js(res)["status"] == "canceled"

    out2 = Out()
    other = js(await functions["create_job"](req("POST", "/api/jobs", {"prompt": "y"}), out2))[
        "jobId"
    ]
    poison = QueueMessage(id="p", body=(out2.get() or "").encode(), dequeue_count=5)
    await functions["intake_poison"](poison)
    services = await get_services()
    record = await services.store.get_job(other)
    assert record.status == "failed" and record.error and record.error["code"] == "not_started"


async def test_negotiate_health_and_errors(functions: dict[str, Any], fresh: None) -> None:
    res = await functions["negotiate"](req("POST", "/api/negotiate"))
    info = js(res)
    assert res.status_code == 200 and "/client/?hub=stream" in info["url"] and info["accessToken"]
    health = await functions["health"](req("GET", "/api/health?ready=1", user=None))
    assert health.status_code == 200, js(health)
    anon = await functions["create_job"](
        req("POST", "/api/jobs", {"prompt": "x"}, user=None), Out()
    )
    assert anon.status_code == 401 and js(anon)["error"]["code"] == "unauthenticated"
    bad = await functions["create_job"](req("POST", "/api/jobs", {"prompt": 3}), Out())
    assert bad.status_code == 400 and js(bad)["error"]["field"] == "prompt"
    with pytest.raises(ActivityFailed, match='"code": "not_found"'):
        await functions["finalize_job"]({"jobId": "f" * 32, "status": "failed"})
    with pytest.raises(ActivityFailed, match="invalid_input"):
        await functions["stream_job"]({"jobId": "../x"})
