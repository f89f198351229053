"""Entity-group transactions without the `email` package: the SDK's requests, a lean body.

`TableClient.submit_transaction` builds its `multipart/mixed` body and parses the answer with
the standard library's `email` package, which costs about 2.5 ms of CPU per transaction on
this event loop (the first flush of every stream pays it before the first delta can be
sent). `submit_transaction` here produces the same bytes (a test compares them with the
SDK's body for the same boundaries) and reads the answer with a small parser:

- the operations are built by the SDK's own `TableBatchOperations` (URLs, entity JSON,
  If-Match, headers), and each part is serialized by azure-core's `HttpRequest.serialize`;
- the request goes through the table client's own pipeline (signing, retries, transport);
- an answer other than 202 is decoded by the SDK's error decoder; a failed operation inside
  the changeset raises `TableTransactionError` with its status and error code, as the SDK
  does (412 for a lost If-Match, which `relay.store._errors` maps to ConcurrencyConflict);
- success returns one `{"etag": ...}` per operation, as the SDK does.

It relies on three private names of azure-data-tables 12.x (`TableBatchOperations`, the
client's `_client` and `_primary_hostname`), pinned in constraints.txt; the test suite
exercises it against Azurite on every run.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from typing import Any

from azure.core.rest import HttpRequest
from azure.data.tables import RequestTooLargeError, TableTransactionError
from azure.data.tables._error import _decode_error
from azure.data.tables._table_batch import TableBatchOperations
from azure.data.tables.aio import TableClient

__all__ = ["multipart_body", "parse_parts", "submit_transaction"]

_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)
_CRLF = b"\r\n"


def multipart_body(requests: Iterable[HttpRequest], batch: str, changeset: str) -> bytes:
    """The `$batch` body: one changeset holding every request, as azure-core writes it."""
    out = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode()]
    for index, request in enumerate(requests):
        out.append(
            f"--{changeset}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: {index}\r\n\r\n".encode()
        )
        out.append(request.serialize())
        out.append(_CRLF)
    out.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n".encode())
    return b"".join(out)


def _split(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts between `--boundary` delimiters (preamble and epilogue dropped)."""
    chunks = body.split(b"--" + boundary)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        parts.append(chunk.removeprefix(_CRLF).removesuffix(_CRLF))
    return parts


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(_CRLF):
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


def parse_parts(body: bytes, boundary: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """(status, lower-cased headers, body) of every `application/http` response, in order,
    nested changesets included."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    for part in _split(body, boundary):
        head, _, rest = part.partition(_CRLF + _CRLF)
        nested = _BOUNDARY.search(head) if b"multipart/mixed" in head.lower() else None
        if nested is not None:
            out.extend(parse_parts(rest, nested.group(1)))
            continue
        status_block, _, payload = rest.partition(_CRLF + _CRLF)
        status_line, _, header_block = status_block.partition(_CRLF)
        fields = status_line.split(b" ", 2)
        if len(fields) < 2 or not fields[1].isdigit():
            raise ValueError("a $batch answer part is not an HTTP response")
        out.append((int(fields[1]), _headers(header_block), payload.strip(_CRLF)))
    return out


def _part_error(status: int, headers: Mapping[str, str], payload: bytes) -> TableTransactionError:
    """The SDK's error for a failed operation: message and code from the OData error."""
    code, message = None, f"Operation returned an invalid status {status}"
    try:
        error = json.loads(payload)["odata.error"]
        code = str(error.get("code") or "") or None
        value = error.get("message", {})
        message = str(value.get("value") if isinstance(value, dict) else value) or message
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    exc = TableTransactionError(message=f"{message}\nErrorCode:{code}" if code else message)
    exc.status_code = status
    exc.error_code = code  # type: ignore[attr-defined]  # as the SDK's decoder sets it
    return exc


def _answer_error(response: Any) -> Exception:
    """The SDK's error for a refused `$batch` request as a whole."""
    if response.status_code == 413:
        return _decode_error(  # type: ignore[no-untyped-call, no-any-return]
            response,
            error_message="The transaction request was too large",
            error_type=RequestTooLargeError,
        )
    return _decode_error(response)  # type: ignore[no-untyped-call, no-any-return]


async def submit_transaction(
    table: TableClient, operations: Iterable[tuple[Any, ...]]
) -> list[dict[str, str]]:
    """Commit `operations` (the SDK's tuples) as one transaction; see the module docstring."""
    built = TableBatchOperations(
        config=table._client._config,
        endpoint=f"{table.scheme}://{table._primary_hostname}",
        table_name=table.table_name,
        is_cosmos_endpoint=table._cosmos_endpoint,
    )
    for operation in operations:
        built.add_operation(operation)
    if not built.requests:
        return []
    date = formatdate(time.time(), usegmt=True)
    for request in built.requests:  # what the SDK's StorageHeadersPolicy adds to each part
        request.headers["x-ms-date"] = date
        request.headers["Date"] = date
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    request = HttpRequest(
        "POST",
        f"{table.scheme}://{table._primary_hostname}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=multipart_body(built.requests, batch, changeset),
    )
    # stream=True: the pipeline's ContentDecodePolicy would try to decode multipart/mixed.
    response = await table._client._client.send_request(request, stream=True)
    await response.read()
    if response.status_code != 202:
        raise _answer_error(response)
    found = _BOUNDARY.search(response.headers.get("Content-Type", "").encode("latin-1"))
    if found is None:
        raise TableTransactionError(message="a $batch answer without a multipart boundary")
    try:
        parts = parse_parts(response.content, found.group(1))
    except ValueError as exc:
        raise TableTransactionError(message=f"an unreadable $batch answer: {exc}") from exc
    failed = next((p for p in parts if not 200 <= p[0] < 300), None)
    if failed is not None:
        if failed[0] == 413:
            raise RequestTooLargeError(message="The transaction request was too large")
        raise _part_error(*failed)
    return [{"etag": headers["etag"]} if "etag" in headers else {} for _, headers, _ in parts]
