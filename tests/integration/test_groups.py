"""relay.groups against a real Azurite and the SignalR emulator (clock injected, never slept)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from local.signalr_emulator import run_in_thread
from relay.claims import CLAIM_TTL_S
from relay.errors import Forbidden, GroupRecentlyDeleted, InviteInvalid
from relay.groups import Groups, signalr_group_name
from relay.signalr import SignalRClient
from tests.integration.test_signalr_client_emulator import Listener

pytestmark = pytest.mark.azurite

QUARANTINE_S = 600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(port=0) as emu:
        yield emu


@pytest.fixture
async def signalr(emulator: Any) -> AsyncIterator[SignalRClient]:
    async with SignalRClient(emulator.connection_string, "stream") as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def groups(
    storage_connection_string: str, signalr: SignalRClient, clock: Clock
) -> AsyncIterator[Groups]:
    service = TableServiceClient.from_connection_string(storage_connection_string)
    g = Groups(service, "g" + uuid.uuid4().hex[:10], signalr, clock=clock,
               quarantine_s=QUARANTINE_S)  # fmt: skip
    await g.ensure()
    yield g
    await service.close()


def name() -> str:
    return "team-" + uuid.uuid4().hex[:8]


async def in_signalr(signalr: SignalRClient, user: str, group: str) -> bool:
    return await signalr.user_in_group(user, signalr_group_name(group))


async def test_creator_owns_others_need_an_invite_and_membership_is_mirrored(
    groups: Groups, signalr: SignalRClient
) -> None:
    g = name()
    assert await groups.join(g, "alice", None) == "created"
    assert await groups.owner_of(g) == "alice"
    with pytest.raises(Forbidden):
        await groups.join(g, "bob", None)
    assert not await groups.is_member(g, "bob") and not await in_signalr(signalr, "bob", g)
    invite = await groups.create_invite(g, 60, single_use=False)
    assert await groups.join(g, "bob", invite) == "joined"
    assert await groups.join(g, "bob", None) == "joined"  # members re-join without one
    assert {m["userId"] for m in await groups.members(g)} == {"alice", "bob"}
    assert await in_signalr(signalr, "alice", g) and await in_signalr(signalr, "bob", g)
    assert await groups.memberships("bob") == [{"group": g, "owner": "alice"}]


async def test_invite_expires_by_the_injected_clock(groups: Groups, clock: Clock) -> None:
    g = name()
    await groups.join(g, "alice", None)
    invite = await groups.create_invite(g, 60, single_use=False)
    clock.now += 59.5
    assert await groups.join(g, "bob", invite) == "joined"
    clock.now += 0.5
    with pytest.raises(InviteInvalid, match="expired"):
        await groups.join(g, "carol", invite)
    assert not await groups.is_member(g, "carol")


async def test_single_use_invite_race_has_exactly_one_winner(groups: Groups) -> None:
    g = name()
    await groups.join(g, "alice", None)
    for round_ in range(5):
        invite = await groups.create_invite(g, 60, single_use=True)
        users = [f"u{round_}a", f"u{round_}b", f"u{round_}c"]
        results = await asyncio.gather(
            *(groups.join(g, u, invite) for u in users), return_exceptions=True
        )
        assert sum(r == "joined" for r in results) == 1, results
        losers = [r for r in results if r != "joined"]
        assert all(isinstance(r, InviteInvalid) and "already" in r.message for r in losers)
        assert sum([await groups.is_member(g, u) for u in users]) == 1


async def test_forged_tampered_foreign_and_garbage_invites_are_refused(groups: Groups) -> None:
    g, other = name(), name()
    await groups.join(g, "alice", None)
    await groups.join(other, "mallory", None)
    good = await groups.create_invite(g, 600, single_use=False)
    body, sig = good.split(".")
    foreign = await groups.create_invite(other, 600, single_use=False)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    bad = [
        f"{flipped}.{sig}",  # tampered claims
        f"{body}.{sig[:-2]}xx",  # tampered signature
        f"{body}.",
        body,
        "not-a-token",
        "é.é",  # non-ASCII must be refused, not crash compare_digest
        foreign,  # a valid invite for another group
        foreign.split(".")[0] + "." + sig,
    ]
    for token in bad:
        with pytest.raises(InviteInvalid):
            await groups.join(g, "mallory", token)
    assert not await groups.is_member(g, "mallory")
    assert await groups.join(g, "bob", good) == "joined"


async def test_sync_user_repairs_drift_both_ways(groups: Groups, signalr: SignalRClient) -> None:
    g = name()
    await groups.join(g, "alice", None)
    await groups.join(g, "bob", await groups.create_invite(g, 60, single_use=False))
    # SignalR lost a membership the record has (e.g. a service-side reset).
    await signalr.remove_user_from_group("bob", signalr_group_name(g))
    assert not await in_signalr(signalr, "bob", g)
    # SignalR and the index hold a membership the record does not (a deleted group's
    # leftover): the member row is gone, the group is gone.
    ghost = name()
    await groups.join(ghost, "bob", None)
    await groups._t.delete_entity(f"g|{ghost}", "meta")
    await groups.sync_user("bob")
    assert await in_signalr(signalr, "bob", g)
    assert not await in_signalr(signalr, "bob", ghost)
    assert await groups.groups_of("bob") == [g]


async def test_leave_and_owner_removal_also_leave_signalr(
    groups: Groups, signalr: SignalRClient
) -> None:
    g = name()
    await groups.join(g, "alice", None)
    invite = await groups.create_invite(g, 60, single_use=False)
    for user in ("bob", "carol"):
        await groups.join(g, user, invite)
    await groups.leave(g, "bob")
    await groups.leave(g, "carol")  # the API calls the same for an owner's removal
    for user in ("bob", "carol"):
        assert not await groups.is_member(g, user) and not await in_signalr(signalr, user, g)
        assert await groups.groups_of(user) == []
    assert [m["userId"] for m in await groups.members(g)] == ["alice"]


async def test_deleted_group_is_quarantined_then_a_new_incarnation_shares_nothing(
    groups: Groups, signalr: SignalRClient, clock: Clock
) -> None:
    g = name()
    await groups.join(g, "alice", None)
    invite = await groups.create_invite(g, 3600, single_use=False)
    await groups.join(g, "bob", invite)
    old_job_at = clock.now + 1
    assert await groups.may_read_job(g, "bob", old_job_at)
    assert await groups.may_cancel_job(g, "alice", old_job_at)
    assert not await groups.may_cancel_job(g, "bob", old_job_at)

    clock.now += 5
    await groups.delete_group(g)
    assert await groups.owner_of(g) is None and await groups.members(g) == []
    for user in ("alice", "bob"):
        assert not await in_signalr(signalr, user, g)
    assert not await groups.may_read_job(g, "bob", old_job_at)
    with pytest.raises(GroupRecentlyDeleted) as info:
        await groups.join(g, "eve", None)
    assert 0 < info.value.retry_after <= QUARANTINE_S

    clock.now += QUARANTINE_S
    assert await groups.join(g, "eve", None) == "created"
    assert await groups.owner_of(g) == "eve"
    assert not await groups.may_read_job(g, "eve", old_job_at)  # the old group's job
    assert not await groups.may_cancel_job(g, "eve", old_job_at)
    with pytest.raises(InviteInvalid, match="withdrawn"):
        await groups.join(g, "bob", invite)
    assert not await groups.is_member(g, "bob")


async def test_owner_gets_back_in_after_a_creation_cut_short(groups: Groups) -> None:
    g = name()
    await groups.join(g, "alice", None)
    await groups._t.delete_entity(f"g|{g}", "m|alice")  # crash before the member row
    assert not await groups.is_member(g, "alice")
    assert await groups.join(g, "alice", None) == "joined"
    assert await groups.is_member(g, "alice")


async def test_connection_claim_needs_the_nonce_sent_to_that_connection(
    groups: Groups, signalr: SignalRClient, clock: Clock
) -> None:
    tab = await Listener.open(signalr, "alice")
    try:
        cid = tab.connection_id
        assert await groups.start_claim(cid, "alice") == "nonce_sent"
        message = await tab.next()
        assert message["target"] == "claim"
        nonce = message["arguments"][0]["nonce"]
        assert await groups.finish_claim(cid, "mallory", nonce) is False  # not her claim
        assert await groups.finish_claim(cid, "alice", nonce + "x") is False
        assert await groups.connection_owner(cid) is None
        # Mallory starting her own claim neither voids Alice's nor gives her the nonce.
        assert await groups.start_claim(cid, "mallory") == "nonce_sent"
        mallorys = (await tab.next())["arguments"][0]["nonce"]
        assert mallorys != nonce
        assert await groups.finish_claim(cid, "alice", nonce) is True
        assert await groups.connection_owner(cid) == "alice"
        assert await groups.finish_claim(cid, "alice", nonce) is True  # idempotent
        # Once bound, nobody else can claim it, even with a nonce that reached the tab.
        assert await groups.finish_claim(cid, "mallory", mallorys) is False
        with pytest.raises(Forbidden):
            await groups.start_claim(cid, "mallory")
        assert await groups.start_claim(cid, "alice") == "bound"
        assert await groups.connection_owner(cid) == "alice"
    finally:
        await tab.close()


async def test_claim_nonce_expires(groups: Groups, signalr: SignalRClient, clock: Clock) -> None:
    tab = await Listener.open(signalr, "alice")
    try:
        await groups.start_claim(tab.connection_id, "alice")
        nonce = (await tab.next())["arguments"][0]["nonce"]
        clock.now += CLAIM_TTL_S
        assert await groups.finish_claim(tab.connection_id, "alice", nonce) is False
        assert await groups.connection_owner(tab.connection_id) is None
    finally:
        await tab.close()
