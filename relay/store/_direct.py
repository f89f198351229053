"""Single storage calls built here and sent through the SDK client's own pipeline.

`TableClient.upsert_entity` and friends spend about 0.3 ms of CPU per call (of ~0.8) in
the generated layer: kwargs plumbing, request builders, the msrest-style serializer and
deserializer, `distributed_trace` and response-header deserialization. On a CPU-serial
2-core machine that is on the path of every job several times over. The functions here
build the same HTTP request the SDK builds (method, URL, headers, entity JSON from the
SDK's own serializer) and send it with the client's own `send_request`, i.e. through the
same pipeline: shared-key or Entra token signing, `x-ms-date`, retries, transport. Errors
are raised by the SDK's own code paths (`map_error` with the generated error map, then the
SDK's decoder), so a caller sees exactly the exception the SDK method raises: 409
`ResourceExistsError`, 404 `ResourceNotFoundError`, 412 `ResourceModifiedError` with
`error_code` set, `HttpResponseError` otherwise (`relay.store._errors` maps them).

Differences from the SDK methods, on purpose: `create_entity` asks for
`Prefer: return-no-content` (the service answers 204 with the ETag instead of echoing the
entity back), and every function returns only what callers use (the ETag). No
`distributed_trace` span is made. The queue calls are in `relay.store._direct_queue`.

Private names relied on (azure-data-tables 12.7, pinned in constraints.txt; the tests
compare against the SDK on Azurite on every run): `TableClient._client._client` (the
pipeline client), `._primary_hostname`,
  `azure.data.tables._serialize._add_entity_properties` / `_prepare_key` /
  `_parameter_filter_substitution`,
  `azure.data.tables._error._decode_error` / `_process_table_error` /
  `_validate_key_values` / `_validate_tablename_error`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, NoReturn
from urllib.parse import quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    map_error,
)
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.data.tables._error import (
    _decode_error,
    _process_table_error,
    _validate_key_values,
    _validate_tablename_error,
)
from azure.data.tables._serialize import (
    _add_entity_properties,
    _parameter_filter_substitution,
    _prepare_key,
)
from azure.data.tables.aio import TableClient

__all__ = [
    "create_entity",
    "delete_entity",
    "query_rows",
    "update_entity",
    "upsert_entity",
]

# The generated operations' error map (tables and queues alike), applied before decoding.
_ERROR_MAP: dict[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}
_DSV = "3.0"  # DataServiceVersion, as the SDK sends it


def _generated_error(response: AsyncHttpResponse) -> HttpResponseError:
    """The exception the generated operation raises for a failed answer, before the
    client method's own handling (`map_error` raises the mapped types itself)."""
    try:
        map_error(status_code=response.status_code, response=response, error_map=_ERROR_MAP)
    except HttpResponseError as mapped:
        return mapped
    return HttpResponseError(response=response)


def _raise_table_error(table: TableClient, response: AsyncHttpResponse) -> NoReturn:
    """As `update_entity`/`upsert_entity`/`delete_entity` do: decode, then raise."""
    _process_table_error(_generated_error(response), table_name=table.table_name)  # type: ignore[no-untyped-call]
    raise AssertionError("unreachable: _process_table_error always raises")  # pragma: no cover


def _entity_url(table: TableClient, partition_key: str, row_key: str) -> str:
    pk = quote(_prepare_key(partition_key), safe="")
    rk = quote(_prepare_key(row_key), safe="")
    name = quote(table.table_name, safe="")
    return f"{table.scheme}://{table._primary_hostname}/{name}(PartitionKey='{pk}',RowKey='{rk}')"


def _body(entity: dict[str, Any] | Any) -> bytes:
    # The SDK's own serializer: the same odata type annotations as TableClient's methods.
    return json.dumps(_add_entity_properties(entity)).encode("utf-8")


async def _send(client: Any, request: HttpRequest) -> AsyncHttpResponse:
    """Through the client's own pipeline (a table or queue client: both keep it here)."""
    response: AsyncHttpResponse = await client._client._client.send_request(request)
    return response


async def create_entity(table: TableClient, entity: dict[str, Any]) -> str:
    """Insert `entity`; its ETag. `ResourceExistsError` if the keys exist (no error_code
    attribute, exactly as `TableClient.create_entity` raises it)."""
    body = _body(entity)
    request = HttpRequest(
        "POST",
        f"{table.scheme}://{table._primary_hostname}/{quote(table.table_name, safe='')}",
        headers={
            "Content-Type": "application/json;odata=nometadata",
            "x-ms-version": table.api_version,
            "DataServiceVersion": _DSV,
            "Accept": "application/json;odata=minimalmetadata",
            "Prefer": "return-no-content",
        },
        content=body,
    )
    response = await _send(table, request)
    if response.status_code in (201, 204):
        return str(response.headers["ETag"])
    # As create_entity: decode to check key/table-name mistakes, raise the generated error.
    error = _generated_error(response)
    decoded = _decode_error(response, error.message)  # type: ignore[no-untyped-call]
    _validate_key_values(decoded, entity.get("PartitionKey"), entity.get("RowKey"))  # type: ignore[no-untyped-call]
    _validate_tablename_error(decoded, table.table_name)  # type: ignore[no-untyped-call]
    raise error


async def _write(table: TableClient, method: str, entity: dict[str, Any], etag: str | None) -> str:
    headers = {
        "Content-Type": "application/json",
        "x-ms-version": table.api_version,
        "DataServiceVersion": _DSV,
        "Accept": "application/json",
    }
    if etag is not None:
        headers["If-Match"] = etag
    url = _entity_url(table, entity["PartitionKey"], entity["RowKey"])
    response = await _send(table, HttpRequest(method, url, headers=headers, content=_body(entity)))
    if response.status_code == 204:
        return str(response.headers["ETag"])
    _raise_table_error(table, response)


async def upsert_entity(
    table: TableClient, entity: dict[str, Any], *, replace: bool = False
) -> str:
    """Insert or merge (or replace, `replace=True`) without a condition; the new ETag."""
    return await _write(table, "PUT" if replace else "PATCH", entity, None)


async def update_entity(
    table: TableClient, entity: dict[str, Any], etag: str, *, replace: bool = False
) -> str:
    """Merge (or replace) only if the entity's ETag is still `etag` (If-Match); the new
    ETag. A lost condition raises `ResourceModifiedError` (412), a missing entity
    `ResourceNotFoundError`, as `update_entity(match_condition=IfNotModified)` does."""
    return await _write(table, "PUT" if replace else "PATCH", entity, etag)


async def delete_entity(table: TableClient, partition_key: str, row_key: str) -> None:
    """Delete unconditionally (If-Match *); an absent entity is not an error (the SDK's
    `delete_entity` also returns on 404)."""
    request = HttpRequest(
        "DELETE",
        _entity_url(table, partition_key, row_key),
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": _DSV,
            "Accept": "application/json;odata=minimalmetadata",
            "If-Match": "*",
        },
    )
    response = await _send(table, request)
    if response.status_code in (204, 404):
        return
    _raise_table_error(table, response)


async def query_rows(
    table: TableClient,
    query_filter: str,
    *,
    parameters: dict[str, Any] | None = None,
    select: list[str] | None = None,
    per_page: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The rows matching `query_filter` (parameters substituted by the SDK's own code), as
    the service's JSON: strings, int32s, booleans and doubles as JSON values, other types
    as their wire strings (no TableEntity conversion). Pages are followed through the
    continuation headers, as `query_entities` does. For counting and reading plain
    properties; anything typed goes through `TableClient.query_entities`. `per_page` is
    `$top` (the service's own page size, 1,000, when None)."""
    params = {"$filter": _parameter_filter_substitution(parameters, query_filter)}
    if select:
        params["$select"] = ",".join(select)
    if per_page is not None:
        params["$top"] = str(per_page)
    base = f"{table.scheme}://{table._primary_hostname}/{quote(table.table_name, safe='')}()"
    headers = {
        "x-ms-version": table.api_version,
        "DataServiceVersion": _DSV,
        "Accept": "application/json;odata=minimalmetadata",
    }
    while True:
        # Every value percent-encoded here, as the generated code's serializer does:
        # `HttpRequest(params=...)` would append them raw ('+', '#', '&', '%' would change
        # the filter or cut it short).
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
        url = f"{base}?{query}"
        response = await _send(table, HttpRequest("GET", url, headers=headers))
        if response.status_code != 200:
            _raise_table_error(table, response)
        for row in response.json().get("value", ()):
            yield row
        next_pk = response.headers.get("x-ms-continuation-NextPartitionKey")
        next_rk = response.headers.get("x-ms-continuation-NextRowKey")
        if not next_pk and not next_rk:
            return
        params.pop("NextPartitionKey", None)
        params.pop("NextRowKey", None)
        if next_pk:
            params["NextPartitionKey"] = next_pk
        if next_rk:
            params["NextRowKey"] = next_rk
