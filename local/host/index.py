"""The function index: import the app once, read each function's metadata, refuse what we
cannot run.

The metadata is each function's function.json (`Function.get_function_json()`), what the
real worker reports to the host at indexing. Anything this host does not implement is refused
at startup with the function and binding named, instead of failing at the first invocation.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DURABLE_TRIGGERS",
    "FunctionSpec",
    "IndexError_",
    "load_functions",
    "resolve_expression",
]

HOST_TRIGGERS = {"httpTrigger", "queueTrigger", "timerTrigger"}
DURABLE_TRIGGERS = {"orchestrationTrigger", "activityTrigger", "entityTrigger"}
SUPPORTED_BINDINGS = {"http", "queue", "durableClient"}  # non-trigger bindings
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


class IndexError_(RuntimeError):
    """The app cannot be indexed or uses something this host does not support."""


@dataclass
class FunctionSpec:
    name: str
    function: Any  # azure.functions.decorators.function_app.Function
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    user_function: Callable[..., Any]
    is_async: bool
    parameters: dict[str, inspect.Parameter] = field(default_factory=dict)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    def outputs(self) -> list[dict[str, Any]]:
        return [b for b in self.bindings if b["direction"].upper() == "OUT"]

    def inputs(self) -> list[dict[str, Any]]:
        return [
            b
            for b in self.bindings
            if b["direction"].upper() == "IN" and not b["type"].endswith("Trigger")
        ]


def resolve_expression(value: str, environ: Mapping[str, str], where: str) -> str:
    """`%NAME%` binding expressions, resolved from app settings as the host does."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in environ:
            raise IndexError_(f"{where}: app setting {name!r} (from %{name}%) is not set")
        return environ[name]

    return re.sub(r"%([^%]+)%", sub, value)


def _import_app(app_dir: Path, module: str) -> Any:
    if not (app_dir / f"{module}.py").is_file():
        raise IndexError_(f"{app_dir}: no {module}.py (the v2 programming model's entry file)")
    path = str(app_dir)
    # First on sys.path, so the app's own modules win (as in the worker, which starts there).
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    sys.modules.pop(module, None)
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise IndexError_(f"importing {module}.py failed: {type(exc).__name__}: {exc}") from exc
    apps = [v for v in vars(mod).values() if hasattr(v, "get_functions") and hasattr(v, "route")]
    if not apps:
        raise IndexError_(f"{module}.py defines no FunctionApp")
    if len(apps) > 1:
        raise IndexError_(f"{module}.py defines more than one FunctionApp")
    return apps[0]


def _check(spec: FunctionSpec, environ: Mapping[str, str]) -> None:
    where = f"function {spec.name!r}"
    if spec.trigger_type not in HOST_TRIGGERS | DURABLE_TRIGGERS:
        raise IndexError_(
            f"{where}: trigger {spec.trigger['name']!r} of type {spec.trigger_type!r} "
            "is not supported by the local host (http, queue, timer and durable triggers are)"
        )
    for b in spec.bindings:
        if b["type"].endswith("Trigger"):
            continue
        if b["type"] not in SUPPORTED_BINDINGS:
            raise IndexError_(
                f"{where}: binding {b['name']!r} of type {b['type']!r} is not supported by the "
                "local host (http, queue and durableClient bindings are)"
            )
        if b["type"] == "http" and spec.trigger_type != "httpTrigger":
            raise IndexError_(f"{where}: binding {b['name']!r}: http output needs an HTTP trigger")
        if b["type"] == "queue" and b["direction"].upper() != "OUT":
            raise IndexError_(f"{where}: binding {b['name']!r}: queue input is not a binding")
    for b in spec.bindings:
        if b["type"] in ("queue", "queueTrigger"):
            name = resolve_expression(str(b.get("queueName", "")), environ, where).lower()
            if not _QUEUE_NAME.match(name):
                raise IndexError_(f"{where}: binding {b['name']!r}: invalid queue name {name!r}")
    if spec.trigger_type in HOST_TRIGGERS:
        # The worker refuses these mismatches when it loads the function; so do we.
        names = {b["name"] for b in spec.bindings if b["name"] != "$return"}
        params = {n for n in spec.parameters if n != "context"}
        if params - names:
            raise IndexError_(
                f"{where}: parameters {sorted(params - names)} are declared in Python "
                "but not bound (add a binding or remove them)"
            )
        if names - params - {"context"}:
            raise IndexError_(
                f"{where}: bindings {sorted(names - params)} have no Python parameter"
            )
    if spec.trigger_type == "httpTrigger":
        level = str(spec.trigger.get("authLevel", "function")).lower()
        if level not in ("anonymous", "function", "admin"):
            raise IndexError_(f"{where}: unknown authLevel {level!r}")


def load_functions(
    app_dir: Path, environ: Mapping[str, str], module: str = "function_app"
) -> list[FunctionSpec]:
    """Import `module` from `app_dir` and index its functions (once: the SDK allows one call)."""
    app = _import_app(app_dir.resolve(), module)
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise IndexError_(f"indexing functions failed: {type(exc).__name__}: {exc}") from exc
    specs: list[FunctionSpec] = []
    seen: set[str] = set()
    for fn in functions:
        meta = json.loads(fn.get_function_json())
        bindings = [dict(b) for b in meta["bindings"]]
        name = fn.get_function_name()
        if name.lower() in seen:
            raise IndexError_(f"function {name!r} is defined twice")
        seen.add(name.lower())
        triggers = [b for b in bindings if b["type"].endswith("Trigger")]
        if len(triggers) != 1:
            raise IndexError_(f"function {name!r} must have exactly one trigger")
        user = fn.get_user_function()
        spec = FunctionSpec(
            name=name,
            function=fn,
            trigger=triggers[0],
            bindings=bindings,
            user_function=user,
            is_async=inspect.iscoroutinefunction(user),
            parameters=dict(inspect.signature(user).parameters),
        )
        _check(spec, environ)
        specs.append(spec)
    return specs
