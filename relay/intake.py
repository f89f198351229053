"""The jobs queue: what `POST /api/jobs` enqueues and what the queue trigger decodes.

A message is small JSON, `{"jobId": ..., "owner": ..., "v": 1}`: the job itself (prompt
included) is in the job store, so messages stay far below the 64 KiB queue limit and carry
no prompt text. Messages are sent base64-encoded (`TextBase64EncodePolicy`), which is what
the Functions queue trigger expects by default (host.json `messageEncoding: base64`); the
trigger hands the function the decoded bytes, which `decode_message` parses.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from .errors import StoreError, ValidationError
from .settings import StorageConfig
from .storage import StorageClients
from .store._direct_queue import send_message
from .store._model import valid_job_id

__all__ = ["MESSAGE_VERSION", "JobQueue", "QueueJob", "decode_message", "encode_message"]

MESSAGE_VERSION = 1
_MAX_BODY = 64 * 1024
_MAX_OWNER = 1024


@dataclass(frozen=True)
class QueueJob:
    job_id: str
    owner: str


def encode_message(job_id: str, owner: str) -> str:
    """The message text (before the queue client's base64 encoding)."""
    return json.dumps(
        {"jobId": job_id, "owner": owner, "v": MESSAGE_VERSION}, separators=(",", ":")
    )


def _parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        pass
    # Still base64 (a host configured with messageEncoding "none", or a raw peek).
    try:
        return json.loads(base64.b64decode(raw, validate=True))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationError("message", "is not JSON (nor base64 of JSON)") from None


def decode_message(body: str | bytes) -> QueueJob:
    """Parse a queue message body; `ValidationError` (never anything else) on garbage."""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body)
    if not raw.strip():
        raise ValidationError("message", "is empty")
    if len(raw) > _MAX_BODY:
        raise ValidationError("message", "is too large")
    data = _parse_json(raw.strip())
    if not isinstance(data, dict):
        raise ValidationError("message", "must be a JSON object")
    if data.get("v") != MESSAGE_VERSION:
        raise ValidationError("message.v", f"must be {MESSAGE_VERSION}")
    job_id, owner = data.get("jobId"), data.get("owner")
    if not isinstance(job_id, str) or not valid_job_id(job_id):
        raise ValidationError("message.jobId", "must be 1-100 of A-Z a-z 0-9 _ -")
    if not isinstance(owner, str) or not owner or len(owner) > _MAX_OWNER:
        raise ValidationError("message.owner", "must be a non-empty string")
    return QueueJob(job_id, owner)


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except ResourceNotFoundError as exc:
        raise StoreError("the jobs queue does not exist") from exc
    except AzureError as exc:
        raise StoreError(f"queue storage failed ({type(exc).__name__})") from exc


class JobQueue:
    def __init__(self, client: QueueClient, *, owned: StorageClients | None = None) -> None:
        self._client = client
        self._owned = owned

    @classmethod
    def from_config(cls, config: StorageConfig, queue_name: str) -> JobQueue:
        clients = StorageClients(config)
        return cls(clients.queue(queue_name), owned=clients)

    @property
    def name(self) -> str:
        return str(self._client.queue_name)

    async def ensure(self) -> None:
        try:
            with _mapped():
                await self._client.create_queue()
        except StoreError as exc:
            if not isinstance(exc.__cause__, ResourceExistsError):
                raise

    async def enqueue(self, job_id: str, owner: str) -> None:
        if not valid_job_id(job_id):
            raise ValidationError("jobId", "must be 1-100 of A-Z a-z 0-9 _ -")
        with _mapped():
            # The client's own encode policy (base64) and pipeline, without the SDK's
            # generated layer (relay.store._direct_queue).
            await send_message(self._client, encode_message(job_id, owner))

    async def position_in_line(self) -> int:
        """Approximate number of messages in the queue (one cheap call).

        It counts every message, including ones a trigger is processing, so it is an upper
        bound on how many jobs wait ahead of a new one; a per-job position would need a
        scan of the queue and is not offered.
        """
        with _mapped():
            props = await self._client.get_queue_properties()
        return int(props.approximate_message_count or 0)

    async def aclose(self) -> None:
        await self._client.close()
        if self._owned is not None:
            await self._owned.aclose()

    async def __aenter__(self) -> JobQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
