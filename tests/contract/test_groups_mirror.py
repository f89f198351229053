"""Issue 6: group membership is the app's record mirrored to SignalR user-group
membership, and negotiate re-applies it. Observed from outside: the app's HTTP API on one
side, the SignalR service's documented existence checks (HEAD) on the other."""

from __future__ import annotations

from relay.groups import signalr_group_name
from tests.e2e.stack import Stack

from ._signing import RestCaller


def _in_signalr(rest: RestCaller, user: str, group: str) -> bool:
    status = rest.call("HEAD", f"/users/{user}/groups/{signalr_group_name(group)}").status_code
    assert status in (200, 404), status
    return status == 200


def test_join_leave_remove_and_delete_are_mirrored(
    contract_stack: Stack, signalr_rest: RestCaller
) -> None:
    s, g = contract_stack, "mirror-g"
    assert s.request("PUT", f"/api/groups/{g}/members/me", user="m-owner").status == 201
    assert _in_signalr(signalr_rest, "m-owner", g)
    invite = s.request("POST", f"/api/groups/{g}/invites", user="m-owner").body["invite"]
    for member in ("m-one", "m-two"):
        joined = s.request("PUT", f"/api/groups/{g}/members/me", {"invite": invite}, user=member)
        assert joined.status == 200, joined.body
        assert _in_signalr(signalr_rest, member, g)
    assert not _in_signalr(signalr_rest, "m-outsider", g)

    assert s.request("DELETE", f"/api/groups/{g}/members/me", user="m-one").status == 200
    assert not _in_signalr(signalr_rest, "m-one", g)
    assert s.request("DELETE", f"/api/groups/{g}/members/m-two", user="m-owner").status == 200
    assert not _in_signalr(signalr_rest, "m-two", g)
    assert s.request("DELETE", f"/api/groups/{g}", user="m-owner").status == 200
    assert not _in_signalr(signalr_rest, "m-owner", g)


def test_negotiate_repairs_a_membership_lost_in_signalr(
    contract_stack: Stack, signalr_rest: RestCaller
) -> None:
    s, g, user = contract_stack, "drift-g", "drift-u"
    assert s.request("PUT", f"/api/groups/{g}/members/me", user=user).status == 201
    # SignalR loses the membership behind the app's back (a TTL, a service-side reset).
    lost = signalr_rest.call("DELETE", f"/users/{user}/groups/{signalr_group_name(g)}")
    assert lost.status_code == 204
    assert not _in_signalr(signalr_rest, user, g)
    assert s.request("POST", "/api/negotiate", user=user).status == 200
    assert _in_signalr(signalr_rest, user, g)
    # Negotiating as someone else adds nobody else.
    assert s.request("POST", "/api/negotiate", user="drift-other").status == 200
    assert not _in_signalr(signalr_rest, "drift-other", g)


def test_a_group_name_cannot_reach_another_namespace(
    contract_stack: Stack, signalr_rest: RestCaller
) -> None:
    # A job's group target and a user's SignalR groups are built from the validated name
    # only: a name shaped like the server's own prefix is refused, not passed through.
    s = contract_stack
    for hostile in (signalr_group_name("x"), "grp%2Ex", "..", "a%20b", "%C3%A9", "x%2Fy"):
        res = s.request("PUT", f"/api/groups/{hostile}/members/me", user="ns-user")
        assert res.status in (400, 404), (hostile, res.status, res.body)
        assert res.body["error"]["code"]
