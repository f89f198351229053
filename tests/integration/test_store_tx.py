"""relay.store._tx: its body equals azure-core's; its answer parser; against Azurite."""

from __future__ import annotations

import pytest
from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableServiceClient

from relay.store._tx import multipart_body, parse_parts, submit_transaction

CONN = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def _requests() -> list[HttpRequest]:
    from azure.data.tables._table_batch import TableBatchOperations

    table = TableServiceClient.from_connection_string(CONN).get_table_client("t")
    ops = TableBatchOperations(
        config=table._client._config,
        endpoint=f"{table.scheme}://{table._primary_hostname}",
        table_name=table.table_name,
        is_cosmos_endpoint=False,
    )
    ops.add_operation(("upsert", {"PartitionKey": "p", "RowKey": "e1", "text": 'hé"\n<'},
                       {"mode": UpdateMode.REPLACE}))  # fmt: skip
    ops.add_operation(("update", {"PartitionKey": "p", "RowKey": "rec", "n": 2},
                       {"mode": UpdateMode.MERGE, "etag": 'W/"datetime\'x\'"',
                        "match_condition": MatchConditions.IfNotModified}))  # fmt: skip
    ops.add_operation(("delete", {"PartitionKey": "p", "RowKey": "old"}))
    ops.add_operation(("create", {"PartitionKey": "p", "RowKey": "new", "n": 1}))
    for request in ops.requests:
        request.headers["x-ms-date"] = request.headers["Date"] = "Wed, 25 Nov 2026 12:00:00 GMT"
    return list(ops.requests)


def test_the_body_is_byte_for_byte_what_azure_core_writes() -> None:
    requests = _requests()
    changeset = HttpRequest("POST", "")
    changeset.set_multipart_mixed(*requests, boundary="changeset_c")
    outer = HttpRequest("POST", "http://127.0.0.1:9/devstoreaccount1/$batch")
    outer.set_multipart_mixed(changeset, enforce_https=False, boundary="batch_b")
    outer.prepare_multipart_body()
    assert multipart_body(_requests(), "batch_b", "changeset_c") == outer.content


def test_parts_of_a_nested_changeset_answer_are_read_in_order() -> None:
    body = (
        b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n"
        b"\r\n--changesetresponse_2\r\nContent-Type: application/http\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n"
        b'ETag: W/"a"\r\n\r\n\r\n--changesetresponse_2\r\nContent-Type: application/http\r\n'
        b"\r\nHTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n"
        b'{"odata.error":{"code":"UpdateConditionNotSatisfied"}}\r\n'
        b"--changesetresponse_2--\r\n--batchresponse_1--\r\n"
    )
    parts = parse_parts(body, b"batchresponse_1")
    assert [(status, headers.get("etag")) for status, headers, _ in parts] == [
        (204, 'W/"a"'),
        (412, None),
    ]
    assert parts[1][2] == b'{"odata.error":{"code":"UpdateConditionNotSatisfied"}}'


def test_a_part_that_is_not_a_response_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_parts(b"--b\r\nContent-Type: application/http\r\n\r\nnonsense\r\n--b--", b"b")


async def test_against_azurite_etags_and_a_lost_if_match(storage_connection_string: str) -> None:
    async with TableServiceClient.from_connection_string(storage_connection_string) as service:
        table = service.get_table_client("txtest")
        await service.create_table_if_not_exists("txtest")
        meta = await table.upsert_entity({"PartitionKey": "p", "RowKey": "rec", "n": 1})
        guard = {"mode": UpdateMode.MERGE, "etag": meta["etag"],
                 "match_condition": MatchConditions.IfNotModified}  # fmt: skip
        ops = [("upsert", {"PartitionKey": "p", "RowKey": "e1", "text": "hé"}),
               ("update", {"PartitionKey": "p", "RowKey": "rec", "n": 2}, guard)]  # fmt: skip
        result = await submit_transaction(table, ops)
        rec = await table.get_entity("p", "rec")
        assert rec["n"] == 2 and result[-1]["etag"] == rec.metadata["etag"]
        assert (await table.get_entity("p", "e1"))["text"] == "hé"
        with pytest.raises(TableTransactionError) as lost:
            await submit_transaction(table, ops)  # the guard's etag is stale now
        assert lost.value.status_code == 412
        assert lost.value.error_code == "UpdateConditionNotSatisfied"  # type: ignore[attr-defined]
        assert (await table.get_entity("p", "rec"))["n"] == 2
        assert await submit_transaction(table, []) == []
