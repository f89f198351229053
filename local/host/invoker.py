"""Calling a user function the way the Python worker does.

Parameters are bound by name: trigger and input bindings get their values, output bindings a
fresh `func.Out`, and a parameter named `context` the invocation `func.Context`. Async
functions run on the host's event loop; sync ones in a thread pool sized like the worker's
(`PYTHON_THREADPOOL_THREAD_COUNT`, default min(32, cpus + 4)), with the invocation's context
variables copied in so log records are tagged. Every invocation logs the host's
"Executing ..." and "Executed ..." lines; an exception fails the invocation (logged with its
trace) and never escapes to the trigger beyond the `InvocationResult`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc

from .index import FunctionSpec
from .logs import HOST_LOGGER, Invocation, current_invocation

__all__ = ["InvocationResult", "Invoker", "LocalContext", "LocalOut"]

T = TypeVar("T")


class LocalOut(func.Out[T], Generic[T]):
    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class _TraceContext(func_abc.TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._parent = trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class LocalContext(func.Context):
    _local = threading.local()

    def __init__(self, invocation_id: str, function_name: str, directory: str) -> None:
        self._id = invocation_id
        self._name = function_name
        self._dir = directory
        trace = uuid.UUID(invocation_id).hex
        self._trace = _TraceContext(f"00-{trace}-{trace[:16]}-01")

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._dir

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> Any:
        return None


@dataclass
class InvocationResult:
    invocation_id: str
    ok: bool
    value: Any = None  # the return value ($return)
    outputs: dict[str, Any] = field(default_factory=dict)  # output binding name -> value
    error: BaseException | None = None
    duration_ms: int = 0


def _pool_size() -> int:
    raw = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return min(32, (os.cpu_count() or 1) + 4)


class Invoker:
    def __init__(self, *, app_dir: str, function_timeout: float | None = None) -> None:
        self._app_dir = app_dir
        self._timeout = function_timeout
        self._pool = ThreadPoolExecutor(_pool_size(), thread_name_prefix="worker")
        self._log = logging.getLogger(HOST_LOGGER)
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _arguments(
        self, spec: FunctionSpec, inputs: dict[str, Any], inv_id: str
    ) -> tuple[dict[str, Any], dict[str, LocalOut[Any]]]:
        kwargs: dict[str, Any] = {}
        outs: dict[str, LocalOut[Any]] = {}
        out_names = {b["name"] for b in spec.outputs() if b["name"] != "$return"}
        for name, param in spec.parameters.items():
            if name in inputs:
                kwargs[name] = inputs[name]
            elif name in out_names:
                outs[name] = kwargs[name] = LocalOut()
            elif name == "context" or param.annotation in (func.Context, "func.Context"):
                kwargs[name] = LocalContext(inv_id, spec.name, self._app_dir)
        return kwargs, outs

    async def _call(self, spec: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        if spec.is_async:
            return await asyncio.wait_for(spec.user_function(**kwargs), self._timeout)
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, lambda: ctx.run(spec.user_function, **kwargs))
        return await asyncio.wait_for(future, self._timeout)

    async def invoke(
        self, spec: FunctionSpec, inputs: dict[str, Any], reason: str
    ) -> InvocationResult:
        inv_id = str(uuid.uuid4())
        token = current_invocation.set(Invocation(spec.name, inv_id))
        self.running += 1
        self._idle.clear()
        started = time.monotonic()
        self._log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, inv_id)
        result = InvocationResult(inv_id, ok=True)
        try:
            kwargs, outs = self._arguments(spec, inputs, inv_id)
            result.value = await self._call(spec, kwargs)
            result.outputs = {name: out.get() for name, out in outs.items()}
        except Exception as exc:  # the user's code: any failure fails the invocation
            result.ok = False
            result.error = exc
            if isinstance(exc, TimeoutError):
                self._log.error(
                    "Timeout value of %ss was exceeded by function: Functions.%s",
                    self._timeout,
                    spec.name,
                )
            else:
                self._log.error(
                    "Exception while executing function: Functions.%s. Result: Failure "
                    "Exception: %s: %s",
                    spec.name,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
        finally:
            result.duration_ms = int((time.monotonic() - started) * 1000)
            self._log.info(
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
                spec.name,
                "Succeeded" if result.ok else "Failed",
                inv_id,
                result.duration_ms,
            )
            current_invocation.reset(token)
            self.running -= 1
            if self.running == 0:
                self._idle.set()
        return result

    async def wait_idle(self, grace: float) -> bool:
        """Wait for running invocations to finish; False if some still run after `grace` s."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
