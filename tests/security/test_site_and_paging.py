"""The page route cannot leave web/, the host's CORS refuses other origins, and the events
endpoint keeps its paging bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import api.site as site
from tests.e2e.stack import ROOT, Stack

from .hostile import assert_json_error, raw_request

pytestmark = pytest.mark.e2e

SECRET_MARK = b"load_settings"  # text of relay/settings.py, never of any page


@pytest.mark.parametrize(
    "target",
    [
        "/../relay/settings.py",
        "/../../etc/passwd",
        "/%2e%2e/relay/settings.py",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%2frelay%2fsettings.py",
        "/..%5crelay%5csettings.py",
        "/vendor/../../relay/settings.py",
        "/%252e%252e/relay/settings.py",
        "//etc/passwd",
        "/%00",
        "/index.html%00.js",
        "/" + "a" * 300,
        "/" + "d/" * 1000 + "x",
        "/.git/config",
        "/relay/settings.py",
    ],
)
def test_page_route_reads_nothing_outside_web(sec_stack: Stack, target: str) -> None:
    res = raw_request(sec_stack, "GET", target)
    assert 400 <= res.status < 500, (target, res.status)
    assert SECRET_MARK not in (res.body if isinstance(res.body, bytes) else b"")
    assert assert_json_error(res, 404)["code"] == "not_found"


def test_page_route_still_serves_the_page(sec_stack: Stack) -> None:
    res = raw_request(sec_stack, "GET", "/")
    assert res.status == 200 and res.headers["x-content-type-options"] == "nosniff"
    head = raw_request(sec_stack, "HEAD", "/index.html")
    assert head.status == 200 and head.body is None


def test_symlinks_out_of_web_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "web"
    (root / "sub").mkdir(parents=True)
    (root / "page.html").write_text("<p>ok</p>")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "leak.txt").symlink_to(outside)
    (root / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    (root / "alias.html").symlink_to(root / "page.html")
    (root / "loop").symlink_to(root / "loop")
    monkeypatch.setattr(site, "WEB_ROOT", root.resolve())
    assert site._page("page.html") == (root / "page.html").resolve()
    assert site._page("alias.html") == (root / "page.html").resolve()  # inside: fine
    for rel in (
        "leak.txt",
        "sub/up/secret.txt",
        "loop",
        "../secret.txt",
        "sub",
        "a\x00b",
        "x" * 5000,
    ):
        assert site._page(rel) is None, rel


def test_cors_refuses_other_origins(sec_stack: Stack) -> None:
    evil = "http://evil.example"
    pre = raw_request(
        sec_stack,
        "OPTIONS",
        "/api/jobs",
        headers={
            "Origin": evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-ms-client-principal-id, content-type",
        },
    )
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-headers" not in pre.headers
    forged = raw_request(
        sec_stack,
        "GET",
        "/api/jobs",
        headers={"Origin": evil, "x-ms-client-principal-id": "victor"},
    )
    assert forged.status == 403 and "access-control-allow-origin" not in forged.headers
    assert assert_json_error(forged, 403)["code"] == "cross_origin_identity"
    plain = raw_request(sec_stack, "GET", "/api/health", headers={"Origin": evil})
    assert plain.status == 200 and "access-control-allow-origin" not in plain.headers
    # The granted origin is the one Host.CORS of local.settings.json names (the page's).
    example = json.loads((ROOT / "local.settings.json.example").read_text())
    own = example["Host"]["CORS"].split(",")[0]
    same = raw_request(
        sec_stack, "GET", "/api/jobs", headers={"Origin": own, "x-ms-client-principal-id": "victor"}
    )
    assert same.status == 200 and same.headers["access-control-allow-origin"] == own
    for lookalike in (
        own + ".evil.example",
        own.replace("127.0.0.1", "127.0.0.1.nip.io"),
        "null",
        own.replace("http://", "https://"),
    ):
        res = raw_request(sec_stack, "GET", "/api/health", headers={"Origin": lookalike})
        assert "access-control-allow-origin" not in res.headers, lookalike


def test_events_paging_bounds(sec_stack: Stack) -> None:
    user = "pager"
    prompt = "Page me. [[emulator tokens=80 rate=400 ttft_ms=0]]"
    job_id = sec_stack.request("POST", "/api/jobs", {"prompt": prompt}, user=user).body["jobId"]
    sec_stack.wait_status(job_id, {"completed"}, user=user)
    url = f"/api/jobs/{job_id}/events"
    everything = sec_stack.request("GET", f"{url}?after=0&limit=1000", user=user).body
    total = len(everything["events"])
    assert total >= 2 and everything["more"] is False
    one = sec_stack.request("GET", f"{url}?after=0&limit=1", user=user).body
    assert [e["seq"] for e in one["events"]] == [1] and one["more"] is True
    last = sec_stack.request("GET", f"{url}?after={total}", user=user).body
    assert last["events"] == [] and last["more"] is False
    far = sec_stack.request("GET", f"{url}?after=1000000000", user=user).body
    assert far["events"] == []
    none = sec_stack.request("GET", f"{url}?after=0&attempt=999", user=user).body
    assert none["events"] == []
    for query, field in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-5", "limit"),
        ("after=-1", "after"),
        ("after=1000000001", "after"),
        ("after=1.5", "after"),
        ("after=abc", "after"),
        ("after=99999999999999999999999", "after"),
        ("attempt=-1", "attempt"),
        ("attempt=1000001", "attempt"),
        ("after=%EF%BC%91", "after"),
    ]:
        res = sec_stack.request("GET", f"{url}?{query}", user=user)
        assert assert_json_error(res, 400)["field"] == field, query
