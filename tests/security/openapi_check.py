"""Validate real answers and SignalR messages against the served OpenAPI document.

The document is OpenAPI 3.0 (`nullable: true`); each schema is turned into JSON Schema
2020-12 for jsonschema_rs (the validator schemathesis uses). Strict: an object schema with
properties and no `additionalProperties` gets `false`, so a field the API returns but the
document does not name fails here, although clients are told to tolerate extra fields.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from tests.e2e.stack import Response, Stack

__all__ = ["Conformance", "Seen"]

_REF = "#/components/schemas/"


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if not k.startswith("x-") and k != "nullable"}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith(_REF):
        out["$ref"] = "#/$defs/" + out["$ref"][len(_REF) :]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


@dataclass
class Seen:
    method: str
    template: str
    response: Response


@dataclass
class Conformance:
    """Calls the API by operation (method + documented path) and keeps every answer."""

    stack: Stack
    doc: dict[str, Any]
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._defs = _convert(copy.deepcopy(self.doc["components"]["schemas"]))

    def call(self, method: str, template: str, body: Any = None, *, query: str = "",
             user: str | None = "oa-owner", **kw: Any) -> Response:  # fmt: skip
        params = {k: kw.pop(k) for k in list(kw) if f"{{{k}}}" in template}
        res = self.stack.request(method, template.format(**params) + query, body, user=user, **kw)
        self.seen.append(Seen(method.lower(), template, res))
        return res

    def validator(self, schema: dict[str, Any]) -> Any:
        root = {**_convert(copy.deepcopy(schema)), "$defs": self._defs}
        return jsonschema_rs.Draft202012Validator(root, validate_formats=True)

    def check_message(self, target: str, arguments: list[Any]) -> None:
        """A SignalR message against its `x-signalr` component: one argument, that shape."""
        names = [n for n, s in self.doc["components"]["schemas"].items()
                 if s.get("x-signalr", {}).get("target") == target]  # fmt: skip
        assert len(names) == 1, (target, names)
        assert len(arguments) == 1, (target, arguments)
        self.validator({"$ref": _REF + names[0]}).validate(arguments[0])

    def check_answer(self, seen: Seen) -> None:
        """Its status is declared for its operation (405: the shared answer), its declared
        headers are present, and its body matches the declared schema."""
        res, where = seen.response, (seen.method, seen.template, seen.response.status)
        if res.status == 405:
            declared = self.doc["components"]["responses"]["MethodNotAllowed"]
        else:
            responses = self.doc["paths"][seen.template][seen.method]["responses"]
            assert str(res.status) in responses, (where, res.body)
            declared = responses[str(res.status)]
        for name, header in declared.get("headers", {}).items():
            assert name.lower() in res.headers, (where, name)
            self.validator(header["schema"]).validate(_header_value(header, res, name))
        content = declared.get("content", {}).get("application/json")
        if content is not None:
            assert "application/json" in res.headers.get("content-type", ""), where
            errors = [e.message for e in self.validator(content["schema"]).iter_errors(res.body)]
            assert not errors, (where, errors, res.body)


def _header_value(header: dict[str, Any], res: Response, name: str) -> Any:
    raw = res.headers[name.lower()]
    return int(raw) if header["schema"].get("type") == "integer" else raw
