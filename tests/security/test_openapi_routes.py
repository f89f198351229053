"""The OpenAPI document is true: every HTTP route function_app.py registers is in it with
the same methods, every documented operation is a registered route, and the live stack's
answers (status, declared headers, body) and SignalR messages match what it declares."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from api._schemas import INVITE_TTL_DEFAULT_S, INVITE_TTL_MAX_S
from api.openapi import OPENAPI
from tests.clients.listener import NodeListener
from tests.e2e.stack import Stack

from .openapi_check import Conformance

ROOT = Path(__file__).resolve().parents[2]
PRINCIPAL = "x-ms-client-principal-id"

# Routes that are not API operations: the page catch-alls (GET pages, JSON 404/405 for the rest).
_NOT_API = {"{*path}"}


# In a subprocess: the SDK's `get_functions()` may be called once per app and process, and
# other tests call it on the same imported app.
_LIST_ROUTES = """
import json, function_app
print(json.dumps([json.loads(f.get_function_json())["bindings"]
                  for f in function_app.app.get_functions()]))
"""


def _registered() -> set[tuple[str, str]]:
    out = subprocess.run([sys.executable, "-c", _LIST_ROUTES], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    ops: set[tuple[str, str]] = set()
    for bindings in json.loads(out.strip().splitlines()[-1]):
        for binding in bindings:
            if binding["type"] != "httpTrigger" or binding["route"] in _NOT_API:
                continue
            for method in binding["methods"]:
                ops.add((method.upper(), "/" + binding["route"]))
    return ops


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in OPENAPI["paths"].items()
        for method in operations
    }


def test_every_registered_route_is_documented_and_vice_versa() -> None:
    registered, documented = _registered(), _documented()
    assert len(registered) >= 16
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented operations with no route"


def test_path_parameters_are_declared() -> None:
    for path, operations in OPENAPI["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_every_error_response_uses_the_error_schema() -> None:
    for path, operations in OPENAPI["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)


# --- real answers against the document ------------------------------------------------------

_SLOW = "Slow on purpose. [[emulator tokens=400 rate=20 ttft_ms=0]]"
_QUICK = "Quick. [[emulator tokens=12 rate=400 ttft_ms=0]]"


def _jobs(c: Conformance, user: str, listener: NodeListener, cid: str) -> None:
    """Every jobs operation, through its success and error answers."""
    c.call("POST", "/api/jobs", {"prompt": "x"}, user=None)  # 401
    c.call("POST", "/api/jobs", {"prompt": ""}, user=user)  # 400
    c.call("POST", "/api/jobs", {"prompt": "x", "expiresInSeconds": 5}, user=user)  # 400
    c.call("POST", "/api/jobs", raw=b"prompt=x", user=user, headers={"content-type": "text/plain"})
    c.call("POST", "/api/jobs", raw=b"{" + b" " * 300_000, user=user,
           headers={"content-type": "application/json"})  # 413  # fmt: skip
    c.call("POST", "/api/jobs", {"prompt": "x", "groupName": "nobody-here"}, user=user)  # 403
    key = {"Idempotency-Key": "oa-1"}
    first = c.call("POST", "/api/jobs", {"prompt": _QUICK}, user=user, headers=key)
    c.call("POST", "/api/jobs", {"prompt": _QUICK}, user=user, headers=key)  # the same job
    done = c.call("POST", "/api/jobs", {"prompt": _QUICK, "connectionId": cid}, user=user)
    failed = c.call("POST", "/api/jobs", {"prompt": "[[emulator fault=prompt_filter]]"}, user=user)
    for res, status in ((first, "completed"), (done, "completed"), (failed, "failed")):
        assert res.status == 202, res.body
        c.stack.wait_status(res.body["jobId"], {status}, user=user)
        listener.wait_for(lambda e, j=res.body["jobId"], s=status: e["event"] == "message"
                          and e["target"] == "status" and e["arguments"][0]["jobId"] == j
                          and e["arguments"][0]["status"] == s)  # fmt: skip
    job = first.body["jobId"]
    for jid in (job, failed.body["jobId"], "f" * 32):
        c.call("GET", "/api/jobs/{jobId}", user=user, jobId=jid)  # 200, 200 with error, 404
        c.call("GET", "/api/jobs/{jobId}/events", user=user, jobId=jid)
    c.call("GET", "/api/jobs/{jobId}/events", user=user, jobId=job, query="?after=1&limit=1")
    c.call("GET", "/api/jobs/{jobId}/events", user=user, jobId=job, query="?limit=0")  # 400
    c.call("GET", "/api/jobs", user=user, query="?limit=2")
    c.call("GET", "/api/jobs", user=user, query="?cursor=%20")  # 400
    c.call("DELETE", "/api/jobs/{jobId}", user=user, jobId=job)  # 409: finished
    c.call("DELETE", "/api/jobs/{jobId}/data", user=user, jobId=job)  # 200
    c.call("DELETE", "/api/jobs/{jobId}/data", user=user, jobId="f" * 32)  # 404
    c.call("PATCH", "/api/jobs", {}, user=user)  # 405 + Allow
    # Over the per-user concurrency limit (4 in the example settings): 429 + Retry-After;
    # one running job meets the running answers (cancel, erase refused).
    slow = [c.call("POST", "/api/jobs", {"prompt": _SLOW}, user="oa-limits") for _ in range(5)]
    assert [r.status for r in slow].count(429) >= 1, [r.status for r in slow]
    running = slow[0].body["jobId"]
    c.stack.wait_status(running, {"running"}, user="oa-limits")
    c.call("DELETE", "/api/jobs/{jobId}/data", user="oa-limits", jobId=running)  # 409
    for res in slow:
        if res.status == 202:
            c.call("DELETE", "/api/jobs/{jobId}", user="oa-limits", jobId=res.body["jobId"])


def _groups(c: Conformance, owner: str, listener: NodeListener, cid: str) -> None:
    """Every group, negotiate and claim operation, through success and error answers."""
    friend, g = "oa-friend", "oa-team"
    c.call("POST", "/api/negotiate", user=owner)
    c.call("GET", "/api/groups/{group}", user=owner, group="bad!name")  # 400
    c.call("PUT", "/api/groups/{group}/members/{userId}", user=owner, group=g, userId="me")
    c.call("PUT", "/api/groups/{group}/members/{userId}", user=friend, group=g, userId="me")
    invites = [c.call("POST", "/api/groups/{group}/invites", body, user=owner, group=g)
               for body in ({"ttlSeconds": 59}, {"ttlSeconds": INVITE_TTL_MAX_S + 1},
                            {"expiresInSeconds": 60}, {"ttlSeconds": 60, "singleUse": True},
                            {"ttlSeconds": INVITE_TTL_MAX_S}, None)]  # fmt: skip
    assert [r.status for r in invites] == [400, 400, 400, 201, 201, 201], invites
    assert invites[-1].body["expiresInSeconds"] == INVITE_TTL_DEFAULT_S
    c.call("PUT", "/api/groups/{group}/members/{userId}", {"invite": invites[3].body["invite"]},
           user=friend, group=g, userId="me")  # fmt: skip
    c.call("POST", "/api/groups/{group}/invites", {}, user=friend, group=g)  # 403
    c.call("GET", "/api/groups", user=friend)
    c.call("GET", "/api/groups/{group}", user=friend, group=g)
    c.call("GET", "/api/groups/{group}", user="oa-stranger", group=g)  # 404
    c.call("DELETE", "/api/groups/{group}/members/{userId}", user=owner, group=g, userId="me")
    c.call("DELETE", "/api/groups/{group}/members/{userId}", user=owner, group=g, userId=friend)
    c.call("DELETE", "/api/groups/{group}", user=friend, group=g)  # 404: no longer a member
    c.call("DELETE", "/api/groups/{group}", user=owner, group=g)
    c.call("PUT", "/api/groups/{group}/members/{userId}", user=friend, group=g, userId="me")
    claim = "/api/connections/{connectionId}/claim"
    c.call("POST", claim, user=owner, connectionId="no-such-connection")  # 404
    c.call("POST", claim, {"nonce": 5}, user=owner, connectionId=cid)  # 400
    c.call("POST", claim, {"nonce": "wrong"}, user=owner, connectionId=cid)  # 403
    c.call("POST", claim, user=owner, connectionId=cid)  # 202 + a claim message
    msg = listener.wait_for(lambda e: e["event"] == "message" and e["target"] == "claim")
    c.call("POST", claim, {"nonce": msg["arguments"][0]["nonce"]}, user=owner, connectionId=cid)
    c.call("POST", claim, user=owner, connectionId=cid)  # 200: already yours


def test_real_answers_and_messages_match_the_document(sec_stack: Stack) -> None:
    served = sec_stack.request("GET", "/api/openapi.json", user=None)
    assert served.status == 200 and served.body == json.loads(json.dumps(OPENAPI))
    c = Conformance(sec_stack, served.body)
    c.call("GET", "/api/openapi.json", user=None)
    c.call("GET", "/api/health", user=None)
    c.call("GET", "/api/health", user=None, query="?ready=1")
    owner = "oa-owner"
    with NodeListener(f"{sec_stack.base}/api", headers={PRINCIPAL: owner}) as listener:
        cid = listener.wait_connected()
        _groups(c, owner, listener, cid)  # claims the connection the jobs test sends to
        _jobs(c, owner, listener, cid)
        messages = listener.messages()
    for seen in c.seen:
        c.check_answer(seen)
    for msg in messages:
        c.check_message(msg["target"], msg["arguments"])
    assert {m["target"] for m in messages} == {"delta", "status", "claim"}
    called = {(s.method.upper(), s.template) for s in c.seen if s.response.status != 405}
    assert called == _documented()
    statuses = {s.response.status for s in c.seen}
    assert {200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 429} <= statuses, statuses
