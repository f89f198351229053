"""The OpenAPI 3 document of the HTTP API. A test checks every route against it."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI"]


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = schema or {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": body}}}


_COMMON = {"401": _err("Not signed in"), "400": _err("Invalid input")}
_JOB_ID = {
    "name": "jobId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_GROUP = {
    "name": "group",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"},
}
_JSON_BODY = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "LLM stream relay",
        "version": "1.0.0",
        "description": "Submit prompts, follow their answers live over SignalR.",
    },
    "components": {
        "securitySchemes": {
            "principal": {"type": "apiKey", "in": "header", "name": "x-ms-client-principal-id"}
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "field": {"type": "string"},
                        },
                    }
                },
            },
            "ChatMessage": {
                "type": "object",
                "required": ["role", "content"],
                "additionalProperties": False,
                "properties": {
                    "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                    "content": {"type": "string", "minLength": 1},
                },
            },
            "JobRequest": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "prompt": {"type": "string", "minLength": 1},
                    "messages": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/ChatMessage"},
                    },
                    "system": {"type": "string"},
                    "maxTokens": {"type": "integer", "minimum": 1},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                    "groupName": {"type": "string"},
                    "connectionId": {"type": "string"},
                },
            },
            "Accepted": {
                "type": "object",
                "required": ["jobId", "status", "statusUrl", "eventsUrl"],
                "properties": {
                    "jobId": {"type": "string"},
                    "status": {"type": "string"},
                    "statusUrl": {"type": "string"},
                    "eventsUrl": {"type": "string"},
                },
            },
        },
    },
    "security": [{"principal": []}],
    "paths": {
        "/api/jobs": {
            "post": {
                "operationId": "createJob",
                "summary": "Submit a prompt",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 200},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}
                    },
                },
                "responses": {
                    "202": _ok("Accepted", {"$ref": "#/components/schemas/Accepted"}),
                    **_COMMON,
                    "403": _err("Target not allowed"),
                    "413": _err("Body too large"),
                    "415": _err("Not JSON"),
                    "429": _err("Over a limit (see Retry-After)"),
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "The caller's recent jobs",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _ok("Jobs, newest first"), **_COMMON},
            },
        },
        "/api/jobs/{jobId}": {
            "get": {
                "operationId": "getJob",
                "parameters": [_JOB_ID],
                "responses": {"200": _ok("Status"), **_COMMON, "404": _err("No such job")},
            },
            "delete": {
                "operationId": "cancelJob",
                "parameters": [_JOB_ID],
                "responses": {
                    "202": _ok("Cancel requested"),
                    **_COMMON,
                    "404": _err("No such job"),
                    "409": _err("The job has already ended"),
                },
            },
        },
        "/api/jobs/{jobId}/events": {
            "get": {
                "operationId": "jobEvents",
                "parameters": [
                    _JOB_ID,
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "attempt", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {
                    "200": _ok("Batches after seq"),
                    **_COMMON,
                    "404": _err("No such job"),
                },
            },
        },
        "/api/jobs/{jobId}/data": {
            "delete": {
                "operationId": "eraseJob",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _ok("Erased"),
                    **_COMMON,
                    "404": _err("No such job"),
                    "409": _err("Still running"),
                },
            },
        },
        "/api/negotiate": {
            "post": {
                "operationId": "negotiate",
                "responses": {"200": _ok("SignalR url and access token"), **_COMMON},
            },
        },
        "/api/groups": {
            "get": {"operationId": "listGroups", "responses": {"200": _ok("Groups"), **_COMMON}},
        },
        "/api/groups/{group}": {
            "get": {
                "operationId": "getGroup",
                "parameters": [_GROUP],
                "responses": {"200": _ok("Members"), **_COMMON, "404": _err("No such group")},
            },
            "delete": {
                "operationId": "deleteGroup",
                "parameters": [_GROUP],
                "responses": {
                    "200": _ok("Deleted"),
                    **_COMMON,
                    "403": _err("Not the owner"),
                    "404": _err("No such group"),
                },
            },
        },
        "/api/groups/{group}/invites": {
            "post": {
                "operationId": "createInvite",
                "parameters": [_GROUP],
                "requestBody": _JSON_BODY,
                "responses": {
                    "201": _ok("Invite token"),
                    **_COMMON,
                    "403": _err("Not the owner"),
                    "404": _err("No such group"),
                },
            },
        },
        "/api/groups/{group}/members/{userId}": {
            "put": {
                "operationId": "joinGroup",
                "requestBody": _JSON_BODY,
                "parameters": [
                    _GROUP,
                    {
                        "name": "userId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["me"]},
                    },
                ],
                "responses": {
                    "200": _ok("Joined"),
                    "201": _ok("Created"),
                    **_COMMON,
                    "403": _err("Invite required or invalid"),
                    "409": _err("The name belongs to a group deleted moments ago (Retry-After)"),
                },
            },
            "delete": {
                "operationId": "removeMember",
                "parameters": [
                    _GROUP,
                    {
                        "name": "userId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _ok("Removed"),
                    **_COMMON,
                    "403": _err("Not the owner"),
                    "404": _err("No such group or member"),
                    "409": _err("The owner cannot leave: delete the group instead"),
                },
            },
        },
        "/api/connections/{connectionId}/claim": {
            "post": {
                "operationId": "claimConnection",
                "requestBody": _JSON_BODY,
                "parameters": [
                    {
                        "name": "connectionId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
                    }
                ],
                "responses": {
                    "200": _ok("Bound (also when it already was yours)"),
                    "202": _ok("Nonce sent"),
                    **_COMMON,
                    "403": _err("Wrong nonce"),
                    "404": _err("No such connection"),
                },
            },
        },
        "/api/health": {
            "get": {
                "operationId": "health",
                "security": [],
                "parameters": [{"name": "ready", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _ok("Healthy"), "503": _ok("Not ready")},
            },
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "security": [],
                "responses": {"200": _ok("This document")},
            },
        },
    },
}
