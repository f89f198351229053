"""The emulator's ASGI app: routes, error mapping and the local-only stats endpoints.

Request order follows the service: route and api-version first (404/400), then the
key or token (401), then the deployment (404 DeploymentNotFound), then the body (400),
then any fault the request asked for, then the planned answer.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._checks import (
    EmulatorState,
    authorize,
    check_api_version,
    fault_active,
    find_profile,
    immediate_fault,
    is_loopback,
    json_body,
)
from ._control import ControlError, parse_control
from ._plan import make_plan
from ._profiles import check_options
from ._stream import ASGIApp, answer_response, stream_response
from ._timeline import stream_key
from ._validate import validate
from ._wire import WireError, azure_error, invalid_request, new_completion_id

__all__ = ["build_app"]


class _Raw(Response):
    """Hands the connection to a raw ASGI callable (the paced stream writers)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _headers(tokens: int) -> dict[str, str]:
    rid = str(uuid.uuid4())
    return {
        "apim-request-id": rid,
        "x-request-id": rid,
        "x-ms-region": "Local Emulator",
        "x-ratelimit-remaining-requests": "999",
        "x-ratelimit-remaining-tokens": str(max(0, 1_000_000 - tokens)),
    }


async def _chat(request: Request, v1: bool) -> Response:
    state: EmulatorState = request.app.state.emulator
    check_api_version(request, state, v1)
    authorize(request, state)
    deployment = None if v1 else request.path_params["deployment"]
    if deployment is not None:
        find_profile(state, deployment)
    body = await json_body(request)
    if v1:
        if not isinstance(body, dict) or "model" not in body:
            raise invalid_request("Missing required parameter: 'model'.", param="model",
                                  code="missing_required_parameter")  # fmt: skip
        deployment = body["model"]
    profile = find_profile(state, deployment)
    validate(body)
    check_options(profile, body)
    try:
        request.state.control = parse_control(body["messages"], request.headers)
    except ControlError as exc:
        raise invalid_request(f"Invalid emulator control: {exc}", param="messages",
                              code="invalid_emulator_control") from None  # fmt: skip
    active = fault_active(state, str(deployment), body, request)
    if active:
        immediate_fault(state, request, request.query_params.get("api-version", "v1"))
    plan = make_plan(body, profile, state.pacing, request.state.control, active)
    meta = {"created": int(time.time()), "id": new_completion_id(), "model": profile.model,
            "system_fingerprint": profile.system_fingerprint}  # fmt: skip
    headers = _headers(plan.usage["total_tokens"])
    state.stats.completions += 1
    if body.get("stream"):
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        marks = (
            None if state.timeline is None else state.timeline.open(stream_key(body["messages"]))
        )
        return _Raw(
            stream_response(plan, meta, include, headers, state.stats, state.stopping, marks)
        )
    return _Raw(answer_response(plan, meta, headers, state.stats, state.stopping))


async def chat_dated(request: Request) -> Response:
    return await _chat(request, v1=False)


async def chat_v1(request: Request) -> Response:
    return await _chat(request, v1=True)


def _model_entry(name: str, model: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system",
            "model": model, "status": "succeeded"}  # fmt: skip


async def list_models(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    check_api_version(request, state, v1=True)
    authorize(request, state)
    data = [_model_entry(name, p.model) for name, p in state.deployments.items()]
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    check_api_version(request, state, v1=True)
    authorize(request, state)
    name = request.path_params["model"]
    return JSONResponse(_model_entry(name, find_profile(state, name).model))


async def get_deployment(request: Request) -> Response:
    """The dated data plane's `GET /openai/deployments/{d}` (kept as a readiness probe)."""
    state: EmulatorState = request.app.state.emulator
    check_api_version(request, state, v1=False)
    authorize(request, state)
    name = request.path_params["deployment"]
    profile = find_profile(state, name)
    return JSONResponse({"id": name, "model": profile.model, "owner": "organization-owner",
                         "object": "deployment", "status": "succeeded",
                         "scale_settings": {"scale_type": "standard"},
                         "created_at": 1_700_000_000, "updated_at": 1_700_000_000})  # fmt: skip


async def stats(request: Request) -> Response:
    if not is_loopback(request):
        return JSONResponse({"error": {"code": "403", "message": "local only"}}, 403)
    state: EmulatorState = request.app.state.emulator
    if request.method == "POST":  # /_emulator/reset
        state.stats.reset()
        state.fault_counts.clear()
    return JSONResponse(state.stats.snapshot())


async def timeline(request: Request) -> Response:
    """Drain the delta timeline (404 unless the emulator was started with it on)."""
    if not is_loopback(request):
        return JSONResponse({"error": {"code": "403", "message": "local only"}}, 403)
    state: EmulatorState = request.app.state.emulator
    if state.timeline is None:
        return JSONResponse({"error": {"code": "404", "message": "timeline is off"}}, 404)
    return JSONResponse({"streams": state.timeline.drain()})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class _Counted:
    """Counts API requests (everything but /_emulator/) before routing them."""

    def __init__(self, app: Starlette, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_emulator/"):
            self.state.stats.requests += 1
        await self.app(scope, receive, send)


def build_app(state: EmulatorState) -> Any:
    """The ASGI app serving `state`."""

    async def wire_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WireError)
        state.stats.errors[exc.status] += 1
        return JSONResponse(exc.body, exc.status, headers=exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        return await wire_error(request, azure_error(404, "404", "Resource not found"))

    routes = [
        Route("/openai/deployments/{deployment}/chat/completions", chat_dated, methods=["POST"]),
        Route("/openai/v1/chat/completions", chat_v1, methods=["POST"]),
        Route("/openai/v1/models", list_models, methods=["GET"]),
        Route("/openai/v1/models/{model}", get_model, methods=["GET"]),
        Route("/openai/deployments/{deployment}", get_deployment, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", stats, methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/timeline", timeline, methods=["POST"]),
    ]

    async def gone(request: Request, exc: Exception) -> Response:
        return Response(status_code=499)  # the client left mid-request: nobody to answer

    handlers = {WireError: wire_error, ClientDisconnect: gone, 404: not_found, 405: not_found}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.emulator = state
    return _Counted(app, state)
