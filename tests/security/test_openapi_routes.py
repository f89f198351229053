"""The OpenAPI document is true: every HTTP route function_app.py registers is in it with
the same methods, and every documented operation is a registered route."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from api.openapi import OPENAPI

ROOT = Path(__file__).resolve().parents[2]

# Routes that are not API operations: the page catch-alls (GET pages, JSON 404/405 for the rest).
_NOT_API = {"{*path}"}


# In a subprocess: the SDK's `get_functions()` may be called once per app and process, and
# other tests call it on the same imported app.
_LIST_ROUTES = """
import json, function_app
print(json.dumps([json.loads(f.get_function_json())["bindings"]
                  for f in function_app.app.get_functions()]))
"""


def _registered() -> set[tuple[str, str]]:
    out = subprocess.run([sys.executable, "-c", _LIST_ROUTES], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    ops: set[tuple[str, str]] = set()
    for bindings in json.loads(out.strip().splitlines()[-1]):
        for binding in bindings:
            if binding["type"] != "httpTrigger" or binding["route"] in _NOT_API:
                continue
            for method in binding["methods"]:
                ops.add((method.upper(), "/" + binding["route"]))
    return ops


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in OPENAPI["paths"].items()
        for method in operations
    }


def test_every_registered_route_is_documented_and_vice_versa() -> None:
    registered, documented = _registered(), _documented()
    assert len(registered) >= 16
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented operations with no route"


def test_path_parameters_are_declared() -> None:
    for path, operations in OPENAPI["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_every_error_response_uses_the_error_schema() -> None:
    for path, operations in OPENAPI["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
