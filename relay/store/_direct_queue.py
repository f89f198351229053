"""Queue calls built here and sent through the queue client's own pipeline.

The queue counterpart of `relay.store._direct` (see there for why and how): the HTTP
requests `QueueClient.send_message`, `delete_message`, `update_message` and
`receive_messages` build, sent with the client's own `send_request` (signing, retries,
transport), errors raised by the SDK's own `process_storage_error` after the generated
operations' error map. Message text is encoded and decoded by the client's own policies
(base64 for the app's clients, none for the durable engine's and the local host's, which
encode themselves). A client with client-side encryption configured goes through the SDK.
One difference on purpose: a receive is one GET (see `receive_messages`).

Private names relied on (azure-storage-queue 12.18, pinned in constraints.txt; the tests
compare against the SDK on Azurite on every run): `QueueClient._client._client` (the
pipeline client), `._message_encode_policy` / `._message_decode_policy`,
`azure.storage.queue._message_encoding.NoDecodePolicy`,
`azure.storage.queue._shared.response_handlers.process_storage_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import quote, urlencode
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.storage.queue import TextBase64DecodePolicy
from azure.storage.queue._message_encoding import NoDecodePolicy
from azure.storage.queue._shared.response_handlers import process_storage_error
from azure.storage.queue.aio import QueueClient

# One error path and one pipeline entry for tables and queues alike.
from ._direct import _generated_error, _send

__all__ = [
    "ReceivedMessage",
    "SentMessage",
    "delete_message",
    "receive_messages",
    "send_message",
    "update_message",
]


@dataclass(frozen=True)
class SentMessage:
    """What `QueueClient.send_message` answers (the fields callers use)."""

    id: str
    pop_receipt: str
    inserted_on: datetime | None
    expires_on: datetime | None
    next_visible_on: datetime | None


def _xml(response: Any) -> ElementTree.Element:
    """The answer's XML; an unreadable one is the service's failure (`HttpResponseError`,
    as the SDK's deserializer raises), never a parser error escaping to the caller."""
    try:
        return ElementTree.fromstring(response.content)
    except ElementTree.ParseError as exc:
        raise HttpResponseError(
            message=f"an unreadable queue answer: {exc}", response=response
        ) from exc


def _xml_date(item: ElementTree.Element, tag: str) -> datetime | None:
    value = item.findtext(tag)
    return parsedate_to_datetime(value) if value else None


async def send_message(
    queue: QueueClient, content: str, *, visibility_timeout: int | None = None
) -> SentMessage:
    """Enqueue `content`, encoded by the client's own message encode policy (base64 for
    the app's clients); errors as `QueueClient.send_message` raises them."""
    if queue.key_encryption_key is not None or queue.require_encryption:
        sent = await queue.send_message(content, visibility_timeout=visibility_timeout)
        return SentMessage(
            sent.id, sent.pop_receipt or "", sent.inserted_on, sent.expires_on,
            sent.next_visible_on,
        )  # fmt: skip
    text = queue._message_encode_policy(content)
    # What the SDK's XML serializer writes (ElementTree escapes &, < and > in text).
    body = (
        "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"
        f"{escape(text)}</MessageText></QueueMessage>"
    ).encode()
    visible = (
        {} if visibility_timeout is None else {"visibilitytimeout": str(int(visibility_timeout))}
    )
    url = _messages_url(queue, **visible)
    request = HttpRequest(
        "POST",
        url,
        headers={
            "Content-Type": "application/xml",
            "x-ms-version": queue.api_version,
            "Accept": "application/xml",
        },
        content=body,
    )
    response = await _send(queue, request)
    if response.status_code != 201:
        process_storage_error(_generated_error(response))
    item = _xml(response).find("QueueMessage")
    message_id = item.findtext("MessageId") if item is not None else None
    if item is None or not message_id:
        raise HttpResponseError(
            message="a queue send answer without a MessageId", response=response
        )
    return SentMessage(
        message_id,
        item.findtext("PopReceipt") or "",
        _xml_date(item, "InsertionTime"),
        _xml_date(item, "ExpirationTime"),
        _xml_date(item, "TimeNextVisible"),
    )


def _messages_url(queue: QueueClient, message_id: str | None = None, **params: str) -> str:
    """`{queue}/messages[/{id}]?{params}`, the queue URL's SAS token (if any) last."""
    base, _, sas = queue.url.partition("?")  # a SAS token rides in the URL's query
    query = urlencode(params)  # pop receipts are base64: '+', '/' and '=' are escaped
    if sas:
        query = f"{query}&{sas}" if query else sas
    path = f"{base}/messages" + (f"/{quote(message_id, safe='')}" if message_id else "")
    return path + (f"?{query}" if query else "")


def _queue_headers(queue: QueueClient) -> dict[str, str]:
    return {"x-ms-version": queue.api_version}  # no Accept: the SDK sends none here


async def delete_message(queue: QueueClient, message_id: str, pop_receipt: str) -> None:
    """Delete a message under its pop receipt; errors as `QueueClient.delete_message`
    raises them (404 `ResourceNotFoundError`: gone, or the receipt is stale)."""
    url = _messages_url(queue, message_id, popreceipt=pop_receipt)
    response = await _send(queue, HttpRequest("DELETE", url, headers=_queue_headers(queue)))
    if response.status_code != 204:
        process_storage_error(_generated_error(response))


async def update_message(
    queue: QueueClient, message_id: str, pop_receipt: str, visibility_timeout: int
) -> tuple[str, datetime | None]:
    """Make a message invisible for `visibility_timeout` s more (content unchanged); the
    new pop receipt and next visible time, as `QueueClient.update_message` answers."""
    url = _messages_url(
        queue, message_id, popreceipt=pop_receipt, visibilitytimeout=str(int(visibility_timeout))
    )
    response = await _send(queue, HttpRequest("PUT", url, headers=_queue_headers(queue)))
    if response.status_code != 204:
        process_storage_error(_generated_error(response))
    visible = response.headers.get("x-ms-time-next-visible")
    return (
        str(response.headers.get("x-ms-popreceipt") or ""),
        parsedate_to_datetime(visible) if visible else None,
    )


@dataclass(frozen=True)
class ReceivedMessage:
    """What `QueueClient.receive_messages` yields (the fields callers use)."""

    id: str
    pop_receipt: str
    content: str | bytes  # as the client's decode policy returns it
    dequeue_count: int
    next_visible_on: datetime | None


async def receive_messages(
    queue: QueueClient, count: int, visibility_timeout: int
) -> list[ReceivedMessage]:
    """Up to `count` (1-32) messages, leased for `visibility_timeout` s, in ONE request.

    `receive_messages(max_messages=n)` of the SDK pages until it has n messages or an
    empty answer: a poll that finds one message costs two round trips. The service's own
    answer to one GET is a complete receive (fewer messages than asked is normal), so this
    makes one. Text is decoded by the client's own decode policy (none or text base64;
    any other policy, or client-side encryption, goes through the SDK's receive).
    """
    policy = queue._message_decode_policy
    if (
        queue.key_encryption_key is not None
        or queue.require_encryption
        or type(policy) not in (NoDecodePolicy, TextBase64DecodePolicy)
    ):
        return [
            ReceivedMessage(
                m.id, m.pop_receipt or "", m.content, int(m.dequeue_count or 0), m.next_visible_on
            )
            async for m in queue.receive_messages(
                messages_per_page=count, max_messages=count, visibility_timeout=visibility_timeout
            )
        ]
    url = _messages_url(
        queue, numofmessages=str(int(count)), visibilitytimeout=str(int(visibility_timeout))
    )
    headers = {"x-ms-version": queue.api_version, "Accept": "application/xml"}
    response = await _send(queue, HttpRequest("GET", url, headers=headers))
    if response.status_code != 200:
        process_storage_error(_generated_error(response))
    out = []
    for item in _xml(response).iter("QueueMessage"):
        out.append(
            ReceivedMessage(
                item.findtext("MessageId") or "",
                item.findtext("PopReceipt") or "",
                policy.decode(item.findtext("MessageText") or "", cast(Any, response)),
                int(item.findtext("DequeueCount") or 0),
                _xml_date(item, "TimeNextVisible"),
            )
        )
    return out
