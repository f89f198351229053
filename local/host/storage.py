"""Storage connections and queue output bindings.

Connection names resolve as in the host: the setting named by `connection` (empty means
`AzureWebJobsStorage`), else `AzureWebJobs<name>`, else the identity-based `<name>__queueServiceUri`
(or `__serviceUri`, `__accountName`), used with `DefaultAzureCredential`.
`UseDevelopmentStorage=true` becomes Azurite on the ports given to the host.

Messages are encoded here (base64 or none, host.json `messageEncoding`), never by the SDK, so
the raw text of a message can be moved to a poison queue unchanged. After an output binding
writes to a queue that one of this host's listeners watches, that listener is woken at once,
as the real host's shared queue watcher does.

Every queue client uses an aiohttp transport with `use_env_settings=False` (aiohttp's
trust_env): with it on, each request (every poll, receive, delete and send) looks up
proxy and netrc settings through a thread hop, a few ms on a busy 2-core machine. The app's
own clients (relay/storage.py) and the durable store do the same.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from local.settings_files import dev_storage_connection_string
from relay.store._direct_queue import send_message

__all__ = ["ConnectionError_", "QueueTarget", "Storage", "decode_message", "encode_message"]


class ConnectionError_(RuntimeError):
    """A storage connection setting is missing (names the setting)."""


@dataclass(frozen=True)
class QueueTarget:
    account: str  # queue endpoint, identifies the account
    queue: str


def encode_message(data: str | bytes, encoding: str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8") if isinstance(data, bytes) else data


def decode_message(text: str, encoding: str) -> bytes:
    """Raw message text -> body bytes; raises ValueError when not valid base64."""
    if encoding != "base64":
        return text.encode("utf-8")
    return base64.b64decode(text.encode("ascii"), validate=True)


class Storage:
    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        encoding: str = "base64",
        dev_ports: tuple[int, int, int] = (10000, 10001, 10002),
    ) -> None:
        self._environ = environ
        self.encoding = encoding
        self._dev_ports = dev_ports
        self._services: dict[str, QueueServiceClient] = {}
        self._created: set[QueueTarget] = set()
        self._watchers: dict[QueueTarget, list[Callable[[], None]]] = {}

    def connection_string(self, connection: str | None) -> str | None:
        """The resolved connection string, or None for identity-based connections."""
        name = connection or "AzureWebJobsStorage"
        for candidate in (name, f"AzureWebJobs{name}"):
            value = self._environ.get(candidate)
            if value:
                return dev_storage_connection_string(value, self._dev_ports)
        for suffix in ("__queueServiceUri", "__serviceUri", "__accountName"):
            if self._environ.get(name + suffix):
                return None
        raise ConnectionError_(
            f"storage connection {name!r} is not set: define the app setting {name!r} "
            f"(a connection string) or {name}__queueServiceUri"
        )

    def service(self, connection: str | None) -> QueueServiceClient:
        name = connection or "AzureWebJobsStorage"
        if name not in self._services:
            conn = self.connection_string(connection)
            if conn is not None:
                client = QueueServiceClient.from_connection_string(
                    conn, transport=AioHttpTransport(use_env_settings=False)
                )
            else:
                from azure.identity.aio import DefaultAzureCredential

                uri = self._environ.get(f"{name}__queueServiceUri") or self._environ.get(
                    f"{name}__serviceUri"
                )
                if not uri:
                    uri = f"https://{self._environ[name + '__accountName']}.queue.core.windows.net"
                client = QueueServiceClient(
                    uri,
                    credential=DefaultAzureCredential(),
                    transport=AioHttpTransport(use_env_settings=False),
                )
            self._services[name] = client
        return self._services[name]

    def queue(self, connection: str | None, queue: str) -> tuple[QueueClient, QueueTarget]:
        service = self.service(connection)
        client = service.get_queue_client(queue)
        return client, QueueTarget(service.url.rstrip("/"), queue)

    async def ensure_queue(self, client: QueueClient, target: QueueTarget) -> None:
        if target in self._created:
            return
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()
        self._created.add(target)

    def watch(self, target: QueueTarget, wake: Callable[[], None]) -> None:
        self._watchers.setdefault(target, []).append(wake)

    async def send(self, connection: str | None, queue: str, messages: list[str | bytes]) -> None:
        client, target = self.queue(connection, queue)
        await self.ensure_queue(client, target)
        for message in messages:
            # Through the client's pipeline without the SDK's generated layer (the
            # client's encode policy is the SDK's default, none: the text is final).
            await send_message(client, encode_message(message, self.encoding))
        self.notify(target)

    def notify(self, target: QueueTarget) -> None:
        for wake in self._watchers.get(target, []):
            wake()

    async def write_output(self, binding: Mapping[str, Any], value: Any, queue: str) -> None:
        """Write one queue output binding's value (str, bytes, QueueMessage or a list)."""
        from azure.functions.queue import QueueMessageOutConverter

        if value is None:
            return
        datum = QueueMessageOutConverter.encode(value, expected_type=None)
        messages: list[str | bytes]
        if datum.type == "json":
            decoded = json.loads(datum.value)
            items = decoded if isinstance(decoded, list) else [decoded]
            messages = [i["body"] if isinstance(i, dict) else str(i) for i in items]
        else:
            messages = [datum.value]
        await self.send(binding.get("connection"), queue, messages)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._services.values()), return_exceptions=True)
        self._services.clear()
