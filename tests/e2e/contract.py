"""A client that follows the stream contract (as web/contract.js does), in Python."""

from __future__ import annotations

from typing import Any

from tests.clients.listener import NodeListener

from .stack import Stack


def final_text(stack: Stack, job_id: str, deltas: list[dict[str, Any]], user: str = "alice") -> str:
    """Apply live deltas by the contract, then fill any gap from the events endpoint."""
    attempt = max((d["attempt"] for d in deltas), default=0)
    parts = {d["seq"]: d["text"] for d in deltas if d["attempt"] == attempt}
    status = stack.request("GET", f"/api/jobs/{job_id}", user=user).body
    if status["attempt"] > attempt:
        attempt, parts = status["attempt"], {}
    seq = 0
    while seq + 1 in parts:
        seq += 1
    if seq < status["lastSeq"]:
        events = stack.request(
            "GET", f"/api/jobs/{job_id}/events?after={seq}&attempt={attempt}", user=user
        ).body["events"]
        for e in events:
            parts.setdefault(e["seq"], e["text"])
    ordered = [parts[i] for i in range(1, status["lastSeq"] + 1)]
    return "".join(ordered)


def deltas_of(messages: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [m["arguments"][0] for m in messages if m["arguments"][0].get("jobId") == job_id]


def barrier(stack: Stack, tab: NodeListener, user: str, cid: str) -> None:
    """Return once everything SignalR delivered to this connection so far has reached the
    tab: the emulator queues a connection's messages in the order they are sent, so the
    claim nonce sent now arrives after them. (A fixed sleep was a race on a loaded machine.)"""
    mark = len(tab.events)
    res = stack.request("POST", f"/api/connections/{cid}/claim", user=user)
    assert res.status == 202, res.body
    tab.wait_for(lambda e: e["event"] == "message" and e["target"] == "claim", start=mark,
                 timeout=30)  # fmt: skip
