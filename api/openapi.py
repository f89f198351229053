"""The OpenAPI 3 document of the HTTP API (GET /api/openapi.json), built here from the
schemas of api/_schemas.py. api/site.py takes the API's routes from it (405 vs 404), a test
checks every registered route against it, and the contract tests validate real answers
against it."""

from __future__ import annotations

from typing import Any

from ._schemas import EVENTS_AFTER, EVENTS_ATTEMPT, EVENTS_LIMIT, JOBS_LIMIT, SCHEMAS, ref

__all__ = ["OPENAPI"]

Doc = dict[str, Any]


def _header(description: str, schema: Doc) -> Doc:
    return {"description": description, "required": True, "schema": schema}


_RETRY_AFTER = _header("Seconds to wait before trying again", {"type": "integer", "minimum": 1})


def _err(description: str, headers: Doc | None = None) -> Doc:
    out: Doc = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if headers:
        out["headers"] = headers
    return out


def _ok(description: str, schema: str, headers: Doc | None = None) -> Doc:
    out: Doc = {
        "description": description,
        "content": {"application/json": {"schema": ref(schema)}},
    }
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: str, **described: str) -> Doc:
    """Error answers: 401 and 503 on every signed-in operation, then the given statuses with
    their standard descriptions, then `s404="..."`-style ones described here."""
    standard = {
        "400": "Invalid input (`field` names it)",
        "413": "Body too large",
        "415": "The body is not application/json",
    }
    out = {"401": _err("Not signed in")}
    out.update({s: _err(standard[s]) for s in statuses})
    out.update({k[1:]: _err(v) for k, v in described.items()})
    out["503"] = _err("Not configured, or a backing service is unavailable; try again")
    return out


def _path(name: str, schema: Doc, description: str | None = None) -> Doc:
    out: Doc = {"name": name, "in": "path", "required": True, "schema": schema}
    if description:
        out["description"] = description
    return out


def _query(name: str, schema: Doc, description: str) -> Doc:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _body(schema: str, required: bool) -> Doc:
    content = {"application/json": {"schema": ref(schema)}}
    return {"required": required, "content": content}


_JOB_ID = _path("jobId", {"type": "string", "pattern": "^[0-9a-f]{32}$"})
_GROUP = _path("group", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"})
_USER = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"}
_NO_SUCH_JOB = "No such job (or not yours)"
_NO_GROUP = "No such group (or you are not a member)"
_SIGNALR_TEXT = (
    "Answers stream over SignalR (hub `stream` by default): connect with "
    "`@microsoft/signalr` and `withUrl(base + '/api')` (POST /api/negotiate). The messages "
    "(`delta`, `status`, `claim`) are described under `components.schemas` as SignalR* with "
    "an `x-signalr` note. Any other method on a documented path answers 405 with `Allow` "
    "(`components.responses.MethodNotAllowed`); an unknown path under /api answers 404."
)

_JOBS: Doc = {
    "/api/jobs": {
        "post": {
            "operationId": "createJob",
            "summary": "Submit a prompt",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": (
                        "the same key from the same user with the same request (the parsed "
                        "body and target) returns the same job; with a different request "
                        "it is refused with 422 `idempotency_key_reused`"
                    ),
                    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
                }
            ],
            "requestBody": _body("JobRequest", True),
            "responses": {
                "202": _ok(
                    "Accepted: recorded and queued",
                    "Accepted",
                    {"Location": _header("The job's status URL", {"type": "string"})},
                ),
                **_errors("400", "413", "415", s403="Target not allowed"),
                "422": _err(
                    "`idempotency_key_reused`: the Idempotency-Key was used before with a "
                    "different request; nothing was created"
                ),
                "429": _err("Over a per-user or global limit", {"Retry-After": _RETRY_AFTER}),
            },
        },
        "get": {
            "operationId": "listJobs",
            "summary": "The caller's recent jobs, newest first",
            "parameters": [
                _query(
                    "limit",
                    JOBS_LIMIT.schema(),
                    "page size",
                ),
                _query(
                    "cursor",
                    {"type": "string", "pattern": "^[0-9A-Za-z_|.-]{1,200}$"},
                    "`next` of the previous page",
                ),
            ],
            "responses": {"200": _ok("A page of jobs", "JobList"), **_errors("400")},
        },
    },
    "/api/jobs/{jobId}": {
        "get": {
            "operationId": "getJob",
            "summary": "A job's status, text so far, usage and metrics",
            "parameters": [_JOB_ID],
            "responses": {"200": _ok("The job", "Job"), **_errors(s404=_NO_SUCH_JOB)},
        },
        "delete": {
            "operationId": "cancelJob",
            "summary": "Cancel a queued or running job",
            "parameters": [_JOB_ID],
            "responses": {
                "202": _ok("Cancel requested (or done, if it was queued)", "CancelAccepted"),
                **_errors(
                    s403="Visible to the caller (a group member) but not theirs to cancel",
                    s404=_NO_SUCH_JOB,
                    s409="The job has already ended (job_finished)",
                ),
            },
        },
    },
    "/api/jobs/{jobId}/events": {
        "get": {
            "operationId": "jobEvents",
            "summary": "The recorded batches of an attempt after a seq, in order",
            "parameters": [
                _JOB_ID,
                _query(
                    "after",
                    EVENTS_AFTER.schema(),
                    "return batches with a higher seq",
                ),
                _query(
                    "attempt",
                    EVENTS_ATTEMPT.schema(),
                    "default: the current attempt",
                ),
                _query(
                    "limit",
                    EVENTS_LIMIT.schema(),
                    "page size",
                ),
            ],
            "responses": {
                "200": _ok("Batches after seq", "Events"),
                **_errors("400", s404=_NO_SUCH_JOB),
            },
        },
    },
    "/api/jobs/{jobId}/data": {
        "delete": {
            "operationId": "eraseJob",
            "summary": "Erase a finished job's prompt, text and transcript (owner only)",
            "parameters": [_JOB_ID],
            "responses": {
                "200": _ok("Erased", "Erased"),
                **_errors(
                    s403="Visible to the caller (a group member) but not theirs to erase",
                    s404=_NO_SUCH_JOB,
                    s409="Still running (job_running)",
                ),
            },
        },
    },
}

_GROUPS: Doc = {
    "/api/negotiate": {
        "post": {
            "operationId": "negotiate",
            "summary": "A short-lived SignalR access token for the caller's own user",
            "responses": {"200": _ok("SignalR url and access token", "Negotiate"), **_errors()},
        },
    },
    "/api/groups": {
        "get": {
            "operationId": "listGroups",
            "summary": "The caller's groups",
            "responses": {"200": _ok("Groups", "Groups"), **_errors()},
        },
    },
    "/api/groups/{group}": {
        "get": {
            "operationId": "getGroup",
            "parameters": [_GROUP],
            "responses": {"200": _ok("Members", "Group"), **_errors("400", s404=_NO_GROUP)},
        },
        "delete": {
            "operationId": "deleteGroup",
            "parameters": [_GROUP],
            "responses": {
                "200": _ok("Deleted", "GroupDeleted"),
                **_errors("400", s403="Not the owner", s404=_NO_GROUP),
            },
        },
    },
    "/api/groups/{group}/invites": {
        "post": {
            "operationId": "createInvite",
            "summary": "A signed, expiring invite (owner only); the body may be empty",
            "parameters": [_GROUP],
            "requestBody": _body("InviteRequest", False),
            "responses": {
                "201": _ok("Invite token", "Invite"),
                **_errors("400", "413", "415", s403="Not the owner", s404=_NO_GROUP),
            },
        },
    },
    "/api/groups/{group}/members/{userId}": {
        "put": {
            "operationId": "joinGroup",
            "summary": "Join with an invite, or create the group (you become its owner)",
            "parameters": [
                _GROUP,
                _path(
                    "userId",
                    {"type": "string", "enum": ["me"]},
                    "only yourself: any other value answers 403",
                ),
            ],
            "requestBody": _body("JoinRequest", False),
            "responses": {
                "200": _ok("Joined", "Joined"),
                "201": _ok("Created, with you as its owner", "Joined"),
                **_errors("400", "413", "415", s403="Invite required or invalid"),
                "409": _err(
                    "The name belongs to a group deleted moments ago", {"Retry-After": _RETRY_AFTER}
                ),
            },
        },
        "delete": {
            "operationId": "removeMember",
            "summary": "Leave (me), or remove a member (owner only)",
            "parameters": [_GROUP, _path("userId", _USER, "`me`, or a member's user id")],
            "responses": {
                "200": _ok("Removed", "Removed"),
                **_errors(
                    "400",
                    s403="Not the owner",
                    s404="No such group or member",
                    s409="The owner cannot leave: delete the group instead",
                ),
            },
        },
    },
    "/api/connections/{connectionId}/claim": {
        "post": {
            "operationId": "claimConnection",
            "summary": "Prove a SignalR connection is yours: no nonce sends one (a `claim` "
            "message to the connection); echo it back to bind",
            "parameters": [
                _path("connectionId", {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"})
            ],
            "requestBody": _body("ClaimRequest", False),
            "responses": {
                "200": _ok("Bound (also when it already was yours)", "Claim"),
                "202": _ok("Nonce sent to the connection", "Claim"),
                **_errors(
                    "400",
                    "413",
                    "415",
                    s403="Wrong nonce, or someone else's connection",
                    s404="No such connection",
                ),
            },
        },
    },
}

_PUBLIC: Doc = {
    "/api/health": {
        "get": {
            "operationId": "health",
            "security": [],
            "parameters": [_query("ready", {"type": "string"},
                                  "1: also check storage, SignalR and the model endpoint")],
            "responses": {
                "200": _ok("Alive (and ready, with ready=1)", "Health"),
                "503": _ok("Not ready: see checks", "Health"),
            },
        },
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "security": [],
            "responses": {"200": {"description": "This document", "content": {
                "application/json": {"schema": {"type": "object", "required": ["openapi"]}}}}},
        },
    },
}  # fmt: skip

OPENAPI: Doc = {
    "openapi": "3.0.3",
    "info": {
        "title": "LLM stream relay",
        "version": "1.0.0",
        "description": "Submit prompts, follow their answers live over SignalR. " + _SIGNALR_TEXT,
    },
    "components": {
        "securitySchemes": {
            "principal": {
                "type": "apiKey",
                "in": "header",
                "name": "x-ms-client-principal-id",
                "description": "set by App Service Authentication in Azure",
            },
        },
        "schemas": SCHEMAS,
        "responses": {
            "MethodNotAllowed": _err(
                "Another method on a documented path",
                {"Allow": _header("The path's methods", {"type": "string"})},
            ),
        },
    },
    "security": [{"principal": []}],
    "paths": {**_JOBS, **_GROUPS, **_PUBLIC},
}
