"""The OpenAPI document's `components.schemas`: request bodies, response bodies, the error
shape and the SignalR messages (part of the contract, though not HTTP). api/openapi.py builds
the paths from these; nothing else spells the shapes out.

Request schemas say `additionalProperties: false` where the API refuses unknown fields (400
"unknown field"). Response schemas leave it out, so a client tolerates fields added later;
the contract tests validate real answers with it switched on, so nothing goes undocumented.
Limits that are settings carry the shipped default and the setting's name (`x-setting`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from relay._manifest import by_name
from relay.invites import TTL_DEFAULT_S, TTL_MAX_S, TTL_MIN_S

__all__ = [
    "EVENTS_AFTER",
    "EVENTS_ATTEMPT",
    "EVENTS_LIMIT",
    "INVITE_TTL_DEFAULT_S",
    "INVITE_TTL_MAX_S",
    "INVITE_TTL_MIN_S",
    "JOBS_LIMIT",
    "SCHEMAS",
    "IntParam",
    "ref",
]

Schema = dict[str, Any]

INVITE_TTL_DEFAULT_S, INVITE_TTL_MAX_S, INVITE_TTL_MIN_S = TTL_DEFAULT_S, TTL_MAX_S, TTL_MIN_S


class IntParam(NamedTuple):
    """An integer query parameter's bounds: the handler parses with them and the document
    states them, so the two cannot drift. `default` None: the handler supplies one."""

    default: int | None
    lo: int
    hi: int

    def schema(self) -> Schema:
        out: Schema = {"type": "integer", "minimum": self.lo, "maximum": self.hi}
        if self.default is not None:
            out["default"] = self.default
        return out


JOBS_LIMIT = IntParam(20, 1, 100)
EVENTS_AFTER = IntParam(0, 0, 10**9)
EVENTS_ATTEMPT = IntParam(None, 0, 10**6)  # default: the job's current attempt
EVENTS_LIMIT = IntParam(500, 1, 1000)

_SETTINGS = by_name()
_STATUSES = ["queued", "starting", "running", "completed", "failed", "canceled"]
_JOB_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_TIME = {"type": "string", "format": "date-time", "nullable": True}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: Schema, required: list[str] | None = None, *, closed: bool = False,
         description: str | None = None) -> Schema:  # fmt: skip
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    if closed:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def _setting_max(key: str, name: str) -> Schema:
    """`{key: default}` for a limit that is a setting, with the setting's name."""
    return {key: int(_SETTINGS[name].default or 0), "x-setting": name}


def _int(minimum: int = 0, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, **extra}


_STR = {"type": "string"}
_JOB_ERROR = _obj({"code": _STR, "message": _STR}, ["code", "message"])
_USAGE = _obj(
    {"promptTokens": _int(), "completionTokens": _int(), "totalTokens": _int()},
    ["promptTokens", "completionTokens", "totalTokens"],
)
_TARGET = _obj(
    {"kind": {"type": "string", "enum": ["user", "group", "connection"]}, "id": _STR},
    ["kind", "id"],
)
_METRICS = _obj(
    {
        "ttftMs": {"type": "number", "nullable": True, "description": "time to first token"},
        "durationMs": {"type": "number", "nullable": True},
        "deltas": _int(description="model deltas received"),
        "messages": _int(description="delta messages SignalR accepted"),
    },
    ["ttftMs", "durationMs", "deltas", "messages"],
)
_JOB_FIELDS: Schema = {
    "jobId": _JOB_ID,
    "status": {"type": "string", "enum": _STATUSES},
    "createdAt": {"type": "string", "format": "date-time"},
    "startedAt": _TIME,
    "completedAt": _TIME,
    "target": _TARGET,
    "attempt": _int(description="the current attempt; 0 until the job first runs"),
    "lastSeq": _int(description="the last recorded batch of the current attempt"),
    "usage": {**_USAGE, "nullable": True},
    "metrics": _METRICS,
    "delivery": {"type": "string", "enum": ["ok", "degraded"]},
    "error": {**_JOB_ERROR, "nullable": True},
    "cancelRequested": {"type": "boolean"},
    "erased": {"type": "boolean"},
}
_JOB_REQUIRED = list(_JOB_FIELDS)
_NULLABLE_STR = {"type": "string", "nullable": True}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {
                        "type": "string",
                        "description": (
                            "machine-readable, e.g. invalid_request, not_found, rate_limited, "
                            "idempotency_key_reused"
                        ),
                    },
                    "message": _STR,
                    "field": {"type": "string", "description": "the offending input, if one"},
                },
                ["code", "message"],
            )
        },
        ["error"],
    ),
    # --- requests ---------------------------------------------------------------------------
    "ChatMessage": _obj(
        {
            "role": {"type": "string", "enum": ["system", "user", "assistant"]},
            "content": {
                "type": "string",
                "minLength": 1,
                **_setting_max("maxLength", "PROMPT_MAX_CHARS"),
                "description": "system turns: at most SYSTEM_MAX_CHARS",
            },
        },
        ["role", "content"],
        closed=True,
    ),
    "JobRequest": _obj(
        {
            "prompt": {
                **_NULLABLE_STR,
                "minLength": 1,
                **_setting_max("maxLength", "PROMPT_MAX_CHARS"),
            },
            "messages": {
                "type": "array",
                "nullable": True,
                "minItems": 1,
                **_setting_max("maxItems", "MESSAGES_MAX"),
                "items": ref("ChatMessage"),
                "description": "instead of prompt; the last turn is the user's",
            },
            "system": {**_NULLABLE_STR, **_setting_max("maxLength", "SYSTEM_MAX_CHARS")},
            "maxTokens": {
                "type": "integer",
                "nullable": True,
                "minimum": 1,
                **_setting_max("maximum", "MAX_TOKENS_LIMIT"),
            },
            "temperature": {"type": "number", "nullable": True, "minimum": 0, "maximum": 2},
            "groupName": {
                **_NULLABLE_STR,
                "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                "description": "send to this group (you must be a member)",
            },
            "connectionId": {
                **_NULLABLE_STR,
                "pattern": "^[A-Za-z0-9_-]{1,128}$",
                "description": "send to this connection (claim it first)",
            },
        },
        closed=True,
        description="Give prompt or messages, not both; null means absent. Without groupName "
        "or connectionId the answer goes to your own user.",
    ),
    "InviteRequest": _obj(
        {
            "ttlSeconds": _int(
                INVITE_TTL_MIN_S, maximum=INVITE_TTL_MAX_S, default=INVITE_TTL_DEFAULT_S
            ),
            "singleUse": {"type": "boolean", "default": False},
        },
        closed=True,
    ),
    "JoinRequest": _obj(
        {
            "invite": {
                **_NULLABLE_STR,
                "minLength": 1,
                "maxLength": 1024,
                "description": "the owner's invite; none needed to create a new group",
            }
        },
        closed=True,
    ),
    "ClaimRequest": _obj(
        {
            "nonce": {
                **_NULLABLE_STR,
                "minLength": 1,
                "maxLength": 200,
                "description": "absent: send me a nonce; present: the nonce received",
            }
        },
        closed=True,
    ),
    # --- responses --------------------------------------------------------------------------
    "Accepted": _obj(
        {
            "jobId": _JOB_ID,
            "status": {"type": "string", "enum": _STATUSES},
            "statusUrl": _STR,
            "eventsUrl": _STR,
        },
        ["jobId", "status", "statusUrl", "eventsUrl"],
    ),
    "JobSummary": _obj(_JOB_FIELDS, _JOB_REQUIRED),
    "Job": _obj(
        {
            **_JOB_FIELDS,
            "text": {"type": "string", "description": "the answer so far, or final"},
            "placeInLine": _int(1, description="while queued: 1 is next"),
        },
        [*_JOB_REQUIRED, "text"],
    ),
    "JobList": _obj(
        {
            "jobs": {"type": "array", "items": ref("JobSummary")},
            "next": {**_NULLABLE_STR, "description": "the cursor of the next page, if any"},
        },
        ["jobs", "next"],
    ),
    "Event": _obj({"seq": _int(1), "attempt": _int(1), "text": _STR}, ["seq", "attempt", "text"]),
    "Events": _obj(
        {
            "jobId": _JOB_ID,
            "status": {"type": "string", "enum": _STATUSES},
            "attempt": _int(description="the attempt these events belong to"),
            "currentAttempt": _int(),
            "events": {"type": "array", "items": ref("Event")},
            "more": {"type": "boolean", "description": "a full page: ask again after the last seq"},
        },
        ["jobId", "status", "attempt", "currentAttempt", "events", "more"],
    ),
    "CancelAccepted": _obj(
        {"jobId": _JOB_ID, "status": {"type": "string", "enum": _STATUSES}}, ["jobId", "status"]
    ),
    "Erased": _obj({"jobId": _JOB_ID, "erased": {"type": "boolean"}}, ["jobId", "erased"]),
    "Negotiate": _obj(
        {"url": _STR, "accessToken": _STR},
        ["url", "accessToken"],
        description="SignalR's redirect answer: the client connects to url with accessToken",
    ),
    "Groups": _obj(
        {
            "groups": {
                "type": "array",
                "items": _obj({"group": _STR, "owner": _STR}, ["group", "owner"]),
            }
        },
        ["groups"],
    ),
    "Group": _obj(
        {
            "group": _STR,
            "owner": _NULLABLE_STR,
            "members": {
                "type": "array",
                "items": _obj(
                    {
                        "userId": _STR,
                        "joinedAt": _TIME,
                    },
                    ["userId"],
                ),
            },
        },
        ["group", "owner", "members"],
    ),
    "GroupDeleted": _obj({"group": _STR, "deleted": {"type": "boolean"}}, ["group", "deleted"]),
    "Invite": _obj(
        {
            "invite": _STR,
            "group": _STR,
            "expiresInSeconds": _int(60),
            "singleUse": {"type": "boolean"},
        },
        ["invite", "group", "expiresInSeconds", "singleUse"],
    ),
    "Joined": _obj(
        {
            "group": _STR,
            "userId": _STR,
            "result": {"type": "string", "enum": ["created", "joined"]},
        },
        ["group", "userId", "result"],
    ),
    "Removed": _obj(
        {"group": _STR, "userId": _STR, "removed": {"type": "boolean"}},
        ["group", "userId", "removed"],
    ),
    "Claim": _obj(
        {"connectionId": _STR, "status": {"type": "string", "enum": ["bound", "nonce_sent"]}},
        ["connectionId", "status"],
    ),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "checks": {
                "type": "object",
                "description": "with ?ready=1: storage, signalr, llm",
                "additionalProperties": _obj({"ok": {"type": "boolean"}, "reason": _STR}, ["ok"]),
            },
        },
        ["status"],
    ),
    # --- SignalR messages (hub SIGNALR_HUB, "stream" by default; one argument each) -----------
    "SignalRDelta": {
        **_obj(
            {"jobId": _JOB_ID, "seq": _int(1), "attempt": _int(1), "text": _STR},
            ["jobId", "seq", "attempt", "text"],
        ),
        "x-signalr": {"target": "delta", "arguments": "[this object]"},
        "description": "One batch. Keep the highest attempt seen, apply by seq, drop "
        "duplicates, reset the text when a higher attempt begins, fill gaps from "
        "GET /api/jobs/{jobId}/events.",
    },
    "SignalRStatus": {
        **_obj(
            {
                "jobId": _JOB_ID,
                "status": {
                    "type": "string",
                    "enum": ["running", "completed", "failed", "canceled"],
                },
                "attempt": _int(),
                "lastSeq": _int(),
                "usage": _USAGE,
                "error": _JOB_ERROR,
            },
            ["jobId", "status", "attempt", "lastSeq"],
        ),
        "x-signalr": {"target": "status", "arguments": "[this object]"},
        "description": "When an attempt starts running, fails (running + error, a retry "
        "may follow) and when the job ends; usage on completion.",
    },
    "SignalRClaim": {
        **_obj({"nonce": _STR}, ["nonce"]),
        "x-signalr": {"target": "claim", "arguments": "[this object]"},
        "description": "Sent to a connection being claimed: POST the nonce back to "
        "/api/connections/{connectionId}/claim.",
    },
}
