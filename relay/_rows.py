"""Point reads and deletes on the groups table, shared by groups, invites and claims;
and the API's one time format for the times those rows hold."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

__all__ = ["delete_row", "get_row", "iso_time"]


async def get_row(table: TableClient, pk: str, rk: str) -> dict[str, Any] | None:
    """The entity as a dict with its ETag under `_etag` (for guarded writes), or None."""
    try:
        entity = await table.get_entity(pk, rk)
    except ResourceNotFoundError:
        return None
    row = dict(entity)
    row["_etag"] = entity.metadata["etag"]
    return row


async def delete_row(table: TableClient, pk: str, rk: str) -> None:
    """Delete if present: every caller wants the row gone, not to know whether it was there."""
    with contextlib.suppress(ResourceNotFoundError):
        await table.delete_entity(pk, rk)


def iso_time(epoch_seconds: float | None) -> str | None:
    """Epoch seconds as the API writes every time: ISO 8601, UTC, milliseconds, `Z`."""
    if epoch_seconds is None:
        return None
    when = datetime.fromtimestamp(float(epoch_seconds), UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
