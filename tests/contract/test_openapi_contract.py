"""Issue 5: `GET /api/openapi.json` is "an OpenAPI 3 document of all of this", for "an HTTP
API people can build on". A client generated from the document must learn the headers the
contract promises and the fields of the bodies it sends and reads.

Came from an outside audit (it failed before api/openapi.py declared them): the 202's
Location and the 429's Retry-After, the bodies of invites, join and claim, and the 2xx
bodies. tests/security/test_openapi_routes.py checks real answers against the document."""

from __future__ import annotations

from typing import Any

from tests.e2e.stack import Stack


def _doc(s: Stack) -> dict[str, Any]:
    res = s.request("GET", "/api/openapi.json", user=None)
    assert res.status == 200
    return dict(res.body)


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        return dict(doc["components"]["schemas"][name])
    return schema


def _json_schema(doc: dict[str, Any], holder: dict[str, Any]) -> dict[str, Any]:
    return _resolve(doc, holder["content"]["application/json"]["schema"])


def test_promised_headers_are_declared(contract_stack: Stack) -> None:
    doc = _doc(contract_stack)
    post = doc["paths"]["/api/jobs"]["post"]["responses"]
    assert "Location" in post["202"].get("headers", {}), post["202"]
    assert "Retry-After" in post["429"].get("headers", {}), post["429"]


def test_request_bodies_name_their_fields(contract_stack: Stack) -> None:
    doc = _doc(contract_stack)
    paths = doc["paths"]
    expected = {
        ("/api/groups/{group}/invites", "post"): {"ttlSeconds", "singleUse"},
        ("/api/groups/{group}/members/{userId}", "put"): {"invite"},
        ("/api/connections/{connectionId}/claim", "post"): {"nonce"},
    }
    for (path, method), fields in expected.items():
        schema = _json_schema(doc, paths[path][method]["requestBody"])
        assert fields <= set(schema.get("properties", {})), (path, method, schema)


def test_the_job_document_is_described(contract_stack: Stack) -> None:
    doc = _doc(contract_stack)
    schema = _json_schema(doc, doc["paths"]["/api/jobs/{jobId}"]["get"]["responses"]["200"])
    issue_fields = {
        "jobId", "status", "createdAt", "startedAt", "completedAt", "target", "attempt",
        "lastSeq", "text", "usage", "metrics", "delivery", "error",
    }  # fmt: skip
    assert issue_fields <= set(schema.get("properties", {})), schema
    events = _json_schema(doc, doc["paths"]["/api/jobs/{jobId}/events"]["get"]["responses"]["200"])
    assert "events" in events.get("properties", {}), events
    negotiate = _json_schema(doc, doc["paths"]["/api/negotiate"]["post"]["responses"]["200"])
    assert {"url", "accessToken"} <= set(negotiate.get("properties", {})), negotiate
