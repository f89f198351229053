"""HTTP triggers through a real socket: routing, errors, limits, CORS, settings, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import httpx
import pytest

from .conftest import APPS, StartHost


def client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


async def test_routes_with_prefix_params_constraints_and_precedence(start_host: StartHost) -> None:
    host = await start_host("http_app")
    async with client(host.port) as c:
        assert (await c.get("/api/items/7")).json() == {"fn": "item_by_id", "id": "7"}
        assert (await c.get("/api/items/new")).json() == {"fn": "item_new"}
        assert (await c.get("/api/items/abc")).json() == {"fn": "item_by_name", "name": "abc"}
        assert (await c.get("/api/files/a/b/c.txt")).json()["rest"] == "a/b/c.txt"
        assert (await c.get("/api/opt")).json()["id"] is None
        assert (await c.get("/api/opt/3")).json()["id"] == "3"
        assert (await c.get("/api/alpha/abc")).json()["v"] == "abc"
        assert (await c.get("/api/text")).text == "plain"
        for missing in ("/items/7", "/api/alpha/ab1", "/api/guid/123", "/api/nowhere"):
            r = await c.get(missing)
            assert (r.status_code, r.content) == (404, b""), missing


async def test_wrong_method_is_404_with_empty_body_as_the_host(start_host: StartHost) -> None:
    host = await start_host("http_app")
    async with client(host.port) as c:
        r = await c.delete("/api/echo")
        assert (r.status_code, r.content) == (404, b"")
        assert (await c.head("/api/items/new")).status_code == 404


async def test_request_is_built_like_the_worker_does(start_host: StartHost) -> None:
    host = await start_host("http_app")
    async with client(host.port) as c:
        r = await c.post("/api/echo?a=1&a=2&b=", content=b"hello", headers={"X-Thing": "v"})
    body = r.json()
    assert body["method"] == "POST"
    assert body["url"] == f"http://127.0.0.1:{host.port}/api/echo?a=1&a=2&b="
    assert body["params"] == {"a": "1,2", "b": ""}
    assert body["headers"]["x-thing"] == "v"
    assert body["body"] == "hello"


async def test_unhandled_exception_is_500_without_trace(
    start_host: StartHost, caplog: pytest.LogCaptureFixture
) -> None:
    host = await start_host("http_app")
    with caplog.at_level(logging.INFO):
        async with client(host.port) as c:
            r = await c.get("/api/boom")
    assert r.status_code == 500
    assert b"secret-internal-detail" not in r.content and b"Traceback" not in r.content
    messages = [rec.getMessage() for rec in caplog.records]
    assert any("secret-internal-detail" in m for m in messages)  # logged, not returned
    assert any(m.startswith("Executed 'Functions.boom' (Failed, Id=") for m in messages)


async def test_body_over_the_limit_is_413(start_host: StartHost) -> None:
    host = await start_host("http_app", max_body_bytes=1024)
    async with client(host.port) as c:
        ok = await c.post("/api/echo", content=b"x" * 1024)
        assert ok.json()["length"] == 1024
        big = await c.post("/api/echo", content=b"x" * 1025)
        assert big.status_code == 413

        async def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(4):
                yield b"y" * 512

        streamed = await c.post("/api/echo", content=chunks())
        assert streamed.status_code == 413


async def test_cors_only_for_own_origin_and_identity_headers_refused_cross_origin(
    start_host: StartHost,
) -> None:
    host = await start_host("http_app")
    own = f"http://127.0.0.1:{host.port}"
    evil = "http://evil.example"
    identity = {"x-ms-client-principal-id": "alice"}
    async with client(host.port) as c:
        pre = await c.options(
            "/api/whoami",
            headers={"Origin": own, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "x-ms-client-principal-id"},
        )  # fmt: skip
        assert pre.headers["access-control-allow-origin"] == own
        assert "x-ms-client-principal-id" in pre.headers["access-control-allow-headers"]
        r = await c.post("/api/whoami", headers={"Origin": own, **identity})
        assert r.json() == {"user": "alice"}
        assert r.headers["access-control-allow-origin"] == own

        pre = await c.options(
            "/api/whoami", headers={"Origin": evil, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in pre.headers
        for method in ("GET", "POST"):
            r = await c.request(method, "/api/whoami", headers={"Origin": evil, **identity})
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "cross_origin_identity"
        plain = await c.get("/api/whoami", headers={"Origin": evil})
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
        assert (await c.get("/api/whoami", headers=identity)).json() == {"user": "alice"}


async def test_settings_environment_over_file_over_example(
    start_host: StartHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "http_app", app)
    monkeypatch.delenv("FIXTURE_B", raising=False)
    monkeypatch.delenv("FIXTURE_C", raising=False)
    host = await start_host(app, env={"FIXTURE_A": "env"})
    async with client(host.port) as c:
        assert (await c.get("/api/settings")).json() == {
            "FIXTURE_A": "env", "FIXTURE_B": "example", "FIXTURE_C": "example",
        }  # fmt: skip


async def test_local_settings_json_replaces_the_example(
    start_host: StartHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "http_app", app)
    values = {"FIXTURE_A": "file", "FIXTURE_B": "file"}
    (app / "local.settings.json").write_text(json.dumps({"Values": values}))
    for name in ("FIXTURE_A", "FIXTURE_B", "FIXTURE_C"):
        monkeypatch.delenv(name, raising=False)
    host = await start_host(app, env={"FIXTURE_B": "env"})
    async with client(host.port) as c:
        assert (await c.get("/api/settings")).json() == {
            "FIXTURE_A": "file", "FIXTURE_B": "env", "FIXTURE_C": None,
        }  # fmt: skip


async def test_invocation_lines_and_app_records_keep_their_context(
    start_host: StartHost, caplog: pytest.LogCaptureFixture
) -> None:
    host = await start_host("http_app")
    with caplog.at_level(logging.INFO):
        async with client(host.port) as c:
            inv = (await c.get("/api/logs")).json()["invocationId"]
    executing = [
        r for r in caplog.records if r.getMessage().startswith("Executing 'Functions.logs'")
    ]
    assert executing and f"Id={inv}" in executing[0].getMessage()
    assert "Reason='This function was programmatically called via the host APIs.'" in (
        executing[0].getMessage()
    )
    app_record = next(r for r in caplog.records if r.getMessage() == "working on a job")
    assert app_record.jobId == "job-42"  # type: ignore[attr-defined]
    assert app_record.invocationId == inv  # type: ignore[attr-defined]
    assert app_record.functionName == "logs"  # type: ignore[attr-defined]


async def test_own_origin_on_any_port_is_same_origin_but_a_rebound_name_is_not(
    start_host: StartHost,
) -> None:
    host = await start_host("http_app")
    identity = {"x-ms-client-principal-id": "alice"}
    async with client(host.port) as c:
        for name in ("127.0.0.1", "localhost"):
            own = f"http://{name}:{host.port}"
            r = await c.post(
                "/api/whoami", headers={"Origin": own, "Host": f"{name}:{host.port}", **identity}
            )
            assert r.status_code == 200 and r.json() == {"user": "alice"}
        # DNS rebinding: a foreign name resolving to loopback is not the host's own origin.
        rebound = f"rebind.example:{host.port}"
        r = await c.post(
            "/api/whoami", headers={"Origin": f"http://{rebound}", "Host": rebound, **identity}
        )
        assert r.status_code == 403


async def _raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read to close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=30)  # the host closes after it
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /api/echo HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n", 400),
        (b"GET /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        # a head still unfinished past h11's buffer (16 KiB) is refused before it ends
        (b"GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000, 431),
    ],
)
async def test_protocol_errors_are_json_4xx(
    start_host: StartHost, request_bytes: bytes, status: int
) -> None:
    host = await start_host("http_app")
    got, headers, body = await _raw_exchange(host.port, request_bytes)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert isinstance(error["code"], str) and error["message"]
    async with client(host.port) as c:  # the listener is unharmed
        assert (await c.post("/api/echo", content=b"ok")).json()["body"] == "ok"


async def test_over_long_url_is_414_json_and_websocket_upgrade_is_plain_http(
    start_host: StartHost,
) -> None:
    host = await start_host("http_app")
    async with client(host.port) as c:
        r = await c.get("/api/items/" + "a" * 5000)
        assert r.status_code == 414
        assert r.json()["error"]["code"] == "uri_too_long"
        upgrade = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        }
        r = await c.get("/api/items/7", headers=upgrade)
        assert r.json() == {"fn": "item_by_id", "id": "7"}
