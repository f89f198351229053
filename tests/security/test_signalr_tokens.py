"""Forged, expired and misdirected SignalR tokens against the SignalR emulator: client
negotiate, the WebSocket upgrade and the REST API each answer 401; a token from the app's
negotiate is the control that does get in."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from local.signalr_emulator.server import DEFAULT_ACCESS_KEY
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

HUB = "stream"


def _token(aud: str, *, key: str = DEFAULT_ACCESS_KEY, exp_in: float = 600,
           alg: str = "HS256", user: str = "eve", **extra: object) -> str:  # fmt: skip
    now = int(time.time())
    claims: dict[str, object] = {"aud": aud, "iat": now, "nbf": now, "exp": now + exp_in,
                                 "nameid": user, "asrs.s.uid": user, **extra}  # fmt: skip
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none")
    return jwt.encode(claims, key, algorithm=alg)


def _forgeries(base: str) -> dict[str, str]:
    aud = f"{base}/client/?hub={HUB}"
    no_exp = jwt.encode({"aud": aud, "nameid": "eve"}, DEFAULT_ACCESS_KEY, algorithm="HS256")
    return {
        "wrong-key": _token(aud, key="X" * 44),
        "alg-none": _token(aud, alg="none"),
        "expired": _token(aud, exp_in=-5),
        "other-hub": _token(f"{base}/client/?hub=admin"),
        "other-host": _token(f"http://evil.example/client/?hub={HUB}"),
        "rest-audience": _token(f"{base}/api/v1/hubs/{HUB}/users/victor"),
        "no-exp": no_exp,
        "garbage": "not.a.jwt",
        "tampered": _token(aud)[:-4] + "AAAA",
    }


def test_client_negotiate_refuses_forged_tokens(sec_stack: Stack) -> None:
    base = sec_stack.signalr.url
    url = f"{base}/client/negotiate?hub={HUB}&negotiateVersion=1"
    good = sec_stack.request("POST", "/api/negotiate", user="eve").body["accessToken"]
    with httpx.Client(timeout=10) as http:
        ok = http.post(url, headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200, ok.text
        assert http.post(url).status_code == 401
        for name, token in _forgeries(base).items():
            res = http.post(url, headers={"Authorization": f"Bearer {token}"})
            assert res.status_code == 401, (name, res.status_code, res.text)
            assert res.json(), name  # a JSON error body
            via_query = http.post(f"{url}&access_token={token}")
            assert via_query.status_code == 401, name


def test_websocket_upgrade_refuses_forged_tokens(sec_stack: Stack) -> None:
    base = sec_stack.signalr.url
    ws_base = base.replace("http://", "ws://", 1) + f"/client/?hub={HUB}"
    for name, token in _forgeries(base).items():
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(f"{ws_base}&access_token={token}", open_timeout=5).close()
        assert refused.value.response.status_code == 401, name


def test_rest_api_refuses_forged_tokens(sec_stack: Stack) -> None:
    base = sec_stack.signalr.url
    url = f"{base}/api/v1/hubs/{HUB}/users/victor"
    body = {"target": "delta", "arguments": [{"jobId": "x", "seq": 1, "attempt": 1,
                                              "text": "forged"}]}  # fmt: skip
    with httpx.Client(timeout=10) as http:
        for name, token in {
            "wrong-key": _token(url, key="X" * 44),
            "alg-none": _token(url, alg="none"),
            "expired": _token(url, exp_in=-5),
            "client-audience": _token(f"{base}/client/?hub={HUB}"),
            "other-user-audience": _token(f"{base}/api/v1/hubs/{HUB}/users/eve"),
        }.items():
            res = http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            assert res.status_code == 401, (name, res.status_code, res.text)
        control = http.post(url, json=body, headers={"Authorization": f"Bearer {_token(url)}"})
        assert control.status_code == 202, control.text
