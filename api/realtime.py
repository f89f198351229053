"""SignalR negotiate: a short-lived client token for the caller's own user."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from relay.identity import Caller
from relay.services import Services

from ._http import endpoint, json_response

__all__ = ["bp"]

bp = df.Blueprint()


@bp.route(route="api/negotiate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def negotiate(req: func.HttpRequest, caller: Caller, services: Services) -> func.HttpResponse:
    # Re-apply the caller's group memberships on every (re)connect, so the app's record
    # and SignalR's user-group membership cannot drift apart.
    await services.sync_memberships(caller.user_id)
    info = await services.signalr.negotiate(caller.user_id, services.settings.client_token_minutes)
    return json_response(info)
