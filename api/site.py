"""Health, the OpenAPI document and the web page's files, served by the app itself so the
page and the API share one origin and one sign-in in Azure."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

from relay.identity import Caller
from relay.services import Services

from ._http import error, json_response, public_endpoint
from .openapi import OPENAPI

__all__ = ["WEB_ROOT", "bp"]

bp = df.Blueprint()
_ANON = func.AuthLevel.ANONYMOUS
WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
_CHECK_TIMEOUT_S = 3.0
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The API's routes, from the OpenAPI document (a test keeps it equal to the registered
# routes): a known path with another method answers 405 with Allow, anything else 404.


def _api_pattern(template: str) -> re.Pattern[str]:
    parts = [("[^/]+" if seg.startswith("{") else re.escape(seg)) for seg in template.split("/")]
    return re.compile("/".join(parts).strip("/") + r"\Z")


_API_PATHS = [
    (_api_pattern(path), sorted(m.upper() for m in ops if m.upper() in _METHODS))
    for path, ops in OPENAPI["paths"].items()
]
_OPENAPI_JSON = json.dumps(OPENAPI)  # a constant document: serialized once
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".html": "text/html", ".svg": "image/svg+xml", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon", ".map": "application/json"}  # fmt: skip


async def _check(name: str, probe: asyncio.Future[bool] | object) -> tuple[str, dict[str, object]]:
    try:
        ok = await asyncio.wait_for(probe, _CHECK_TIMEOUT_S)  # type: ignore[arg-type]
        return name, {"ok": bool(ok)}
    except Exception as exc:  # a readiness probe reports, it never raises
        return name, {"ok": False, "reason": type(exc).__name__}


@bp.route(route="api/health", methods=["GET"], auth_level=_ANON)
@public_endpoint
async def health(req: func.HttpRequest, caller: Caller, services: Services) -> func.HttpResponse:
    if req.params.get("ready") in (None, "", "0", "false"):
        return json_response({"status": "ok"})
    results = dict(await asyncio.gather(
        _check("storage", services.store.ping()),
        _check("signalr", services.signalr.health()),
        _check("llm", services.llm.ping()),
    ))  # fmt: skip
    ready = all(r["ok"] for r in results.values())
    return json_response({"status": "ok" if ready else "degraded", "checks": results},
                         200 if ready else 503)  # fmt: skip


@bp.route(route="api/openapi.json", methods=["GET"], auth_level=_ANON)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_OPENAPI_JSON, mimetype="application/json")


def _no_route(method: str, rel: str) -> func.HttpResponse:
    """JSON for a request no function serves: 405 with Allow on a known path, else 404."""
    allowed = next((methods for rx, methods in _API_PATHS if rx.match(rel)), None)
    if allowed:
        return error(405, "method_not_allowed", f"{method} is not allowed here",
                     headers={"Allow": ", ".join(allowed)})  # fmt: skip
    return error(404, "not_found", "no such endpoint")


def _page(rel: str) -> Path | None:
    """The file under WEB_ROOT that `rel` names, or None; symlinks out of it are refused."""
    if "\x00" in rel or "\\" in rel:
        return None
    try:
        target = (WEB_ROOT / rel).resolve()
        if WEB_ROOT not in target.parents or not target.is_file():
            return None
    except (OSError, RuntimeError, ValueError):  # too long a name, a link loop, a NUL byte
        return None
    return target


@bp.route(route="{*path}", methods=["GET", "HEAD"], auth_level=_ANON)
async def web(req: func.HttpRequest) -> func.HttpResponse:
    rel = (req.route_params.get("path") or "").strip("/")
    if rel == "api" or rel.startswith("api/"):
        return _no_route(req.method.upper(), rel)
    if rel == "":
        rel = "index.html"
    target = _page(rel)
    if target is None:
        return error(404, "not_found", "no such page")
    ctype = (
        _TYPES.get(target.suffix)
        or mimetypes.guess_type(target.name)[0]
        or "application/octet-stream"
    )
    cache = "no-cache" if target.suffix == ".html" else "public, max-age=300"
    return func.HttpResponse(target.read_bytes(), status_code=200,
                             headers={"Content-Type": ctype, "Cache-Control": cache,
                                      "X-Content-Type-Options": "nosniff"})  # fmt: skip


@bp.route(route="{*path}", methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
          auth_level=_ANON)  # fmt: skip
async def no_route(req: func.HttpRequest) -> func.HttpResponse:
    """Every other method on a path no function serves (the host alone would answer an empty
    404): a JSON error, like the rest of the API."""
    return _no_route(req.method.upper(), (req.route_params.get("path") or "").strip("/"))
