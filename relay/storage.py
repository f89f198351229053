"""Azure Storage clients (tables and queues) built from `relay.settings.StorageConfig`.

Two forms are accepted, like the Functions host's own `AzureWebJobsStorage`:
- a connection string (an account key string, `UseDevelopmentStorage=true`, Azurite's);
- identity-based service URIs (`AzureWebJobsStorage__tableServiceUri` / `__queueServiceUri`)
  with a managed identity: `ManagedIdentityCredential(client_id=...)` for a user-assigned
  identity, otherwise `DefaultAzureCredential`.

Every client gets its own aiohttp transport with `use_env_settings=False` (aiohttp's
`trust_env=False`): with it on, aiohttp looks up netrc and proxy settings, in a thread, on
every request. Storage traffic therefore ignores `HTTP(S)_PROXY` and `.netrc`; the storage
credential (a key or a managed identity token) is unaffected.

Async credentials hold their own HTTP session: whoever builds one closes it. `StorageClients`
owns the credential and the shared table service client it made, and closes both in
`aclose()`; queue clients it hands out belong to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from .errors import SettingsError
from .settings import StorageConfig

__all__ = [
    "StorageClients",
    "make_credential",
    "queue_client",
    "table_service_client",
    "transport",
]


def transport() -> AioHttpTransport:
    """A fresh transport for one client (the client closes it with itself)."""
    return AioHttpTransport(use_env_settings=False)


def make_credential(config: StorageConfig) -> Any:
    """An async token credential for identity-based storage (None for a connection string)."""
    if not config.uses_identity:
        return None
    # Imported here: azure.identity is heavy and unused with connection strings.
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if config.client_id:
        return ManagedIdentityCredential(client_id=config.client_id)
    return DefaultAzureCredential()


def table_service_client(config: StorageConfig, credential: Any = None) -> TableServiceClient:
    if config.connection_string:
        return TableServiceClient.from_connection_string(
            config.connection_string, transport=transport()
        )
    if not config.table_uri:
        raise SettingsError(["AzureWebJobsStorage__tableServiceUri is missing"])
    if credential is None:
        raise SettingsError(["identity-based table storage needs a token credential"])
    return TableServiceClient(
        endpoint=config.table_uri, credential=credential, transport=transport()
    )


def queue_client(config: StorageConfig, queue_name: str, credential: Any = None) -> QueueClient:
    """A queue client whose messages are base64 text, as the Functions queue trigger expects."""
    policies: dict[str, Any] = {
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": TextBase64DecodePolicy(),
        "transport": transport(),
    }
    if config.connection_string:
        return QueueClient.from_connection_string(config.connection_string, queue_name, **policies)
    if not config.queue_uri:
        raise SettingsError(["AzureWebJobsStorage__queueServiceUri is missing"])
    if credential is None:
        raise SettingsError(["identity-based queue storage needs a token credential"])
    return QueueClient(config.queue_uri, queue_name, credential=credential, **policies)


@dataclass
class StorageClients:
    """Builds clients from one config, sharing one credential; closes what it built."""

    config: StorageConfig
    _credential: Any = field(default=None, init=False, repr=False)
    _tables: TableServiceClient | None = field(default=None, init=False, repr=False)

    def credential(self) -> Any:
        if self._credential is None and self.config.uses_identity:
            self._credential = make_credential(self.config)
        return self._credential

    @property
    def tables(self) -> TableServiceClient:
        """One table service client (one connection pool) shared by every table user."""
        if self._tables is None:
            self._tables = table_service_client(self.config, self.credential())
        return self._tables

    def queue(self, queue_name: str) -> QueueClient:
        return queue_client(self.config, queue_name, self.credential())

    async def aclose(self) -> None:
        if self._tables is not None:
            await self._tables.close()
            self._tables = None
        if self._credential is not None:
            await self._credential.close()
            self._credential = None
