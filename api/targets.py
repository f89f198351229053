"""Who may send a job where: the owner's user always; a group or a connection only when
the caller has proved membership or ownership (see relay.services)."""

from __future__ import annotations

from relay.identity import Caller
from relay.jobs import Target
from relay.services import Services

from ._http import ApiError

__all__ = ["authorize_target"]


async def authorize_target(services: Services, caller: Caller, target: Target) -> None:
    if target.kind == "user":
        if target.id != caller.user_id:
            raise ApiError(403, "forbidden", "jobs go to your own user", field="target")
        return
    if target.kind == "group":
        if not await services.is_group_member(target.id, caller.user_id):
            raise ApiError(403, "not_a_member", "you are not a member of this group",
                           field="groupName")  # fmt: skip
        return
    if not await services.connection_is_bound(target.id, caller.user_id):
        raise ApiError(403, "connection_not_claimed",
                       "claim this connection first (POST /api/connections/{id}/claim)",
                       field="connectionId")  # fmt: skip
