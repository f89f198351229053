"""relay.store._direct with an Entra token credential: requests go through the client's
pipeline (Bearer token, x-ms-date, retries), and are the SDK's own requests for the same
calls. A local HTTP server stands in for the service (https URLs are sent to it by the
transport, after the pipeline's policies, so the token policy sees an https URL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from azure.core import MatchConditions
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceModifiedError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from relay.store import _direct, _direct_queue

pytestmark = pytest.mark.asyncio

TABLES = "https://acct.table.core.windows.net"
QUEUES = "https://acct.queue.core.windows.net"
STALE = "W/\"datetime'2020-01-01T00%3A00%3A00Z'\""
NEW_ETAG = "W/\"datetime'2026-11-25T12%3A00%3A00.0000000Z'\""
SENT = (
    '<?xml version="1.0" encoding="UTF-8"?><QueueMessagesList><QueueMessage>'
    "<MessageId>m-1</MessageId><InsertionTime>Wed, 25 Nov 2026 12:00:00 GMT</InsertionTime>"
    "<ExpirationTime>Wed, 02 Dec 2026 12:00:00 GMT</ExpirationTime>"
    "<PopReceipt>AAA&amp;B</PopReceipt>"
    "<TimeNextVisible>Wed, 25 Nov 2026 12:00:30 GMT</TimeNextVisible>"
    "</QueueMessage></QueueMessagesList>"
)

RECEIVED = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><QueueMessagesList><QueueMessage>'
    "<MessageId>m-2</MessageId><InsertionTime>Wed, 25 Nov 2026 12:00:00 GMT</InsertionTime>"
    "<ExpirationTime>Wed, 02 Dec 2026 12:00:00 GMT</ExpirationTime>"
    "<PopReceipt>R&amp;2</PopReceipt>"
    "<TimeNextVisible>Wed, 25 Nov 2026 12:00:30 GMT</TimeNextVisible>"
    "<DequeueCount>3</DequeueCount>"
    "<MessageText>{&quot;a&quot;: &quot;&lt;x&gt;&quot;}</MessageText>"
    "</QueueMessage></QueueMessagesList>"
)


class FakeCredential:
    """An async token credential: a fixed token, the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Service:
    url: str
    seen: list[Seen] = field(default_factory=list)


async def _answer(request: web.Request, seen: list[Seen]) -> web.Response:
    seen.append(
        Seen(
            request.method,
            request.path_qs.split("?")[0],
            request.query_string,
            dict(request.headers),
            await request.read(),
        )
    )
    if "/garbled/" in request.path:  # a broken proxy or a hostile endpoint answers
        return web.Response(status=200 if request.method == "GET" else 201, text="<Queue<<")
    if request.path.endswith("/messages") and request.method == "GET":
        return web.Response(status=200, text=RECEIVED, content_type="application/xml")
    if request.path.endswith("/messages"):
        return web.Response(status=201, text=SENT, content_type="application/xml")
    if "/messages/" in request.path:  # delete (204) or renew (204 with the new receipt)
        return web.Response(
            status=204,
            headers={
                "x-ms-popreceipt": "new-receipt",
                "x-ms-time-next-visible": "Wed, 25 Nov 2026 12:00:30 GMT",
            },
        )
    if request.headers.get("If-Match") == STALE:
        body = '{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"value":"no"}}}'
        return web.Response(
            status=412,
            text=body,
            headers={"x-ms-error-code": "UpdateConditionNotSatisfied"},
            content_type="application/json",
        )
    if "boom" in request.path:
        return web.Response(status=503, text="", headers={"x-ms-error-code": "ServerBusy"})
    return web.Response(status=204, headers={"ETag": NEW_ETAG})


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    seen: list[Seen] = []

    async def handle(request: web.Request) -> web.Response:
        return await _answer(request, seen)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Service(f"http://127.0.0.1:{port}", seen)
    finally:
        await runner.cleanup()


class Redirect(AioHttpTransport):
    """Sends the pipeline's https requests to the local server (after signing)."""

    def __init__(self, target: str) -> None:
        super().__init__(use_env_settings=False)
        self._target = target

    async def send(self, request: Any, **kwargs: Any) -> Any:
        for origin in (TABLES, QUEUES):
            request.url = request.url.replace(origin, self._target)
        return await super().send(request, **kwargs)


# Headers that differ per request (or by design: Prefer asks for no echo of the entity).
_VOLATILE = {"authorization", "x-ms-date", "date", "x-ms-client-request-id", "prefer"}


def _shape(seen: Seen) -> tuple[Any, ...]:
    headers = {k.lower(): v for k, v in seen.headers.items() if k.lower() not in _VOLATILE}
    return seen.method, seen.path, seen.query, headers, seen.body


async def test_table_writes_carry_the_bearer_token_and_equal_the_sdk_requests(
    service: Service,
) -> None:
    credential = FakeCredential()
    table = TableClient(TABLES, "jobs", credential=credential, transport=Redirect(service.url))  # type: ignore[arg-type]
    entity = {"PartitionKey": "p'1", "RowKey": "r é", "n": 1, "s": "x", "b": True}
    async with table:
        pairs = [
            (table.upsert_entity(entity), _direct.upsert_entity(table, entity)),
            (
                table.upsert_entity(entity, mode=UpdateMode.REPLACE),
                _direct.upsert_entity(table, entity, replace=True),
            ),
            (
                table.update_entity(
                    entity, etag=NEW_ETAG, match_condition=MatchConditions.IfNotModified
                ),
                _direct.update_entity(table, entity, NEW_ETAG),
            ),
            (table.delete_entity("p'1", "r é"), _direct.delete_entity(table, "p'1", "r é")),
        ]
        for by_sdk, by_direct in pairs:
            await by_sdk
            assert await by_direct in (NEW_ETAG, None)
    assert len(service.seen) == 8
    for seen in service.seen:
        assert seen.headers["Authorization"] == "Bearer fake-token"
        assert "x-ms-date" in seen.headers
    for sdk_seen, direct_seen in zip(service.seen[::2], service.seen[1::2], strict=True):
        assert _shape(direct_seen) == _shape(sdk_seen)
    assert credential.scopes and all("storage.azure.com" in s[0] for s in credential.scopes)


async def test_create_asks_for_no_echo_and_otherwise_equals_the_sdk_request(
    service: Service,
) -> None:
    table = TableClient(
        TABLES, "jobs", credential=FakeCredential(), transport=Redirect(service.url)
    )  # type: ignore[arg-type]
    entity = {"PartitionKey": "p", "RowKey": "r", "n": 1}
    async with table:
        await table.create_entity(entity)
        assert await _direct.create_entity(table, entity) == NEW_ETAG
    sdk_seen, direct_seen = service.seen
    assert direct_seen.headers["Prefer"] == "return-no-content"
    assert direct_seen.headers["Authorization"] == "Bearer fake-token"
    assert _shape(direct_seen) == _shape(sdk_seen)


async def test_a_lost_if_match_and_a_server_error_raise_as_the_sdk(service: Service) -> None:
    table = TableClient(
        TABLES, "jobs", credential=FakeCredential(), transport=Redirect(service.url)
    )  # type: ignore[arg-type]
    entity = {"PartitionKey": "p", "RowKey": "r", "n": 1}
    async with table:
        with pytest.raises(ResourceModifiedError) as by_sdk:
            await table.update_entity(
                entity, etag=STALE, match_condition=MatchConditions.IfNotModified
            )
        with pytest.raises(ResourceModifiedError) as by_direct:
            await _direct.update_entity(table, entity, STALE)
        assert by_direct.value.status_code == by_sdk.value.status_code == 412
        assert by_direct.value.error_code == by_sdk.value.error_code  # type: ignore[attr-defined]

    # 503 is retried by the pipeline's retry policy (no backoff here), then raised as the
    # SDK raises it: HttpResponseError with the service's error code.
    busy = {"PartitionKey": "p", "RowKey": "boom", "n": 1}
    retrying = TableClient(
        TABLES,
        "jobs",
        credential=FakeCredential(),  # type: ignore[arg-type]
        transport=Redirect(service.url),
        retry_total=2,
        retry_backoff_factor=0,
    )
    async with retrying:
        with pytest.raises(HttpResponseError) as by_sdk_503:
            await retrying.upsert_entity(busy)
        before = len(service.seen)
        with pytest.raises(HttpResponseError) as by_direct_503:
            await _direct.upsert_entity(retrying, busy)
    assert len(service.seen) - before == 3  # the first try and two retries
    assert type(by_direct_503.value) is type(by_sdk_503.value)
    assert by_direct_503.value.status_code == 503
    assert by_direct_503.value.error_code == by_sdk_503.value.error_code == "ServerBusy"  # type: ignore[attr-defined]


def _bearer_queue(service: Service, name: str = "jobs", **policies: Any) -> QueueClient:
    """A queue client signing with a (fake) Entra token, talking to the recording server."""
    return QueueClient(
        QUEUES,
        name,
        credential=FakeCredential(),  # type: ignore[arg-type]
        transport=Redirect(service.url),
        **policies,
    )


async def test_queue_send_carries_the_bearer_token_and_equals_the_sdk_request(
    service: Service,
) -> None:
    queue = _bearer_queue(service, message_encode_policy=TextBase64EncodePolicy())
    async with queue:
        by_sdk = await queue.send_message('{"jobId":"j"}', visibility_timeout=30)
        by_direct = await _direct_queue.send_message(queue, '{"jobId":"j"}', visibility_timeout=30)
    sdk_seen, direct_seen = service.seen
    assert direct_seen.headers["Authorization"] == "Bearer fake-token"
    assert _shape(direct_seen) == _shape(sdk_seen)
    assert by_direct.id == by_sdk.id == "m-1"
    assert by_direct.pop_receipt == by_sdk.pop_receipt == "AAA&B"
    assert by_direct.next_visible_on == by_sdk.next_visible_on
    assert by_direct.inserted_on == by_sdk.inserted_on
    assert by_direct.expires_on == by_sdk.expires_on


async def test_queue_delete_and_renew_equal_the_sdk_requests(service: Service) -> None:
    queue = _bearer_queue(service)
    receipt = "AgAAAAMAAAAAAAAA+/x=="  # base64: '+', '/' and '=' must be escaped
    async with queue:
        await queue.update_message("m-1", receipt, visibility_timeout=30)
        await _direct_queue.update_message(queue, "m-1", receipt, 30)
        await queue.delete_message("m-1", receipt)
        await _direct_queue.delete_message(queue, "m-1", receipt)
    assert [s.method for s in service.seen] == ["PUT", "PUT", "DELETE", "DELETE"]
    for sdk_seen, direct_seen in zip(service.seen[::2], service.seen[1::2], strict=True):
        assert direct_seen.headers["Authorization"] == "Bearer fake-token"
        sdk_shape, direct_shape = _shape(sdk_seen), _shape(direct_seen)
        # The same query parameters (order aside: a query string is a set of pairs).
        assert sorted(direct_shape[2].split("&")) == sorted(sdk_shape[2].split("&"))
        assert direct_shape[:2] + direct_shape[3:] == sdk_shape[:2] + sdk_shape[3:]


async def test_queue_receive_is_the_sdk_first_request_and_reads_the_same(
    service: Service,
) -> None:
    queue = _bearer_queue(service)
    async with queue:
        by_sdk = [
            m
            async for m in queue.receive_messages(
                messages_per_page=1, max_messages=1, visibility_timeout=30
            )
        ]
        sdk_requests = len(service.seen)
        by_direct = await _direct_queue.receive_messages(queue, 1, 30)
    assert len(service.seen) == sdk_requests + 1  # one GET
    sdk_seen, direct_seen = service.seen[0], service.seen[-1]
    assert direct_seen.headers["Authorization"] == "Bearer fake-token"
    assert _shape(direct_seen) == _shape(sdk_seen)
    (m,) = by_sdk
    (d,) = by_direct
    assert (d.id, d.pop_receipt, d.content, d.dequeue_count, d.next_visible_on) == (
        m.id, m.pop_receipt, m.content, m.dequeue_count, m.next_visible_on,
    )  # fmt: skip
    assert d.content == '{"a": "<x>"}' and d.pop_receipt == "R&2"


async def test_an_unreadable_queue_answer_is_a_service_error_not_a_parser_crash(
    service: Service,
) -> None:
    async with _bearer_queue(service, "garbled") as queue:
        with pytest.raises(HttpResponseError, match="unreadable queue answer"):
            await _direct_queue.send_message(queue, "x")
        with pytest.raises(HttpResponseError, match="unreadable queue answer"):
            await _direct_queue.receive_messages(queue, 1, 30)
