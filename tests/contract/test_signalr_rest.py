"""The SignalR emulator's REST API against the published 2022-06-01 contract
(Azure/azure-signalr docs/swagger/V20220601.md), with the real @microsoft/signalr client
under Node as the connected party. Operations the app does not call are here too: an
independent server or client is judged on the whole documented surface."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.signalr_emulator import run_in_thread
from tests.clients.listener import NodeListener

from ._signing import RestCaller


@pytest.fixture(scope="module")
def rest() -> Iterator[RestCaller]:
    with run_in_thread(port=0) as emulator:
        caller = RestCaller(emulator.connection_string)
        try:
            yield caller
        finally:
            caller.close()


def _listen(rest: RestCaller, user: str) -> NodeListener:
    url, token = rest.client_token(user)
    return NodeListener(url, access_token=token, targets=("note",), reconnect=False)


def test_documented_status_codes_for_unknown_targets(rest: RestCaller) -> None:
    # (method, path, documented success/absence code) from the 2022-06-01 swagger.
    table = [
        ("POST", "/:closeConnections", 204),
        ("POST", "/users/nobody/:closeConnections", 204),
        ("POST", "/groups/nogroup/:closeConnections", 204),
        ("DELETE", "/connections/noconn", 200),
        ("DELETE", "/connections/noconn/groups", 200),
        ("HEAD", "/connections/noconn", 404),
        ("HEAD", "/groups/nogroup", 404),
        ("HEAD", "/users/nobody", 404),
        ("HEAD", "/users/nobody/groups/nogroup", 404),
        ("PUT", "/groups/nogroup/connections/noconn", 404),
        ("DELETE", "/groups/nogroup/connections/noconn", 404),
        ("DELETE", "/users/nobody/groups", 204),
        ("DELETE", "/users/nobody/groups/nogroup", 204),
    ]
    got = [(m, p, rest.call(m, p).status_code) for m, p, _ in table]
    assert got == table


def test_close_connections_of_one_user_leaves_the_others(rest: RestCaller) -> None:
    with _listen(rest, "closer-a") as a, _listen(rest, "closer-b") as b:
        a.wait_connected()
        b.wait_connected()
        res = rest.call("POST", "/users/closer-a/:closeConnections", params={"reason": "test"})
        assert res.status_code == 204
        a.wait_for(lambda e: e["event"] == "closed")
        assert rest.call("HEAD", "/users/closer-a").status_code == 404
        assert rest.call("HEAD", "/users/closer-b").status_code == 200
        sent = rest.call("POST", "/users/closer-b/:send", body={"target": "note", "arguments": [1]})
        assert sent.status_code == 202
        b.wait_for(lambda e: e["event"] == "message" and e["arguments"] == [1])


def test_close_connections_of_a_group(rest: RestCaller) -> None:
    with _listen(rest, "grp-closer") as a, _listen(rest, "grp-stayer") as b:
        cid = a.wait_connected()
        b.wait_connected()
        assert rest.call("PUT", f"/groups/closing/connections/{cid}").status_code == 200
        assert rest.call("HEAD", "/groups/closing").status_code == 200
        assert rest.call("POST", "/groups/closing/:closeConnections").status_code == 204
        a.wait_for(lambda e: e["event"] == "closed")
        assert rest.call("HEAD", f"/connections/{cid}").status_code == 404
        assert rest.call("HEAD", "/users/grp-stayer").status_code == 200


def test_remove_a_connection_from_all_groups(rest: RestCaller) -> None:
    with _listen(rest, "all-groups") as a:
        cid = a.wait_connected()
        for group in ("g-one", "g-two"):
            assert rest.call("PUT", f"/groups/{group}/connections/{cid}").status_code == 200
            assert rest.call("HEAD", f"/groups/{group}").status_code == 200
        assert rest.call("DELETE", f"/connections/{cid}/groups").status_code == 200
        assert [rest.call("HEAD", f"/groups/{g}").status_code for g in ("g-one", "g-two")] == [
            404,
            404,
        ]
        assert rest.call("HEAD", f"/connections/{cid}").status_code == 200


def test_broadcast_skips_excluded_connections(rest: RestCaller) -> None:
    with _listen(rest, "excl-a") as a, _listen(rest, "excl-b") as b:
        cid_a = a.wait_connected()
        b.wait_connected()
        skipped = rest.call(
            "POST", "/:send", body={"target": "note", "arguments": ["skip"]},
            params={"excluded": cid_a},
        )  # fmt: skip
        assert skipped.status_code == 202
        b.wait_for(lambda e: e["event"] == "message" and e["arguments"] == ["skip"])
        # A later message to a's own connection arrives after anything sent to it before
        # (one sender, one connection), so its arrival proves the excluded one never came.
        marker = {"target": "note", "arguments": ["marker"]}
        assert rest.call("POST", f"/connections/{cid_a}/:send", body=marker).status_code == 202
        a.wait_for(lambda e: e["event"] == "message" and e["arguments"] == ["marker"])
        assert [e["arguments"] for e in a.messages("note")] == [["marker"]]
