"""Groups and connection claims over HTTP (see relay.groups for the model).

A group's details are visible to its members only; to anyone else it answers 404,
like a group that does not exist. Members who are not the owner get 403 for the
owner's operations (they know the group exists). The owner cannot leave (409): they
delete the group instead, which removes every member from the record and from SignalR.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from relay.errors import Forbidden, GroupRecentlyDeleted, InviteInvalid
from relay.identity import Caller, valid_user_id
from relay.invites import TTL_DEFAULT_S, TTL_MAX_S, TTL_MIN_S
from relay.jobs import validate_connection_id, validate_group_name
from relay.services import Services

from ._http import ApiError, endpoint, json_response, read_json

__all__ = ["bp"]

bp = df.Blueprint()
_ANON = func.AuthLevel.ANONYMOUS


def _group(req: func.HttpRequest) -> str:
    return validate_group_name(req.route_params.get("group", ""), field="group")


def _optional_json(req: func.HttpRequest, fields: frozenset[str]) -> dict[str, object]:
    """The body as an object holding only `fields`; an empty body is an empty object."""
    if not (req.get_body() or b"").strip():
        return {}
    body = read_json(req)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "expected a JSON object", field="body")
    unknown = set(body) - fields
    if unknown:
        raise ApiError(400, "invalid_request", "unknown field", field=sorted(unknown)[0])
    return body


def _member(req: func.HttpRequest) -> str:
    """The `{userId}` route value: "me" (the caller) or a well-formed user id, else 400."""
    who = req.route_params.get("userId", "")
    if who != "me" and not valid_user_id(who):
        raise ApiError(400, "invalid_request", "not a user id", field="userId")
    return who


async def _require_member(services: Services, group: str, user: str) -> None:
    if not await services.groups.is_member(group, user):
        raise ApiError(404, "not_found", "no such group")


async def _require_owner(services: Services, group: str, user: str) -> None:
    owner = await services.groups.owner_of(group)
    if owner is None or not await services.groups.is_member(group, user):
        raise ApiError(404, "not_found", "no such group")
    if owner != user:
        raise ApiError(403, "not_owner", "only the group's owner can do this")


@bp.route(route="api/groups", methods=["GET"], auth_level=_ANON)
@endpoint
async def list_groups(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    return json_response({"groups": await services.groups.memberships(caller.user_id)})


@bp.route(route="api/groups/{group}", methods=["GET"], auth_level=_ANON)
@endpoint
async def get_group(req: func.HttpRequest, caller: Caller, services: Services) -> func.HttpResponse:
    group = _group(req)
    await _require_member(services, group, caller.user_id)
    return json_response({
        "group": group,
        "owner": await services.groups.owner_of(group),
        "members": await services.groups.members(group),
    })  # fmt: skip


@bp.route(route="api/groups/{group}", methods=["DELETE"], auth_level=_ANON)
@endpoint
async def delete_group(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    group = _group(req)
    await _require_owner(services, group, caller.user_id)
    await services.groups.delete_group(group)
    return json_response({"group": group, "deleted": True})


@bp.route(route="api/groups/{group}/invites", methods=["POST"], auth_level=_ANON)
@endpoint
async def create_invite(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    group = _group(req)
    body = _optional_json(req, frozenset({"ttlSeconds", "singleUse"}))
    ttl = body.get("ttlSeconds", TTL_DEFAULT_S)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not TTL_MIN_S <= ttl <= TTL_MAX_S:
        raise ApiError(400, "invalid_request", f"an integer from {TTL_MIN_S} to {TTL_MAX_S}",
                       field="ttlSeconds")  # fmt: skip
    single = body.get("singleUse", False)
    if not isinstance(single, bool):
        raise ApiError(400, "invalid_request", "true or false", field="singleUse")
    await _require_owner(services, group, caller.user_id)
    token = await services.groups.create_invite(group, ttl, single)
    return json_response({"invite": token, "group": group, "expiresInSeconds": ttl,
                          "singleUse": single}, 201)  # fmt: skip


@bp.route(route="api/groups/{group}/members/{userId}", methods=["PUT"], auth_level=_ANON)
@endpoint
async def join_group(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    group = _group(req)
    if _member(req) != "me":
        raise ApiError(403, "forbidden", "you can only add yourself (members/me)")
    body = _optional_json(req, frozenset({"invite"}))
    invite = body.get("invite")
    if invite is not None and (not isinstance(invite, str) or not 0 < len(invite) <= 1024):
        raise ApiError(400, "invalid_request", "an invite token string", field="invite")
    try:
        outcome = await services.groups.join(group, caller.user_id, invite)
    except Forbidden as exc:
        raise ApiError(403, "invite_required", exc.message) from exc
    except InviteInvalid as exc:
        raise ApiError(403, "invalid_invite", exc.message, field="invite") from exc
    except GroupRecentlyDeleted as exc:
        retry = str(max(1, round(exc.retry_after or 1)))
        raise ApiError(409, exc.code, exc.message, headers={"Retry-After": retry}) from exc
    status = 201 if outcome == "created" else 200
    return json_response({"group": group, "userId": caller.user_id, "result": outcome}, status)


@bp.route(route="api/groups/{group}/members/{userId}", methods=["DELETE"], auth_level=_ANON)
@endpoint
async def remove_member(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    group = _group(req)
    who = _member(req)
    if who == "me":  # leaving: any member may ask
        await _require_member(services, group, caller.user_id)
        who = caller.user_id
        owner = await services.groups.owner_of(group)
    else:  # removing a member: only the owner may ask
        await _require_owner(services, group, caller.user_id)
        owner = caller.user_id
        if who != owner and not await services.groups.is_member(group, who):
            raise ApiError(404, "not_found", "no such member")
    if who == owner:
        raise ApiError(409, "owner_cannot_leave", "delete the group instead")
    await services.groups.leave(group, who)
    return json_response({"group": group, "userId": who, "removed": True})


@bp.route(route="api/connections/{connectionId}/claim", methods=["POST"], auth_level=_ANON)
@endpoint
async def claim_connection(
    req: func.HttpRequest, caller: Caller, services: Services
) -> func.HttpResponse:
    cid = validate_connection_id(req.route_params.get("connectionId", ""), field="connectionId")
    body = _optional_json(req, frozenset({"nonce"}))
    nonce = body.get("nonce")
    if nonce is None:
        if not await services.signalr.connection_exists(cid):
            raise ApiError(404, "not_found", "no such connection")
        try:
            outcome = await services.groups.start_claim(cid, caller.user_id)
        except Forbidden as exc:
            raise ApiError(403, "claim_failed", exc.message) from exc
        return json_response({"connectionId": cid, "status": outcome},
                             200 if outcome == "bound" else 202)  # fmt: skip
    if not isinstance(nonce, str) or not 0 < len(nonce) <= 200:
        raise ApiError(400, "invalid_request", "the nonce string you received", field="nonce")
    if not await services.groups.finish_claim(cid, caller.user_id, nonce):
        raise ApiError(403, "claim_failed", "wrong, expired or someone else's nonce")
    return json_response({"connectionId": cid, "status": "bound"})
