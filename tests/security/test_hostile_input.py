"""Hostile input through the real local host: every answer is a 4xx with a JSON error body,
never a 5xx or a hang, and the store stays sane (a normal job still works afterwards)."""

from __future__ import annotations

import json
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import Stack, expected_text

from .hostile import assert_json_error, raw_request

pytestmark = pytest.mark.e2e

USER = "mallory"
JSON = {"content-type": "application/json", "x-ms-client-principal-id": USER}


def _post_raw(stack: Stack, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    return stack.request("POST", "/api/jobs", raw=raw, user=USER, headers=headers or JSON)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"prompt": "x"',
        b'{"prompt": "x"}trailing',
        b"nul",
        b"\xff\xfe{\x00}",
        b'{"prompt": "\xc3"}',
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b'{"prompt": "x", "maxTokens": 1' + b"0" * 5000 + b"}",
    ],
    ids=["empty", "brace", "truncated", "trailing", "word", "utf16", "bad-utf8", "deep-list",
         "deep-object", "huge-int"],
)  # fmt: skip
def test_malformed_json_is_400(sec_stack: Stack, raw: bytes) -> None:
    err = assert_json_error(_post_raw(sec_stack, raw), 400)
    assert err["code"] == "invalid_json" and err["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": 5}, "prompt"),
        ({"prompt": ["x"]}, "prompt"),
        ({"prompt": {"text": "x"}}, "prompt"),
        ({"prompt": True}, "prompt"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [1]}, "messages[0]"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "root", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "name": "admin"}]}, "messages[0].name"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "messages[0].role"),
        ({"prompt": "x", "maxTokens": "5"}, "maxTokens"),
        ({"prompt": "x", "maxTokens": 1.5}, "maxTokens"),
        ({"prompt": "x", "maxTokens": 0}, "maxTokens"),
        ({"prompt": "x", "maxTokens": 10**12}, "maxTokens"),
        ({"prompt": "x", "temperature": "hot"}, "temperature"),
        ({"prompt": "x", "temperature": -1}, "temperature"),
        ({"prompt": "x", "groupName": 5}, "groupName"),
        ({"prompt": "x", "connectionId": ["a"]}, "connectionId"),
        ({}, "prompt"),
        (None, "body"),
        ("prompt", "body"),
        ({"prompt": "x", "owner": "alice"}, "owner"),
        ({"prompt": "x", "__proto__": {"admin": True}}, "__proto__"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, "messages"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": " \n\t "}, "prompt"),
        ({"prompt": "x" * 32_001}, "prompt"),
        ({"prompt": "x", "system": "s" * 8_001}, "system"),
        ({"messages": [{"role": "user", "content": "x"}] * 65}, "messages"),
        ({"prompt": "nul \u0000 byte"}, "prompt"),
        ({"prompt": "escape \u001b[31m"}, "prompt"),
        ({"prompt": "x", "system": "bell \u0007"}, "system"),
        ({"messages": [{"role": "user", "content": "\u0001"}]}, "messages[0].content"),
        ({"prompt": "x", "groupName": "../etc"}, "groupName"),
        ({"prompt": "x", "groupName": "%2e%2e"}, "groupName"),
        ({"prompt": "x", "groupName": "g" * 65}, "groupName"),
        ({"prompt": "x", "groupName": "grüppe"}, "groupName"),
        ({"prompt": "x", "connectionId": "a/b"}, "connectionId"),
        ({"prompt": "x", "connectionId": "c" * 129}, "connectionId"),
    ],
)
def test_wrong_shapes_name_the_field(sec_stack: Stack, body: object, field: str) -> None:
    res = _post_raw(sec_stack, json.dumps(body).encode())
    err = assert_json_error(res, 400)
    assert err["code"] == "invalid_request"
    assert err["field"] == field


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "lone \\ud800 high"}',
        b'{"prompt": "lone \\udfff low"}',
        b'{"prompt": "x", "system": "\\udbff"}',
        b'{"prompt": "x", "temperature": NaN}',
        b'{"prompt": "x", "temperature": Infinity}',
        b'{"prompt": "x", "maxTokens": 1e400}',
    ],
)
def test_json_escapes_and_non_finite_numbers_are_refused(sec_stack: Stack, raw: bytes) -> None:
    err = assert_json_error(_post_raw(sec_stack, raw), 400)
    assert err["code"] == "invalid_request"


def test_huge_messages_list_is_refused_without_reading_it_all(sec_stack: Stack) -> None:
    turns = [{"role": "user", "content": "x"}] * 20_000  # ~700 KB: over the body limit
    err = assert_json_error(_post_raw(sec_stack, json.dumps({"messages": turns}).encode()), 413)
    assert err["code"] == "payload_too_large"
    turns = [{"role": "user", "content": "x"}] * 5_000  # ~180 KB: under it, over MESSAGES_MAX
    err = assert_json_error(_post_raw(sec_stack, json.dumps({"messages": turns}).encode()), 400)
    assert err["field"] == "messages"


@pytest.mark.parametrize("size", [300_000, 5_000_000])
def test_oversized_body_is_413_json(sec_stack: Stack, size: int) -> None:
    raw = b'{"prompt": "' + b"x" * size + b'"}'
    err = assert_json_error(_post_raw(sec_stack, raw), 413)
    assert err["code"] == "payload_too_large"


def test_oversized_headers_get_a_4xx_or_are_ignored_never_a_5xx(sec_stack: Stack) -> None:
    for size in (16_000, 70_000, 1_000_000):
        try:
            junk = {"x-ms-client-principal-id": USER, "x-junk": "a" * size}
            res = raw_request(sec_stack, "GET", "/api/jobs", headers=junk)
        except ConnectionError:
            continue  # the server closed the connection on an oversized head: refused
        if res.status != 200:  # refused by the host's HTTP front itself: still JSON
            assert_json_error(res, 400, 431)
    long_identity = raw_request(sec_stack, "GET", "/api/jobs",
                                headers={"x-ms-client-principal-id": "u" * 10_000})  # fmt: skip
    assert assert_json_error(long_identity, 401)["code"] == "unauthenticated"


def test_over_long_urls_and_unparsable_requests_are_json_4xx(sec_stack: Stack) -> None:
    hdrs = {"x-ms-client-principal-id": USER}
    for target in ("/api/jobs/" + "a" * 5000, "/api/jobs?cursor=" + "c" * 5000):
        err = assert_json_error(raw_request(sec_stack, "GET", target, headers=hdrs), 414)
        assert err["code"] == "uri_too_long"
    parts = urlsplit(sec_stack.base)
    for junk in (b"NONSENSE\r\n\r\n", b"GET /api/jobs HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n"):
        with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
            sock.sendall(junk)
            data = b""
            while chunk := sock.recv(65536):  # the host answers, then closes
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), data
        assert b"content-type: application/json" in head.lower(), head
        assert json.loads(body)["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "ctype",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/jsonx", "json", "text/json; charset=utf-8"],
)  # fmt: skip
def test_wrong_content_type_is_415(sec_stack: Stack, ctype: str | None) -> None:
    headers = {"x-ms-client-principal-id": USER}
    if ctype is not None:
        headers["content-type"] = ctype
    res = raw_request(sec_stack, "POST", "/api/jobs", body=b'{"prompt": "x"}', headers=headers)
    assert assert_json_error(res, 415)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/jobs", "GET, POST"),
        ("PATCH", "/api/jobs", "GET, POST"),
        ("DELETE", "/api/jobs", "GET, POST"),
        ("POST", "/api/jobs/" + "a" * 32, "DELETE, GET"),
        ("PUT", "/api/jobs/" + "a" * 32 + "/events", "GET"),
        ("GET", "/api/negotiate", "POST"),
        ("DELETE", "/api/health", "GET"),
        ("POST", "/api/openapi.json", "GET"),
        ("OPTIONS", "/api/jobs", "GET, POST"),
        ("GET", "/api/groups/g/invites", "POST"),
        ("HEAD", "/api/negotiate", "POST"),
    ],
)
def test_wrong_method_is_405_json_with_allow(
    sec_stack: Stack, method: str, path: str, allow: str
) -> None:
    res = raw_request(sec_stack, method, path, headers={"x-ms-client-principal-id": USER})
    assert res.status == 405
    assert res.headers["allow"] == allow
    if method != "HEAD":
        assert assert_json_error(res, 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/api/nothing"), ("POST", "/api/jobs/x/y/z"), ("PUT", "/nowhere"),
     ("GET", "/api/jobs/x/y/z"), ("PATCH", "/api")],
)  # fmt: skip
def test_unknown_paths_are_json_404(sec_stack: Stack, method: str, path: str) -> None:
    res = raw_request(sec_stack, method, path, headers={"x-ms-client-principal-id": USER})
    assert assert_json_error(res, 404)["code"] == "not_found"


HOSTILE_IDS = [
    "..", "../../relay", "%2e%2e", "%2e%2e%2f%2e%2e%2frelay", "..%2f..%2fetc%2fpasswd",
    "a%2fb", "a%5cb", "%00", "A" * 32, "a" * 31, "a" * 33, "f" * 3000, "%C3%A9" * 16,
    "%E2%80%AE" + "a" * 29, "%F0%9F%98%80", "'%20or%20'1'='1", "*",
]  # fmt: skip


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
def test_hostile_job_ids_are_404(sec_stack: Stack, job_id: str) -> None:
    hdrs = {"x-ms-client-principal-id": USER}
    for method, path in [
        ("GET", f"/api/jobs/{job_id}"),
        ("GET", f"/api/jobs/{job_id}/events"),
        ("DELETE", f"/api/jobs/{job_id}"),
        ("DELETE", f"/api/jobs/{job_id}/data"),
    ]:
        res = raw_request(sec_stack, method, path, headers=hdrs)
        assert 400 <= res.status < 500, (method, path, res.status)
        assert_json_error(res, 404, 405)


_BAD_GROUPS = [g for g in HOSTILE_IDS if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", g)]


@pytest.mark.parametrize("group", [*_BAD_GROUPS, "-lead", "_x", "g" * 65])
def test_hostile_group_names_are_4xx(sec_stack: Stack, group: str) -> None:
    hdrs = {"x-ms-client-principal-id": USER, "content-type": "application/json"}
    for method, path in [("GET", f"/api/groups/{group}"), ("DELETE", f"/api/groups/{group}"),
                         ("POST", f"/api/groups/{group}/invites"),
                         ("PUT", f"/api/groups/{group}/members/me"),
                         ("DELETE", f"/api/groups/{group}/members/someone")]:  # fmt: skip
        res = raw_request(sec_stack, method, path, headers=hdrs, body=b"{}")
        assert 400 <= res.status < 500, (method, path, res.status, res.body)
        assert_json_error(res, 400, 403, 404, 405)


@pytest.mark.parametrize(
    "body",
    [b'{"invite": "../../etc"}', b'{"invite": 5}', b'{"invite": ""}',
     b'{"invite": "' + b"i" * 2000 + b'"}', b'{"invite": "\\ud800"}', b'{"invite": "a.b.c"}',
     b'{"invite": "eyJhbGciOiJub25lIn0.eyJncm91cCI6ImcifQ."}', b'{"owner": true}',
     b"[" * 100_000, b"[]"],
)  # fmt: skip
def test_hostile_invites_are_4xx(sec_stack: Stack, body: bytes) -> None:
    # The group exists and belongs to someone else: only a true invite lets mallory in.
    made = sec_stack.request("PUT", "/api/groups/owned-by-owen/members/me", user="owen")
    assert made.status in (200, 201), made.body
    res = sec_stack.request("PUT", "/api/groups/owned-by-owen/members/me", raw=body,
                            user=USER, headers=JSON)  # fmt: skip
    assert_json_error(res, 400, 403)


@pytest.mark.parametrize(
    "cid", ["..", "a%2fb", "%2e%2e%2f", "c" * 129, "%C3%A9", "%00", "a%20b"]
)  # fmt: skip
def test_hostile_connection_ids_are_4xx(sec_stack: Stack, cid: str) -> None:
    res = raw_request(sec_stack, "POST", f"/api/connections/{cid}/claim", body=b"{}",
                      headers=JSON)  # fmt: skip
    assert_json_error(res, 400, 404)


@pytest.mark.parametrize(
    "identity",
    ["../alice", "alice/../bob", "a" * 129, "-leading", ".dot", "al ice", "al\tice",
     "ali\xe9", "%61lice", "alice;bob", "*", "'", ""],
)  # fmt: skip
def test_hostile_identity_headers_are_401(sec_stack: Stack, identity: str) -> None:
    res = raw_request(sec_stack, "GET", "/api/jobs", headers={"x-ms-client-principal-id": identity})
    assert assert_json_error(res, 401)["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "key", ["has space", "k" * 201, "caf\xe9", "tab\tkey", ""]
)  # fmt: skip
def test_hostile_idempotency_keys_are_400(sec_stack: Stack, key: str) -> None:
    res = raw_request(sec_stack, "POST", "/api/jobs", body=b'{"prompt": "x"}',
                      headers={**JSON, "Idempotency-Key": key})  # fmt: skip
    err = assert_json_error(res, 400)
    assert err["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1e2", "limit=99999999999999999999",
     "limit=%00", "cursor=%27%20or%201%3D1", "cursor=" + "c" * 201, "cursor=%C3%A9",
     "cursor=zzzz", "cursor=a%7Cb"],
)  # fmt: skip
def test_hostile_list_queries_are_400(sec_stack: Stack, query: str) -> None:
    res = raw_request(sec_stack, "GET", f"/api/jobs?{query}",
                      headers={"x-ms-client-principal-id": USER})  # fmt: skip
    assert assert_json_error(res, 400)["code"] == "invalid_request"


def test_after_the_barrage_a_normal_job_works_and_the_list_is_sane(sec_stack: Stack) -> None:
    odd = (
        "Unicode: \u202eRTL\u200f mark, emoji 😀🧪, Hebrew עברית, CJK 漢字. "
        "[[emulator tokens=30 rate=300 ttft_ms=0]]"
    )
    accepted = [sec_stack.request("POST", "/api/jobs", {"prompt": odd}, user=USER)]
    plain = "Plain after the barrage. [[emulator tokens=30 rate=300 ttft_ms=0]]"
    accepted.append(sec_stack.request("POST", "/api/jobs", {"prompt": plain}, user=USER))
    assert [a.status for a in accepted] == [202, 202], [a.body for a in accepted]
    ids = [a.body["jobId"] for a in accepted]
    for job_id, prompt in zip(ids, (odd, plain), strict=True):
        done = sec_stack.wait_status(job_id, {"completed", "failed"}, user=USER)
        assert done["status"] == "completed", {k: done.get(k) for k in ("error", "attempt")}
        assert done["text"] == expected_text(prompt)
    listed = sec_stack.request("GET", "/api/jobs?limit=100", user=USER)
    assert listed.status == 200
    jobs = listed.body["jobs"]
    # Only the jobs this user had accepted (202s); none of the refused requests left a row.
    assert {j["jobId"] for j in jobs} == set(ids)
    assert all(j["status"] == "completed" for j in jobs)
