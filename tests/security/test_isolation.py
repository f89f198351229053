"""One user against another's jobs, events, groups and connections, and negotiating as
someone else: every attempt is refused, and the victim's job runs on untouched."""

from __future__ import annotations

import jwt
import pytest

from tests.clients.listener import NodeListener
from tests.e2e.contract import barrier
from tests.e2e.stack import Stack, expected_text

from .hostile import assert_json_error

pytestmark = pytest.mark.e2e

VICTIM, ATTACKER = "victor", "eve"
SLOW = "Victor's secret plan. [[emulator tokens=120 rate=40 ttft_ms=0]]"


def _listen(stack: Stack, user: str) -> NodeListener:
    return NodeListener(url=f"{stack.base}/api", headers={"x-ms-client-principal-id": user})


def test_another_users_job_does_not_exist_for_the_attacker(sec_stack: Stack) -> None:
    with _listen(sec_stack, ATTACKER) as eve:
        eve_cid = eve.wait_connected()
        res = sec_stack.request("POST", "/api/jobs", {"prompt": SLOW}, user=VICTIM)
        assert res.status == 202, res.body
        job_id = res.body["jobId"]
        for method, path in [
            ("GET", f"/api/jobs/{job_id}"),
            ("GET", f"/api/jobs/{job_id}/events?after=0"),
            ("GET", f"/api/jobs/{job_id}/events?after=0&attempt=1"),
            ("DELETE", f"/api/jobs/{job_id}"),
            ("DELETE", f"/api/jobs/{job_id}/data"),
        ]:
            err = assert_json_error(sec_stack.request(method, path, user=ATTACKER), 404)
            # The same answer as an id that never existed: ids cannot be probed.
            assert err == {"code": "not_found", "message": "no such job"}
        listed = sec_stack.request("GET", "/api/jobs?limit=100", user=ATTACKER).body["jobs"]
        assert job_id not in {j["jobId"] for j in listed}
        done = sec_stack.wait_status(job_id, {"completed", "failed", "canceled"}, user=VICTIM)
        barrier(sec_stack, eve, ATTACKER, eve_cid)  # any stray message has reached eve
        stray = [m for m in eve.messages() if job_id in str(m)]
    # Eve's cancel did nothing, and not one of Victor's messages reached Eve's connection.
    assert done["status"] == "completed" and done["text"] == expected_text(SLOW)
    assert stray == []


def test_another_users_group_is_closed_to_the_attacker(sec_stack: Stack) -> None:
    group = "victors-team"
    made = sec_stack.request("PUT", f"/api/groups/{group}/members/me", user=VICTIM)
    assert made.status in (200, 201), made.body
    job = {"prompt": "Spam the team.", "groupName": group}
    refused = sec_stack.request("POST", "/api/jobs", job, user=ATTACKER)
    assert assert_json_error(refused, 403)["code"] == "not_a_member"
    for method, path in [
        ("GET", f"/api/groups/{group}"),
        ("DELETE", f"/api/groups/{group}"),
        ("POST", f"/api/groups/{group}/invites"),
        ("DELETE", f"/api/groups/{group}/members/{VICTIM}"),
        ("DELETE", f"/api/groups/{group}/members/me"),
    ]:
        assert_json_error(sec_stack.request(method, path, user=ATTACKER), 404)
    # Joining without an invite, or adding someone else, is refused.
    assert_json_error(sec_stack.request("PUT", f"/api/groups/{group}/members/me",
                                        user=ATTACKER), 403)  # fmt: skip
    other = sec_stack.request("PUT", f"/api/groups/{group}/members/{VICTIM}", user=ATTACKER)
    assert assert_json_error(other, 403)["code"] == "forbidden"
    names = [g["group"] for g in sec_stack.request("GET", "/api/groups", user=ATTACKER).body[
        "groups"]]  # fmt: skip
    assert group not in names
    owner_view = sec_stack.request("GET", f"/api/groups/{group}", user=VICTIM).body
    assert ATTACKER not in owner_view["members"]


def test_another_users_connection_cannot_be_targeted_or_claimed(sec_stack: Stack) -> None:
    with _listen(sec_stack, VICTIM) as victor:
        connection_id = victor.wait_connected()
        job = {"prompt": "Hello, stranger.", "connectionId": connection_id}
        refused = sec_stack.request("POST", "/api/jobs", job, user=ATTACKER)
        assert assert_json_error(refused, 403)["code"] == "connection_not_claimed"
        claim = f"/api/connections/{connection_id}/claim"
        # Eve may ask for a nonce, but it goes to Victor's connection, never to Eve.
        asked = sec_stack.request("POST", claim, user=ATTACKER)
        assert asked.status == 202 and "nonce" not in asked.body
        victor.wait_for(lambda e: e["event"] == "message" and e["target"] == "claim", timeout=10)
        nonce = victor.messages("claim")[-1]["arguments"][0]["nonce"]
        for guess in ("0" * 32, "nonce", nonce[:-1] + ("0" if nonce[-1] != "0" else "1")):
            bad = sec_stack.request("POST", claim, {"nonce": guess}, user=ATTACKER)
            assert assert_json_error(bad, 403)["code"] == "claim_failed"
        still = sec_stack.request("POST", "/api/jobs", job, user=ATTACKER)
        assert assert_json_error(still, 403)["code"] == "connection_not_claimed"


def test_negotiate_issues_a_token_for_the_caller_only(sec_stack: Stack) -> None:
    res = sec_stack.request(
        "POST",
        f"/api/negotiate?userId={VICTIM}&user={VICTIM}",
        {"userId": VICTIM, "user": VICTIM},
        user=ATTACKER,
        headers={"x-ms-client-principal-name": VICTIM, "x-ms-signalr-userid": VICTIM},
    )
    assert res.status == 200, res.body
    claims = jwt.decode(res.body["accessToken"], options={"verify_signature": False})
    assert claims["asrs.s.uid"] == ATTACKER and claims["nameid"] == ATTACKER
    assert VICTIM not in str(claims)
    assert claims["exp"] - claims["iat"] <= 60 * 60
    anonymous = sec_stack.request("POST", "/api/negotiate", {"userId": VICTIM}, user=None)
    assert assert_json_error(anonymous, 401)["code"] == "unauthenticated"
