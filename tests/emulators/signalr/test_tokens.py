"""Token checks on negotiate, on every transport, and on the REST API."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import websockets

from local.signalr_emulator import EmulatorThread, client_audience, issue_token
from local.signalr_emulator.tokens import TokenError, normalize_audience, verify_token

from .helpers import HUB, Rest

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"


def _bad_client_tokens(emu: EmulatorThread) -> dict[str, str | None]:
    aud = client_audience(emu.url, HUB)
    return {
        "missing": None,
        "expired": issue_token(emu.access_key, aud, now=time.time() - 3600, lifetime_s=60),
        "wrong-key": issue_token("x" * 44, aud),
        "wrong-audience": issue_token(emu.access_key, client_audience(emu.url, "otherhub")),
        "wrong-host": issue_token(emu.access_key, client_audience("http://example.com", HUB)),
    }


def _negotiate(emu: EmulatorThread, token: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{emu.url}/client/negotiate", params={"hub": HUB, **params}, headers=headers, timeout=10
    )


def test_negotiate_v0_and_v1(emulator: EmulatorThread) -> None:
    token = issue_token(emulator.access_key, client_audience(emulator.url, HUB), user_id="u")
    v1 = _negotiate(emulator, token, negotiateVersion="1").json()
    assert v1["negotiateVersion"] == 1 and v1["connectionToken"] != v1["connectionId"]
    assert {t["transport"] for t in v1["availableTransports"]} == {
        "WebSockets",
        "ServerSentEvents",
        "LongPolling",
    }
    v0 = _negotiate(emulator, token).json()
    assert "connectionToken" not in v0 and v0["connectionId"]
    # Hub names are case-insensitive, in the URL and in the audience.
    upper = issue_token(emulator.access_key, client_audience(emulator.url, "STREAM"))
    assert _negotiate(emulator, upper, hub="Stream").status_code == 200


@pytest.mark.parametrize(
    "case", ["missing", "expired", "wrong-key", "wrong-audience", "wrong-host"]
)
def test_bad_client_tokens_get_401_everywhere(emulator: EmulatorThread, case: str) -> None:
    token = _bad_client_tokens(emulator)[case]
    response = _negotiate(emulator, token, negotiateVersion="1")
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"
    # A real negotiated connection, then transports attempted with the bad token.
    good = issue_token(emulator.access_key, client_audience(emulator.url, HUB))
    conn_token = _negotiate(emulator, good, negotiateVersion="1").json()["connectionToken"]
    query = {"hub": HUB, "id": conn_token}
    if token:
        query["access_token"] = token
    sse = httpx.get(
        f"{emulator.url}/client/", params=query, headers={"Accept": "text/event-stream"}, timeout=10
    )
    assert sse.status_code == 401
    poll = httpx.get(f"{emulator.url}/client/", params=query, timeout=10)
    assert poll.status_code == 401
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws_url = f"ws://127.0.0.1:{emulator.port}/client/?hub={HUB}&id={conn_token}"

    async def upgrade() -> int:
        try:
            async with websockets.connect(ws_url, additional_headers=headers):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(upgrade()) == 401


@pytest.mark.parametrize("case", ["missing", "expired", "wrong-key", "wrong-audience"])
def test_bad_rest_tokens_get_401(emulator: EmulatorThread, rest: Rest, case: str) -> None:
    url = rest.url("/:send")
    tokens = {
        "missing": "",
        "expired": issue_token(emulator.access_key, url, now=time.time() - 3600, lifetime_s=60),
        "wrong-key": issue_token("y" * 44, url),
        "wrong-audience": issue_token(emulator.access_key, rest.url("/users/x/:send")),
    }
    response = rest.call(
        "POST", "/:send", json={"target": "t", "arguments": []}, token=tokens[case]
    )
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "target", "details"}


def test_rest_token_audience_ignores_query_and_case(emulator: EmulatorThread, rest: Rest) -> None:
    url = rest.url("/:send").replace("/api/", "/API/").upper().replace("HTTP", "http")
    token = issue_token(emulator.access_key, f"{url}?api-version=2022-06-01")
    response = rest.call("POST", "/:send", json={"target": "t"}, token=token)
    # Path case differs: a different URL, as on the service.
    assert response.status_code == 401
    token = issue_token(emulator.access_key, rest.url("/:send") + "?api-version=2022-06-01")
    assert rest.call("POST", "/:send", json={"target": "t"}, token=token).status_code == 202


def test_verify_token_rules() -> None:
    aud = "http://127.0.0.1:8888/client/?hub=Stream"
    now = 1_000_000.0
    token = issue_token(KEY, aud, user_id="u1", now=now, lifetime_s=10)
    claims = verify_token(
        token, KEY, ["http://127.0.0.1:8888/client?hub=stream"], keep_hub=True, now=now + 5
    )
    assert claims["asrs.s.uid"] == "u1"
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, KEY, [aud], keep_hub=True, now=now + 10)
    assert normalize_audience("HTTP://Host/api/x/?a=1", keep_hub=False) == "http://host:80/api/x"
