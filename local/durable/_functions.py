"""The app's durable functions, and how one activity execution is run."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from azure.durable_functions.models.utils.df_serialization import df_dumps, df_loads

__all__ = ["ActivityOutcome", "Registry", "run_activity"]

TRIGGERS = ("orchestrationTrigger", "activityTrigger", "entityTrigger")


@dataclass(frozen=True)
class ActivityOutcome:
    ok: bool
    result: str | None = None  # df_dumps of the return value
    reason: str = ""
    details: str = ""
    error: Exception | None = None  # what the activity raised, for the host's log


class Registry:
    """Orchestrator handlers and activity functions by function name."""

    def __init__(self, functions: list[Any]) -> None:
        self.orchestrators: dict[str, Callable[[str], str]] = {}
        self.activities: dict[str, tuple[Callable[..., Any], str]] = {}
        self.entities: set[str] = set()
        for fn in functions:
            trigger = fn.get_trigger()
            kind = getattr(trigger, "type", None)
            name = fn.get_function_name()
            if kind == "orchestrationTrigger":
                self.orchestrators[name] = fn.get_user_function()
            elif kind == "activityTrigger":
                self.activities[name] = (fn.get_user_function(), str(trigger.name))
            elif kind == "entityTrigger":
                self.entities.add(name)


async def run_activity(
    name: str, registry: Registry, data: str | None, pool: Executor
) -> ActivityOutcome:
    """Run one activity: input decoded with df_loads, output encoded with df_dumps."""
    found = registry.activities.get(name)
    if found is None:
        return ActivityOutcome(
            False, reason=f"The activity function '{name}' doesn't exist.", details=""
        )
    fn, param = found
    try:
        value = df_loads(data) if data is not None else None
        if inspect.iscoroutinefunction(fn):
            result = await fn(**{param: value})
        else:
            loop = asyncio.get_running_loop()
            ctx = contextvars.copy_context()  # the invocation tag reaches the worker thread
            result = await loop.run_in_executor(pool, lambda: ctx.run(fn, **{param: value}))
            if inspect.isawaitable(result):
                result = await result
        return ActivityOutcome(True, result=df_dumps(result))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        return ActivityOutcome(
            False,
            reason=f"Activity function '{name}' failed: {message}",
            details=f"{type(exc).__name__}: {message}",
            error=exc,
        )
