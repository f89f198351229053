"""DurableEngine: the RPC server plus the control-queue and work-item-queue workers.

Local dispatch. A control message (orchestration start, raised event, terminate, activity
result) or a work item that this process enqueues is handed straight to its own dispatcher
instead of waiting for a queue poll to find it (an in-memory dispatch of locally enqueued work;
how closely DTFx's own matches is not verified here). The durable queue message is still sent
first and stays the at-least-once backstop: it is sent invisible for the queue's visibility
timeout, i.e. leased to this process from birth (the send's pop receipt renews and deletes it
like a received message's), and it is deleted when the local run completes, exactly as a
received one would be. Crash behaviour: a process that dies with such a message is in the state
of one that had received it; the message reappears after its visibility timeout and another run
(this process restarted, or another) handles it. The only new window is between the send and the
local hand-over, where a crash used to leave the message visible at once and now leaves it for
the visibility timeout (`controlQueueVisibilityTimeout` / `workItemQueueVisibilityTimeout`).
A work item kept here starts as soon as its send has succeeded, before the episode that
scheduled it writes its history (as in DTFx, whose work-item queue message can be taken by
any worker the moment it is sent), and an episode failing afterwards does not stop it. Its
result may then come back before that episode is persisted: in this process it waits in the
instance's inbox (`_drain` handles one instance's messages one batch at a time) and is applied
right after the persist; found early otherwise (the episode failed, a redelivery), the runner
defers it by DTFx's out-of-order rule (see _orchestrations). A start message is handed over
only once its row is written (see _rpc).
Work items are kept only while an activity slot is free (`maxConcurrentActivityFunctions`
still holds), otherwise sent visible for any poller; a process that is stopping sends
visibly too. The pollers then only find work from elsewhere
(redeliveries, other processes, timers), so they back off to `maxQueuePollingInterval` and
far fewer polls come back empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import uvicorn

from ._config import DurableOptions
from ._dispatch import LocalControl, Poller
from ._functions import TRIGGERS, Registry, run_activity
from ._logs import invocation
from ._orchestrations import InstanceRunner
from ._replay import event
from ._rpc import build_app
from ._store import Message, StoreUnavailable, TaskHubStore

__all__ = ["DurableEngine"]


class DurableEngine:
    def __init__(
        self,
        *,
        storage_connection_string: str,
        host_json: dict[str, Any],
        functions: list[Any],
        rpc_host: str = "127.0.0.1",
        rpc_port: int = 17071,
        logger: logging.Logger | None = None,
        http_base_url: str | None = None,
    ) -> None:
        self.options = DurableOptions.from_host_json(host_json)
        self.log = logger or logging.getLogger("local.durable")
        self.registry = Registry(functions)
        self.store = TaskHubStore(storage_connection_string, self.options.hub_name)
        self.rpc_host = rpc_host
        self.rpc_port = rpc_port
        self._http_base_url = http_base_url
        self._activity_pool = ThreadPoolExecutor(self.options.max_activities, "durable-activity")
        self._orch_pool = ThreadPoolExecutor(
            min(self.options.max_orchestrators, 32), "durable-orchestrator"
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._activities: set[asyncio.Task[None]] = set()
        self._instances: dict[str, asyncio.Task[None]] = {}
        self._inbox: dict[str, list[Message]] = {}
        self._stopping = False
        self._server: uvicorn.Server | None = None
        self._control: Poller | None = None
        self._work: Poller | None = None
        self._runner: InstanceRunner | None = None
        self._leases: dict[str, Message] = {}  # work item id -> its latest pop receipt
        self._background: set[asyncio.Future[None]] = set()
        self._reserved = 0  # activity slots held by dispatched work items not started yet
        self._release = True  # on stop: make abandoned work items visible again at once

    @staticmethod
    def handles(trigger_type: str) -> bool:
        return trigger_type in TRIGGERS

    @property
    def rpc_base_url(self) -> str:
        return f"http://{self.rpc_host}:{self.rpc_port}/durabletask/"

    @property
    def http_base_url(self) -> str:
        own = f"http://{self.rpc_host}:{self.rpc_port}/runtime/webhooks/durabletask"
        return (self._http_base_url or own).rstrip("/")

    def client_binding_json(self) -> str:
        hub = self.options.hub_name
        base = self.http_base_url
        query = f"taskHub={hub}&connection=Storage"
        instance = f"{base}/instances/INSTANCEID"
        return json.dumps(
            {
                "taskHubName": hub,
                "connectionName": "Storage",
                "creationUrls": {
                    "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}"
                    f"[/{{instanceId}}]?{query}",
                    "createAndWaitOnNewInstancePostUri": f"{base}/orchestrators/"
                    f"{{functionName}}[/{{instanceId}}]?timeout={{timeoutInSeconds}}"
                    f"&pollingInterval={{intervalInSeconds}}&{query}",
                },
                "managementUrls": {
                    "id": "INSTANCEID",
                    "statusQueryGetUri": f"{instance}?{query}",
                    "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
                    "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
                    "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
                    "purgeHistoryDeleteUri": f"{instance}?{query}",
                    "restartPostUri": f"{instance}/restart?{query}",
                    "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
                    "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
                },
                "baseUrl": base,
                "requiredQueryStringParameters": query,
                "rpcBaseUrl": self.rpc_base_url,
                "httpBaseUrl": base,
            }
        )

    async def start(self) -> None:
        self._stopping = False
        await self.store.create()
        self._control = Poller(self.options.max_polling_interval_s)
        self._work = Poller(self.options.max_polling_interval_s)
        self._runner = InstanceRunner(
            self.store,
            self.registry,
            self._orch_pool,
            self.log,
            on_timer=self._timer_due,
            dispatch_work=self._dispatch_work,
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.rpc_host, self.rpc_port))
        self.rpc_port = sock.getsockname()[1]
        app = build_app(
            self.store,
            lambda: set(self.registry.orchestrators),
            lambda: self.http_base_url,
            LocalControl(
                enqueue=self._enqueue_control,
                lease=self._lease_control,
                deliver=lambda messages: self._deliver(messages),
                release=self._release_control,
                stopping=lambda: self._stopping,
            ),
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._tasks = [
            asyncio.create_task(self._server.serve(sockets=[sock])),
            asyncio.create_task(self._control_loop()),
            asyncio.create_task(self._work_loop()),
        ]
        for _ in range(1000):  # uvicorn offers no "started" event to wait on
            if self._server.started or self._tasks[0].done():
                break
            await asyncio.sleep(0.01)
        if not self._server.started:
            raise RuntimeError(f"the durable RPC server did not start on port {self.rpc_port}")
        self.log.info("durable engine: hub %s, rpc %s", self.options.hub_name, self.rpc_base_url)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop polling; in-flight work gets `grace_s` to finish, then is abandoned.

        An abandoned activity's work item is made visible again at once, so the next worker
        (this process restarted, or another) runs it again.
        """
        self._stopping = True
        self._release = True
        for poller in (self._control, self._work):
            if poller is not None:
                poller.wake()
        busy = [*self._activities, *self._instances.values()]
        if busy:
            await asyncio.wait(busy, timeout=grace_s)
        for task in busy:
            task.cancel()
        await self._shutdown(release=True)

    async def kill(self) -> None:
        """Simulate a crash: drop everything without telling storage (leases simply expire)."""
        self._stopping = True
        self._release = False
        for task in [*self._activities, *self._instances.values()]:
            task.cancel()
        await self._shutdown(release=False)

    async def _shutdown(self, release: bool) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks:
            if task is not self._tasks[0]:
                task.cancel()
        await asyncio.gather(*self._tasks, *self._activities, return_exceptions=True)
        await asyncio.gather(*self._instances.values(), return_exceptions=True)
        self._tasks = []
        self._activity_pool.shutdown(wait=False, cancel_futures=True)
        self._orch_pool.shutdown(wait=False, cancel_futures=True)
        await self.store.close()

    # --- orchestrations ----------------------------------------------------------------
    def _timer_due(self, delay_s: float) -> None:
        if self._control is None:
            return
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, delay_s) + 0.05, self._control.wake)

    async def _control_loop(self) -> None:
        assert self._control is not None
        opts = self.options
        while not self._stopping:
            try:
                messages = await self.store.receive("control", 32, opts.control_visibility_s)
            except StoreUnavailable as exc:
                self.log.warning("control queue poll failed: %s", exc)
                await self._control.idle()
                continue
            if not messages:
                await self._control.idle()
                continue
            self._control.busy()
            self._deliver(messages)

    def _deliver(self, messages: list[Message]) -> None:
        for message in messages:
            instance_id = str(message.body.get("i"))
            self._inbox.setdefault(instance_id, []).append(message)
            if instance_id not in self._instances:
                task = asyncio.create_task(self._drain(instance_id))
                self._instances[instance_id] = task

    async def _enqueue_control(self, body: dict[str, Any]) -> None:
        """Send a control message and run it here at once (see the module docstring)."""
        if self._stopping or self._control is None:
            await self.store.send("control", body)
            return
        message = await self.store.send("control", body, self.options.control_visibility_s)
        if self._stopping:
            await self._unlease("control", message)
            return
        self._deliver([message])

    async def _lease_control(self, body: dict[str, Any]) -> Message:
        return await self.store.send("control", body, self.options.control_visibility_s)

    def _release_control(self, message: Message) -> None:
        """In the background: a leased message this stopping process will not run."""
        self._in_background(self._unlease("control", message))

    async def _unlease(self, queue: str, message: Message) -> None:
        """Make a message leased to this stopping process visible for the next one."""
        with contextlib.suppress(Exception):
            await self.store.extend(queue, message, 0)

    async def _drain(self, instance_id: str) -> None:
        """Run one instance's messages, one batch after another (never two side by side).

        Messages delivered meanwhile (a kept activity's result while its episode persists)
        wait in the inbox and are the next batch, with no delay. A batch whose episode
        fails is abandoned with DTFx's backoff, as its dispatcher aborts a work item whose
        processing threw (WorkItemDispatcher -> AbandonTaskOrchestrationWorkItemAsync),
        instead of waiting out its lease (`controlQueueVisibilityTimeout`, 5 min default).
        """
        assert self._runner is not None
        try:
            while self._inbox.get(instance_id):
                messages = self._inbox.pop(instance_id)
                try:
                    await self._runner.process(instance_id, messages)
                except StoreUnavailable as exc:
                    self.log.warning("orchestration %s: storage failed: %s", instance_id, exc)
                    await self._runner.abandon(messages)
                except Exception:
                    # An engine bug must not kill the worker; the messages are redelivered.
                    self.log.exception("orchestration %s: episode crashed", instance_id)
                    await self._runner.abandon(messages)
        finally:
            self._instances.pop(instance_id, None)
            self._inbox.pop(instance_id, None)

    # --- activities --------------------------------------------------------------------
    def _free_slots(self) -> int:
        return self.options.max_activities - len(self._activities) - self._reserved

    async def _dispatch_work(self, body: dict[str, Any]) -> None:
        """Send a work item; when a slot is free, send it leased and start it here at once.

        The activity starts as soon as the send has succeeded, not when the episode that
        scheduled it is persisted: the queue message exists from then on, as it does in
        DTFx, and the episode failing afterwards changes nothing for it (its result is
        deferred until a re-run of the episode records the scheduling, see _orchestrations).
        Without a free slot (or while stopping) the item is sent visible for the pollers.
        """
        if self._stopping or self._free_slots() <= 0:
            await self.store.send("work", body)
            if self._work is not None:
                self._work.wake()
            return
        self._reserved += 1  # the slot is held from now on: the cap holds across the send
        try:
            message = await self.store.send("work", body, self.options.work_item_visibility_s)
        finally:
            self._reserved -= 1
        if self._stopping:  # stopping began during the send: leave it to the next process
            await self._unlease("work", message)
            return
        self._start_activity(message)

    def _in_background(self, call: Awaitable[None]) -> None:
        task = asyncio.ensure_future(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _start_activity(self, message: Message) -> None:
        task = asyncio.create_task(self._activity(message))
        self._activities.add(task)
        task.add_done_callback(self._activities.discard)

    async def _work_loop(self) -> None:
        assert self._work is not None
        opts = self.options
        while not self._stopping:
            free = self._free_slots()
            if free <= 0:
                if self._activities:
                    await asyncio.wait(set(self._activities), return_when=asyncio.FIRST_COMPLETED)
                else:
                    await self._work.idle()  # every slot is held by a dispatch in flight
                continue
            try:
                messages = await self.store.receive("work", free, opts.work_item_visibility_s)
            except StoreUnavailable as exc:
                self.log.warning("work item queue poll failed: %s", exc)
                await self._work.idle()
                continue
            if not messages:
                await self._work.idle()
                continue
            self._work.busy()
            for message in messages:
                self._start_activity(message)

    async def _activity(self, message: Message) -> None:
        body = message.body
        name, instance_id = str(body["name"]), str(body["i"])
        lease = asyncio.create_task(self._keep_leased(message))
        started = time.monotonic()
        try:
            with invocation(name, instance_id) as inv:
                outcome = await run_activity(
                    name, self.registry, body.get("input"), self._activity_pool
                )
                if not outcome.ok:
                    error = outcome.error
                    what = f"{type(error).__name__}: {error}" if error else outcome.reason
                    inv.fail(what, error)
        except asyncio.CancelledError:
            lease.cancel()
            try:
                if self._release and self._stopping:
                    await self._unlease("work", self._leases.get(message.id, message))
            finally:
                self._leases.pop(message.id, None)
            self.log.info("activity %s for %s abandoned", name, instance_id)
            raise
        lease.cancel()
        now = _utcnow()
        if outcome.ok:
            ev = event("TaskCompleted", now, TaskScheduledId=body["id"], Result=outcome.result)
        else:
            ev = event(
                "TaskFailed",
                now,
                TaskScheduledId=body["id"],
                Reason=outcome.reason,
                Details=outcome.details,
            )
        self.log.info(
            "activity %s for %s: %s (%.0f ms)",
            name,
            instance_id,
            "completed" if outcome.ok else "failed",
            (time.monotonic() - started) * 1000,
        )
        result = {"t": "event", "i": instance_id, "x": body["x"], "e": ev}
        # The result is durable before the work item goes: a crash between the two runs the
        # activity again and its duplicate result is ignored (TaskScheduledId).
        try:
            await self._enqueue_control(result)
            await self.store.delete("work", self._leases.get(message.id, message))
        finally:  # the renewed receipt is needed only until here, on every path
            self._leases.pop(message.id, None)

    async def _keep_leased(self, message: Message) -> None:
        """Renew the work item's invisibility while the activity runs (as DTFx does)."""
        every = max(0.5, self.options.work_item_visibility_s / 2)
        current = message
        while True:
            await asyncio.sleep(every)
            try:
                current = await self.store.extend(
                    "work", current, self.options.work_item_visibility_s
                )
                self._leases[message.id] = current
            except Exception as exc:
                self.log.warning("could not renew work item lease: %s", type(exc).__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)
