"""Groups and connection targets through the whole local stack, with real SignalR clients.

Each test uses its own users and group names (the stack is shared by the session).
A plain member who can read a group job but may not cancel or erase it gets 403
(`not_allowed`); anyone who may not read it gets 404, as for a job that does not exist.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import pytest

from tests.clients.listener import Event, NodeListener

from .contract import barrier, deltas_of
from .stack import Stack, expected_text

pytestmark = pytest.mark.e2e

FAST = "[[emulator tokens=60 rate=300 ttft_ms=0]]"
SLOW = "[[emulator tokens=200 rate=25 ttft_ms=0]]"


def ids(*names: str) -> Iterator[str]:
    tag = uuid.uuid4().hex[:6]
    return iter(f"{n}-{tag}" for n in names)


def listen(stack: Stack, user: str) -> NodeListener:
    return NodeListener(url=f"{stack.base}/api", headers={"x-ms-client-principal-id": user})


def is_status(job_id: str, status: str) -> Any:
    return lambda e: (
        e["event"] == "message"
        and e["target"] == "status"
        and e["arguments"][0]["jobId"] == job_id
        and e["arguments"][0]["status"] == status
    )


def of_job(listener: NodeListener, job_id: str) -> list[Event]:
    return [m for m in listener.messages() if m["arguments"][0].get("jobId") == job_id]


def make_group(stack: Stack, owner: str, group: str, *members: str) -> None:
    res = stack.request("PUT", f"/api/groups/{group}/members/me", user=owner)
    assert res.status == 201 and res.body["result"] == "created", res.body
    for member in members:
        invite = stack.request("POST", f"/api/groups/{group}/invites", {}, user=owner)
        assert invite.status == 201, invite.body
        res = stack.request("PUT", f"/api/groups/{group}/members/me",
                            {"invite": invite.body["invite"]}, user=member)  # fmt: skip
        assert res.status == 200 and res.body["result"] == "joined", res.body


def submit(stack: Stack, user: str, prompt: str, **target: str) -> str:
    res = stack.request("POST", "/api/jobs", {"prompt": prompt, **target}, user=user)
    assert res.status == 202, res.body
    return str(res.body["jobId"])


def assert_exact(listener: NodeListener, job_id: str, prompt: str) -> None:
    deltas = deltas_of(listener.messages("delta"), job_id)
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(d["text"] for d in deltas) == expected_text(prompt)


def test_group_job_reaches_every_member_exactly_and_nobody_else(stack: Stack) -> None:
    owner, member, outsider = ids("own", "mem", "out")
    group = next(ids("grp"))
    make_group(stack, owner, group, member)
    prompt = f"A group answer. {FAST}"
    with ExitStack() as es:
        tabs = [es.enter_context(listen(stack, u)) for u in (owner, member, outsider)]
        cids = [tab.wait_connected() for tab in tabs]
        job_id = submit(stack, member, prompt, groupName=group)
        for tab in tabs[:2]:
            tab.wait_for(is_status(job_id, "completed"), timeout=30)
        barrier(stack, tabs[2], outsider, cids[2])  # anything misrouted has arrived by now
        for tab in tabs[:2]:
            assert_exact(tab, job_id, prompt)
        assert of_job(tabs[2], job_id) == []
    # Readable by members (the owner too, who did not submit it), 404 to anyone else.
    for user in (owner, member):
        assert stack.request("GET", f"/api/jobs/{job_id}", user=user).body["text"] == (
            expected_text(prompt)
        )
        assert stack.events(job_id, user=user)["events"]
    for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/events"):
        res = stack.request("GET", path, user=outsider)
        assert res.status == 404 and res.body["error"]["code"] == "not_found"
    res = stack.request("POST", "/api/jobs", {"prompt": "x", "groupName": group}, user=outsider)
    assert res.status == 403 and res.body["error"]["code"] == "not_a_member"


def test_invites_members_and_group_http_rules(stack: Stack) -> None:
    owner, member, late, outsider = ids("own", "mem", "late", "out")
    group, other = ids("grp", "oth")
    make_group(stack, owner, group)
    make_group(stack, outsider, other)
    join = f"/api/groups/{group}/members/me"

    res = stack.request("PUT", join, user=member)
    assert res.status == 403 and res.body["error"]["code"] == "invite_required"
    res = stack.request("POST", f"/api/groups/{group}/invites",
                        {"singleUse": True, "ttlSeconds": 60}, user=owner)  # fmt: skip
    assert res.status == 201 and res.body["singleUse"] is True
    token = res.body["invite"]
    body, sig = token.split(".")
    tampered = body[:-1] + ("A" if body[-1] != "A" else "B") + "." + sig
    foreign = stack.request("POST", f"/api/groups/{other}/invites", {}, user=outsider).body
    for bad in (tampered, token + "x", "forged.token", foreign["invite"]):
        res = stack.request("PUT", join, {"invite": bad}, user=member)
        assert res.status == 403 and res.body["error"]["code"] == "invalid_invite", bad
    assert stack.request("PUT", join, {"invite": token}, user=member).status == 200
    res = stack.request("PUT", join, {"invite": token}, user=late)  # single use: spent
    assert res.status == 403 and res.body["error"]["code"] == "invalid_invite"
    assert "already been used" in res.body["error"]["message"]

    # Members see the group; others get 404 as for a group that does not exist.
    res = stack.request("GET", f"/api/groups/{group}", user=member)
    assert res.status == 200 and res.body["owner"] == owner
    assert {m["userId"] for m in res.body["members"]} == {owner, member}
    # Times are ISO 8601 UTC everywhere in the API, as in the job document.
    assert all(
        datetime.fromisoformat(m["joinedAt"]).tzinfo is not None for m in res.body["members"]
    )
    assert stack.request("GET", "/api/groups", user=member).body["groups"] == [
        {"group": group, "owner": owner}
    ]
    for user in (outsider, late):
        res = stack.request("GET", f"/api/groups/{group}", user=user)
        assert res.status == 404 and res.body["error"]["code"] == "not_found"
    # Owner-only operations: 403 to a member, 404 to a non-member.
    owner_only = (
        ("POST", f"/api/groups/{group}/invites", {}),
        ("DELETE", f"/api/groups/{group}", None),
        ("DELETE", f"/api/groups/{group}/members/{owner}", None),
    )
    for method, path, payload in owner_only:
        assert stack.request(method, path, payload, user=member).status == 403
        assert stack.request(method, path, payload, user=outsider).status == 404
    # Input validation: names, user ids in paths, bodies.
    for method, path, payload in (("PUT", "/api/groups/bad.name/members/me", None),
                                  ("PUT", f"/api/groups/{group}/members/bad%20id", None),
                                  ("DELETE", f"/api/groups/{group}/members/bad%2Fid", None),
                                  ("POST", f"/api/groups/{group}/invites", {"ttlSeconds": 5}),
                                  ("PUT", join, {"invite": 7}),
                                  ("PUT", join, {"invitation": "x"})):  # fmt: skip
        res = stack.request(method, path, payload, user=owner)
        assert res.status == 400 and res.body["error"]["code"] == "invalid_request", (path, res)
    res = stack.request("PUT", f"/api/groups/{group}/members/{late}", user=owner)
    assert res.status == 403  # nobody adds someone else
    res = stack.request("DELETE", join, user=owner)
    assert res.status == 409 and res.body["error"]["code"] == "owner_cannot_leave"


def test_leaving_and_removed_members_stop_receiving(stack: Stack) -> None:
    owner, leaver, removed = ids("own", "leave", "rm")
    group = next(ids("grp"))
    make_group(stack, owner, group, leaver, removed)
    with ExitStack() as es:
        tabs = [es.enter_context(listen(stack, u)) for u in (owner, leaver, removed)]
        cids = [tab.wait_connected() for tab in tabs]
        assert stack.request("DELETE", f"/api/groups/{group}/members/me", user=leaver).status == 200
        res = stack.request("DELETE", f"/api/groups/{group}/members/{removed}", user=owner)
        assert res.status == 200 and res.body["removed"] is True
        prompt = f"After they left. {FAST}"
        job_id = submit(stack, owner, prompt, groupName=group)
        tabs[0].wait_for(is_status(job_id, "completed"), timeout=30)
        barrier(stack, tabs[1], leaver, cids[1])
        barrier(stack, tabs[2], removed, cids[2])
        assert_exact(tabs[0], job_id, prompt)
        assert of_job(tabs[1], job_id) == [] and of_job(tabs[2], job_id) == []
    for user in (leaver, removed):
        assert stack.request("GET", f"/api/jobs/{job_id}", user=user).status == 404
        res = stack.request("POST", "/api/jobs", {"prompt": "x", "groupName": group}, user=user)
        assert res.status == 403
    assert stack.request("GET", "/api/groups", user=leaver).body["groups"] == []


def test_group_job_cancel_by_group_owner_not_by_a_plain_member(stack: Stack) -> None:
    owner, submitter, member = ids("own", "sub", "mem")
    group = next(ids("grp"))
    make_group(stack, owner, group, submitter, member)
    job_id = submit(stack, submitter, f"A long tale. {SLOW}", groupName=group)
    stack.wait_status(job_id, {"running"}, user=member)  # the member can read it
    res = stack.request("DELETE", f"/api/jobs/{job_id}", user=member)
    assert res.status == 403 and res.body["error"]["code"] == "not_allowed"
    outsider = next(ids("out"))
    res = stack.request("DELETE", f"/api/jobs/{job_id}", user=outsider)
    assert res.status == 404 and res.body["error"]["code"] == "not_found"
    res = stack.request("DELETE", f"/api/jobs/{job_id}", user=owner)
    assert res.status == 202, res.body
    final = stack.wait_status(job_id, {"canceled", "completed", "failed"}, user=submitter)
    assert final["status"] == "canceled"
    # Erasing is the submitter's alone: 403 to members who can read it, 404 to others.
    for user, status in [(member, 403), (owner, 403), (outsider, 404), (submitter, 200)]:
        res = stack.request("DELETE", f"/api/jobs/{job_id}/data", user=user)
        assert res.status == status, (user, res.body)


def test_group_deleted_while_streaming_stops_delivery_and_quarantines_the_name(
    stack: Stack,
) -> None:
    owner, member, squatter = ids("own", "mem", "squat")
    group = next(ids("grp"))
    make_group(stack, owner, group, member)
    with listen(stack, member) as tab:
        cid = tab.wait_connected()
        job_id = submit(stack, member, f"Stream on. {SLOW}", groupName=group)
        tab.wait_for(lambda e: e["event"] == "message" and e["target"] == "delta", timeout=20)
        assert stack.request("DELETE", f"/api/groups/{group}", user=owner).status == 200
        barrier(stack, tab, member, cid)  # batches sent before the removal have landed
        seen = len(of_job(tab, job_id))
        before = stack.request("GET", f"/api/jobs/{job_id}", user=member).body["lastSeq"]
        deadline = time.monotonic() + 30
        after = stack.request("GET", f"/api/jobs/{job_id}", user=member).body
        while after["lastSeq"] <= before and time.monotonic() < deadline:
            time.sleep(0.2)
            after = stack.request("GET", f"/api/jobs/{job_id}", user=member).body
        assert after["lastSeq"] > before  # the job kept streaming ...
        barrier(stack, tab, member, cid)
        assert len(of_job(tab, job_id)) == seen  # ... to nobody
        res = stack.request("PUT", f"/api/groups/{group}/members/me", user=squatter)
        assert res.status == 409 and res.body["error"]["code"] == "group_recently_deleted"
        assert int(res.headers["retry-after"]) > 0
        assert stack.request("GET", f"/api/jobs/{job_id}", user=owner).status == 404
        assert stack.request("DELETE", f"/api/jobs/{job_id}", user=member).status == 202


def _claim(stack: Stack, tab: NodeListener, user: str, cid: str, start: int = 0) -> None:
    res = stack.request("POST", f"/api/connections/{cid}/claim", user=user)
    assert res.status == 202 and res.body["status"] == "nonce_sent", res.body
    msg = tab.wait_for(lambda e: e["event"] == "message" and e["target"] == "claim", start=start)
    res = stack.request("POST", f"/api/connections/{cid}/claim",
                        {"nonce": msg["arguments"][0]["nonce"]}, user=user)  # fmt: skip
    assert res.status == 200 and res.body["status"] == "bound", res.body


def _disconnect(stack: Stack, cid: str) -> None:
    data = json.dumps({"connectionId": cid, "allowReconnect": True}).encode()
    req = urllib.request.Request(
        f"{stack.signalr.url}/_emulator/disconnect",
        data=data,
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as res:
        assert res.status == 200


def test_connection_job_reaches_only_the_claimed_tab_and_survives_a_reconnect(
    stack: Stack,
) -> None:
    user, mallory = ids("tabs", "mal")
    with listen(stack, user) as tab_a, listen(stack, user) as tab_b:
        cid_a, cid_b = tab_a.wait_connected(), tab_b.wait_connected()
        _claim(stack, tab_a, user, cid_a)
        assert tab_b.messages("claim") == []  # the nonce went to that tab only
        # Someone else's connection: neither claimable nor a target.
        res = stack.request("POST", f"/api/connections/{cid_a}/claim", user=mallory)
        assert res.status == 403 and res.body["error"]["code"] == "claim_failed"
        res = stack.request("POST", f"/api/connections/{cid_a}/claim", {"nonce": "guess"},
                            user=mallory)  # fmt: skip
        assert res.status == 403
        res = stack.request("POST", "/api/jobs", {"prompt": "x", "connectionId": cid_a},
                            user=mallory)  # fmt: skip
        assert res.status == 403 and res.body["error"]["code"] == "connection_not_claimed"
        res = stack.request("POST", "/api/jobs", {"prompt": "x", "connectionId": cid_b}, user=user)
        assert res.status == 403 and res.body["error"]["code"] == "connection_not_claimed"
        assert stack.request("POST", "/api/connections/nope/claim", user=user).status == 404
        assert stack.request("POST", "/api/connections/a.b/claim", user=user).status == 400

        prompt = f"Only this tab. {FAST}"
        job_id = submit(stack, user, prompt, connectionId=cid_a)
        tab_a.wait_for(is_status(job_id, "completed"), timeout=30)
        barrier(stack, tab_b, user, cid_b)
        assert_exact(tab_a, job_id, prompt)
        assert of_job(tab_b, job_id) == []

        # A reconnect gets a new id: unclaimed until the tab re-claims it.
        mark = len(tab_a.events)
        _disconnect(stack, cid_a)
        event = tab_a.wait_for(lambda e: e["event"] == "reconnected", timeout=20, start=mark)
        new_cid = event["connectionId"]
        assert new_cid and new_cid != cid_a
        res = stack.request("POST", "/api/jobs", {"prompt": "x", "connectionId": new_cid},
                            user=user)  # fmt: skip
        assert res.status == 403
        _claim(stack, tab_a, user, new_cid, start=mark)
        prompt = f"After the reconnect. {FAST}"
        job_id = submit(stack, user, prompt, connectionId=new_cid)
        tab_a.wait_for(is_status(job_id, "completed"), timeout=30, start=mark)
        barrier(stack, tab_b, user, cid_b)
        assert_exact(tab_a, job_id, prompt)
        assert of_job(tab_b, job_id) == []
