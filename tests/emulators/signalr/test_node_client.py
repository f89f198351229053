"""The real @microsoft/signalr client (Node) against the emulator, over every transport,
connecting through a function-app style negotiate redirect."""

from __future__ import annotations

import pytest

from local.signalr_emulator import EmulatorThread
from tests.clients.listener import NodeListener

from .helpers import Rest, wait_until

TRANSPORTS = ["websockets", "sse", "longpolling"]
USER = {"x-ms-client-principal-id": "alice"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_receives_sends_to_every_kind_of_target(
    transport: str, negotiate_base: str, rest: Rest, emulator: EmulatorThread
) -> None:
    with NodeListener(negotiate_base, transport=transport, headers=USER) as client:
        cid = client.wait_connected()
        rest.send("/users/alice", "delta", {"jobId": "j1", "seq": 1, "attempt": 1, "text": "a"})
        rest.send(
            f"/connections/{cid}", "delta", {"jobId": "j1", "seq": 2, "attempt": 1, "text": "b"}
        )
        assert rest.call("PUT", f"/groups/g-conn/connections/{cid}").status_code == 200
        rest.send("/groups/g-conn", "delta", {"jobId": "j1", "seq": 3, "attempt": 1, "text": "c"})
        assert rest.call("PUT", "/users/alice/groups/g-user").status_code == 200
        rest.send("/groups/g-user", "delta", {"jobId": "j1", "seq": 4, "attempt": 1, "text": "d"})
        rest.send("", "status", {"jobId": "j1", "status": "completed", "attempt": 1, "lastSeq": 4})
        rest.send("/users/bob", "delta", {"jobId": "x", "seq": 99, "attempt": 1, "text": "no"})
        client.wait_for(lambda e: e["event"] == "message" and e["target"] == "status")
        deltas = [m["arguments"][0] for m in client.messages("delta")]
        assert [d["seq"] for d in deltas] == [1, 2, 3, 4]
        assert "".join(d["text"] for d in deltas) == "abcd"
        stats = emulator.stats()
        conn_stats = stats["perConnection"][cid]
        assert conn_stats["userId"] == "alice"
        assert conn_stats["messages"] == 5
        assert conn_stats["units"] == 5  # every message is under 2 KB
        assert stats["hubs"]["stream"]["sends"] == 6  # the send to bob reached nobody


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_close_from_the_server_ends_the_client(
    transport: str, negotiate_base: str, rest: Rest
) -> None:
    with NodeListener(negotiate_base, transport=transport, headers=USER, reconnect=False) as c:
        cid = c.wait_connected()
        assert rest.call("HEAD", f"/connections/{cid}").status_code == 200
        response = rest.call("DELETE", f"/connections/{cid}", params={"reason": "bye"})
        assert response.status_code == 200
        closed = c.wait_for(lambda e: e["event"] == "closed")
        assert "bye" in (closed["error"] or "")
        wait_until(lambda: rest.call("HEAD", f"/connections/{cid}").status_code == 404)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconnects_with_a_new_connection_and_keeps_user_sends(
    transport: str, negotiate_base: str, rest: Rest
) -> None:
    with NodeListener(
        negotiate_base, transport=transport, headers=USER, reconnect_delays=[0, 200, 500]
    ) as client:
        first = client.wait_connected()
        assert rest.call("PUT", "/users/alice/groups/room").status_code == 200
        closed = rest.control("POST", "disconnect", {"connectionId": first})
        assert closed.json() == {"closed": [first]}
        client.wait_for(lambda e: e["event"] == "reconnecting")
        again = client.wait_for(lambda e: e["event"] == "reconnected")
        assert again["connectionId"] != first
        rest.send("/users/alice", "delta", {"seq": 1})
        rest.send("/groups/room", "delta", {"seq": 2})  # user membership survives reconnects
        client.wait_messages(2, "delta")
        assert [m["arguments"][0]["seq"] for m in client.messages("delta")] == [1, 2]


def test_server_shutdown_sends_a_close_message(
    negotiate_base: str, emulator: EmulatorThread
) -> None:
    with NodeListener(negotiate_base, headers=USER, reconnect=False) as client:
        client.wait_connected()
        emulator.stop()
        closed = client.wait_for(lambda e: e["event"] == "closed")
        assert "shutting down" in (closed["error"] or "")


def test_client_invocation_gets_an_error_and_stays_connected(
    negotiate_base: str, rest: Rest
) -> None:
    # The listener never invokes; drive an invocation through a raw client instead
    # (see test_raw_protocol.py). Here: the Node client still gets messages after a ping.
    with NodeListener(negotiate_base, headers=USER) as client:
        client.wait_connected()
        rest.send("", "claim", {"nonce": "n1"})
        event = client.wait_for(lambda e: e["event"] == "message")
        assert event == {"event": "message", "target": "claim", "arguments": [{"nonce": "n1"}]}
