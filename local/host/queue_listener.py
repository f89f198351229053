"""The queue trigger listener, with the semantics of the host's storage queues extension.

- Fetch up to `batchSize` messages, invisible for `fetch_visibility` (10 min, as the host),
  and renew that invisibility every half period while the function runs.
- Fetch again once the messages still running drop to `newBatchThreshold`.
- When the queue is empty, back off with the host's randomized exponential strategy from
  100 ms up to `maxPollingInterval`; a write by this host to the queue wakes it at once.
- Success deletes the message. Failure makes it visible again after `visibilityTimeout`, or,
  when its dequeue count has reached `maxDequeueCount`, moves it to `<queue>-poison`.
- A message that is not valid base64 (with base64 encoding) goes to the poison queue at once,
  without an invocation, as the extension does since 5.0 (retrying cannot help).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter
from azure.storage.queue import QueueMessage as StorageMessage

from relay.store._direct_queue import delete_message

from .config import QueueOptions
from .index import FunctionSpec
from .logs import HOST_LOGGER
from .storage import Storage, decode_message

__all__ = ["Backoff", "QueueListener"]

Execute = Callable[[FunctionSpec, dict[str, Any], str], Awaitable[bool]]


class Backoff:
    """The host's RandomizedExponentialBackoffStrategy (delta = minimum, factor 0.2)."""

    def __init__(
        self, minimum: float, maximum: float, rng: Callable[[], float] = random.random
    ) -> None:
        self.minimum, self.maximum, self._rng = minimum, max(minimum, maximum), rng
        self.current, self._exponent = minimum, 1

    def next(self, succeeded: bool) -> float:
        if succeeded:
            self.current, self._exponent = self.minimum, 1
        elif self.current != self.maximum:
            factor = 0.8 + 0.4 * self._rng()
            interval = self.minimum + factor * 2 ** (self._exponent - 1) * self.minimum
            if interval < self.maximum:
                self.current = interval
                self._exponent += 1
            else:
                self.current = self.maximum
        return self.current


def _metadata(m: StorageMessage) -> dict[str, meta.Datum]:
    def when(value: Any) -> meta.Datum | None:
        return meta.Datum(value.isoformat(), "string") if value is not None else None

    fields = {
        "Id": meta.Datum(m.id, "string"),
        "DequeueCount": meta.Datum(int(m.dequeue_count or 0), "int"),
        "ExpirationTime": when(m.expires_on),
        "InsertionTime": when(m.inserted_on),
        "NextVisibleTime": when(m.next_visible_on),
        "PopReceipt": meta.Datum(m.pop_receipt, "string"),
    }
    return {k: v for k, v in fields.items() if v is not None}


class QueueListener:
    def __init__(
        self,
        spec: FunctionSpec,
        queue: str,
        storage: Storage,
        options: QueueOptions,
        execute: Execute,
        *,
        fetch_visibility: float = 600.0,
        min_polling: float = 0.1,
    ) -> None:
        self.spec, self.queue, self._storage, self._options = spec, queue, storage, options
        self._execute = execute
        self._fetch_visibility = fetch_visibility
        self.backoff = Backoff(min_polling, options.max_polling_interval)
        self._client, self._target = storage.queue(spec.trigger.get("connection"), queue)
        self._poison_client, self._poison_target = storage.queue(
            spec.trigger.get("connection"), f"{queue}-poison"
        )
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = logging.getLogger(HOST_LOGGER)
        storage.watch(self._target, self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=f"queue:{self.queue}")

    async def stop(self, grace: float) -> None:
        """Stop fetching; let running messages finish for up to `grace` seconds."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _receive(self) -> list[StorageMessage]:
        pages = self._client.receive_messages(
            messages_per_page=self._options.batch_size,
            max_messages=self._options.batch_size,
            visibility_timeout=max(1, int(self._fetch_visibility)),
        ).by_page()
        async for page in pages:
            return [m async for m in page]
        return []

    async def _run(self) -> None:
        threshold = self._options.new_batch_threshold
        while not self._stopping:
            try:
                batch = await self._receive()
            except ResourceNotFoundError:
                batch = []  # the queue does not exist yet: the host treats it as empty
            except AzureError as exc:
                self._log.warning("Queue '%s': fetching messages failed: %s", self.queue, exc)
                batch = []
            if not batch:
                delay = self.backoff.next(succeeded=False)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                    self.backoff.next(succeeded=True)
                except TimeoutError:
                    pass
                continue
            self.backoff.next(succeeded=True)
            for message in batch:
                task = asyncio.create_task(self._process(message))
                self._tasks.add(task)
                task.add_done_callback(self._done)
            # Let the new invocations run up to their first await before the next receive
            # builds its request: otherwise that request's CPU delays every pickup.
            await asyncio.sleep(0)
            while len(self._tasks) > threshold and not self._stopping:
                self._changed.clear()
                await self._changed.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._changed.set()

    async def _poison(self, m: StorageMessage, why: str) -> None:
        self._log.warning("%s Moving message to queue '%s'.", why, self._poison_target.queue)
        await self._storage.ensure_queue(self._poison_client, self._poison_target)
        await self._poison_client.send_message(m.content)  # raw text, unchanged
        await self._client.delete_message(m.id, m.pop_receipt)
        self._storage.notify(self._poison_target)

    async def _keep_invisible(self, m: StorageMessage) -> None:
        while True:
            await asyncio.sleep(self._fetch_visibility / 2)
            try:
                updated = await self._client.update_message(
                    m.id, m.pop_receipt, visibility_timeout=int(self._fetch_visibility)
                )
            except AzureError as exc:
                self._log.warning(
                    "Queue '%s': renewing message visibility failed: %s", self.queue, exc
                )
                continue
            m.pop_receipt = updated.pop_receipt
            m.next_visible_on = updated.next_visible_on

    def _inputs(self, m: StorageMessage, body: bytes) -> dict[str, Any]:
        name = self.spec.trigger["name"]
        try:
            datum = meta.Datum(body.decode("utf-8"), "string")
        except UnicodeDecodeError:
            datum = meta.Datum(body, "bytes")
        param = self.spec.parameters.get(name)
        annotation = param.annotation if param is not None else None
        if annotation is str:
            value: Any = body.decode("utf-8", errors="replace")
        elif annotation is bytes:
            value = body
        else:
            value = QueueMessageInConverter.decode(datum, trigger_metadata=_metadata(m))
        return {name: value}

    async def _process(self, m: StorageMessage) -> None:
        limit = self._options.max_dequeue_count
        try:
            if (m.dequeue_count or 0) > limit:
                await self._poison(m, f"Message has reached MaxDequeueCount of {limit}.")
                return
            try:
                body = decode_message(m.content, self._options.message_encoding)
            except ValueError:
                await self._poison(m, f"Message {m.id} on '{self.queue}' is not valid base64.")
                return
            renew = asyncio.create_task(self._keep_invisible(m))
            try:
                ok = await self._execute(
                    self.spec,
                    self._inputs(m, body),
                    f"New queue message detected on '{self.queue}'.",
                )
            finally:
                renew.cancel()
                await asyncio.gather(renew, return_exceptions=True)
            if ok:  # the SDK's own request, without its generated layer (every message)
                await delete_message(self._client, m.id, m.pop_receipt or "")
            elif (m.dequeue_count or 0) >= limit:
                await self._poison(m, f"Message has reached MaxDequeueCount of {limit}.")
            else:
                await self._client.update_message(
                    m.id, m.pop_receipt, visibility_timeout=int(self._options.visibility_timeout)
                )
        except AzureError as exc:
            # The message reappears when its invisibility lapses; nothing is lost.
            self._log.warning("Queue '%s': completing message %s failed: %s", self.queue, m.id, exc)
