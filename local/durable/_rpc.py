"""The durable client's HTTP API under `/durabletask/`, shaped like the extension's HttpApiHandler.

Answers mirror the extension: start 202 with the management payload, 409 when a Pending/Running
instance holds the id (the default `overridableExistingInstanceStates` = NonRunningStates), 400
with `Message`/`ExceptionMessage` for bad requests; status 200 (done, failed included) / 202
(pending, running) / 404; raiseEvent and terminate 202 / 404 / 410; purge 200 / 404.
The same routes are also served under `/runtime/webhooks/durabletask/` for the status URLs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._orchestrations import RUNNING, TERMINAL, new_instance_row, persisted
from ._replay import EVENT, event, parse_time
from ._store import Message, TaskHubStore

__all__ = ["ControlQueue", "build_app", "management_payload"]

_BAD_ID_CHARS = set("/\\#?")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"Message": message, "ExceptionMessage": message}, status_code=status)


def _conflict(existing: dict[str, Any] | None) -> JSONResponse:
    status = existing["RuntimeStatus"] if existing else "Running"
    return _error(409, f"An Orchestration instance with the status {status} already exists.")


class ControlQueue(Protocol):
    """How the client API sends control messages (the engine's local dispatch)."""

    async def enqueue(self, body: dict[str, Any]) -> None:
        """Send a message for the runner (run here at once when possible)."""

    def can_lease(self) -> bool:
        """Whether `lease` + `hand_over` may be used now (not while stopping)."""

    async def lease(self, body: dict[str, Any]) -> Message:
        """Send a message invisible to pollers, to be handed over or deleted."""

    def hand_over(self, message: Message) -> None:
        """Run a leased message here."""


def management_payload(base_url: str, hub: str, instance_id: str) -> dict[str, str]:
    root = f"{base_url}/instances/{quote(instance_id, safe='')}"
    query = f"taskHub={hub}&connection=Storage"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{root}?{query}",
        "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{root}/terminate?reason={{text}}&{query}",
        "rewindPostUri": f"{root}/rewind?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{root}?{query}",
        "restartPostUri": f"{root}/restart?{query}",
        "suspendPostUri": f"{root}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{root}/resume?reason={{text}}&{query}",
    }


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def status_json(row: dict[str, Any], show_input: bool) -> dict[str, Any]:
    return {
        "name": row["Name"],
        "instanceId": row["PartitionKey"],
        "runtimeStatus": row["RuntimeStatus"],
        "input": _value(row.get("Input")) if show_input else None,
        "customStatus": _value(row.get("CustomStatus")),
        "output": _value(row.get("Output")),
        "createdTime": row["CreatedTime"][:19] + "Z",
        "lastUpdatedTime": row["LastUpdatedTime"][:19] + "Z",
    }


def _payload(raw: bytes) -> str | None:
    """The JSON text of a posted input or event payload.

    The SDK posts `json.dumps(value)` as a JSON string (JSON inside JSON): unwrap it. A plain
    JSON body from another client is taken as is. Raises ValueError on invalid JSON.
    """
    if not raw.strip():
        return None
    decoded = json.loads(raw)
    if isinstance(decoded, str):
        try:
            json.loads(decoded)
        except ValueError:
            return json.dumps(decoded)
        return decoded
    return json.dumps(decoded)


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    return default if raw is None else raw.lower() == "true"


def build_app(
    store: TaskHubStore,
    orchestrators: Callable[[], set[str]],
    http_base_url: Callable[[], str],
    control: ControlQueue,
) -> Starlette:
    """The client API; `control` sends control messages (and may run them at once).

    A start inserts the row (one round trip for a new id, no read first; only an existing
    id is read, to apply the instance-id rules) and, side by side, sends its start message
    leased to this process from birth: no poller can see the message before it is handed
    over, and it is handed over only after the row is written, so the runner never meets a
    start without its row. Crash or failure in between: a 409 or a failed insert deletes the
    message (best effort); a message left behind reappears after the control visibility
    timeout and is dropped by the runner (no row, or a row of another execution); a failed
    send deletes a just-inserted row (best effort), so no Pending row waits for a start that
    was never sent. A process that is stopping writes the row, then sends the message visible.
    """
    hub = store.hub

    async def create(row: dict[str, Any]) -> Response | None:
        """Write the row and its start message; a 409 response if a live instance has the id."""
        instance_id = row["PartitionKey"]
        body = {"t": "start", "i": instance_id, "x": row["ExecutionId"]}
        if not control.can_lease():
            if not await _insert_or_replace(row):
                return _conflict(await store.get_instance(instance_id))
            await control.enqueue(body)
            return None
        inserted, sent = await asyncio.gather(
            store.insert_instance(row), control.lease(body), return_exceptions=True
        )
        if isinstance(sent, BaseException):
            if inserted is True:
                with suppress(Exception):
                    await store.delete_instance(instance_id)
            raise sent
        if isinstance(inserted, BaseException) or not (inserted or await _insert_or_replace(row)):
            with suppress(Exception):
                await store.delete("control", sent)
            if isinstance(inserted, BaseException):
                raise inserted
            return _conflict(await store.get_instance(instance_id))
        control.hand_over(sent)
        return None

    async def _insert_or_replace(row: dict[str, Any]) -> bool:
        """False if a live instance holds the id; a finished one is replaced (history gone)."""
        if await store.insert_instance(row):
            return True
        existing = await store.get_instance(row["PartitionKey"])
        if existing is not None and existing["RuntimeStatus"] in RUNNING:
            return False
        if existing is not None:
            await store.delete_history(row["PartitionKey"])
        await store.put_instance(row)
        return True

    async def start(request: Request) -> Response:
        name = request.path_params["name"]
        instance_id = request.path_params.get("instance_id") or uuid.uuid4().hex
        if instance_id.startswith("@") or any(
            c in _BAD_ID_CHARS or ord(c) < 32 for c in instance_id
        ):
            return _error(400, "Orchestration instance ids must not start with @ or contain "
                          "/, \\, #, ?, or control characters.")  # fmt: skip
        if len(instance_id) > 256:
            return _error(400, "Instance ID lengths must not exceed 256 characters.")
        if name not in orchestrators():
            return _error(400, f"The function '{name}' doesn't exist, is disabled, or is not an "
                          "orchestrator function.")  # fmt: skip
        try:
            input_json = _payload(await request.body())
        except ValueError:
            return _error(400, "Invalid JSON content")
        conflict = await create(new_instance_row(instance_id, name, input_json))
        if conflict is not None:
            return conflict
        payload = management_payload(http_base_url(), hub, instance_id)
        return JSONResponse(
            payload, status_code=202, headers={"Location": payload["statusQueryGetUri"]}
        )

    async def get_status(request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        row = await store.get_instance(instance_id)
        if row is None:
            return Response(status_code=404)
        body = status_json(row, _flag(request, "showInput", True))
        if _flag(request, "showHistory", False):
            history = persisted(row, await store.load_history(instance_id, row["ExecutionId"]))
            show_output = _flag(request, "showHistoryOutput", False)
            body["historyEvents"] = [_public_event(e, show_output) for e in history]
        code = 202 if row["RuntimeStatus"] in RUNNING else 200
        return JSONResponse(body, status_code=code)

    async def list_status(request: Request) -> Response:
        rows = await store.list_instances()
        q = request.query_params
        wanted = {s for s in (q.get("runtimeStatus") or "").split(",") if s}
        out = []
        for row in rows:
            created = parse_time(row["CreatedTime"])
            if q.get("createdTimeFrom") and created < parse_time(q["createdTimeFrom"]):
                continue
            if q.get("createdTimeTo") and created > parse_time(q["createdTimeTo"]):
                continue
            if wanted and row["RuntimeStatus"] not in wanted:
                continue
            if not row["PartitionKey"].startswith(q.get("instanceIdPrefix") or ""):
                continue
            out.append(status_json(row, _flag(request, "showInput", True)))
        return JSONResponse(out)

    async def purge(request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        if await store.get_instance(instance_id) is None:
            return Response(status_code=404)
        await store.delete_instance(instance_id)
        return JSONResponse({"instancesDeleted": 1})

    async def purge_many(request: Request) -> Response:
        q = request.query_params
        if not q.get("createdTimeFrom"):
            return _error(400, "createdTimeFrom is required")
        deleted = 0
        wanted = {s for s in (q.get("runtimeStatus") or "").split(",") if s} or set(TERMINAL)
        for row in await store.list_instances():
            created = parse_time(row["CreatedTime"])
            if created < parse_time(q["createdTimeFrom"]) or row["RuntimeStatus"] not in wanted:
                continue
            if q.get("createdTimeTo") and created > parse_time(q["createdTimeTo"]):
                continue
            await store.delete_instance(row["PartitionKey"])
            deleted += 1
        if not deleted:
            return Response(status_code=404)
        return JSONResponse({"instancesDeleted": deleted})

    async def raise_event(request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        row = await store.get_instance(instance_id)
        if row is None:
            return Response(status_code=404)
        if row["RuntimeStatus"] in TERMINAL:
            return Response(status_code=410)
        try:
            body_input = _payload(await request.body()) or "null"
        except ValueError:
            return _error(400, "Invalid JSON content")
        ev = event("EventRaised", _utcnow(), Name=request.path_params["event"], Input=body_input)
        ev["_mid"] = uuid.uuid4().hex
        await control.enqueue({"t": "event", "i": instance_id, "x": None, "e": ev})
        return Response(status_code=202)

    async def terminate(request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        row = await store.get_instance(instance_id)
        if row is None:
            return Response(status_code=404)
        if row["RuntimeStatus"] in TERMINAL:
            return Response(status_code=410)
        reason = request.query_params.get("reason") or ""
        await control.enqueue({"t": "terminate", "i": instance_id, "reason": reason})
        return Response(status_code=202)

    def routes(prefix: str) -> list[Route]:
        return [
            Route(f"{prefix}/orchestrators/{{name}}", start, methods=["POST"]),
            Route(f"{prefix}/orchestrators/{{name}}/{{instance_id}}", start, methods=["POST"]),
            Route(f"{prefix}/instances/", list_status, methods=["GET"]),
            Route(f"{prefix}/instances", list_status, methods=["GET"]),
            Route(f"{prefix}/instances/", purge_many, methods=["DELETE"]),
            Route(f"{prefix}/instances/{{instance_id}}", get_status, methods=["GET"]),
            Route(f"{prefix}/instances/{{instance_id}}", purge, methods=["DELETE"]),
            Route(
                f"{prefix}/instances/{{instance_id}}/raiseEvent/{{event}}",
                raise_event,
                methods=["POST"],
            ),
            Route(f"{prefix}/instances/{{instance_id}}/terminate", terminate, methods=["POST"]),
        ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "no such durable task endpoint")

    async def failed(request: Request, exc: Exception) -> Response:
        return _error(503, f"the durable engine could not serve this: {type(exc).__name__}")

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        404: not_found,
        Exception: failed,
    }
    return Starlette(
        routes=routes("/durabletask") + routes("/runtime/webhooks/durabletask"),
        exception_handlers=handlers,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _public_event(ev: dict[str, Any], show_output: bool) -> dict[str, Any]:
    names = {v: k for k, v in EVENT.items()}
    out = {k: v for k, v in ev.items() if not k.startswith("_") and k != "IsPlayed"}
    out["EventType"] = names.get(ev["EventType"], str(ev["EventType"]))
    if not show_output:
        out.pop("Result", None)
    return out
