"""azure-core errors mapped to `relay.errors`, in this one place, re-raised `from exc`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..errors import ConcurrencyConflict, JobNotFound, StoreError

__all__ = ["is_precondition_failure", "mapped_errors"]


def is_precondition_failure(exc: BaseException) -> bool:
    """An If-Match guard lost (412), alone or inside an entity-group transaction."""
    if isinstance(exc, ResourceModifiedError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code == 412


def _map(exc: AzureError) -> StoreError:
    if is_precondition_failure(exc):
        return ConcurrencyConflict("the record changed since it was read")
    if isinstance(exc, ResourceNotFoundError):
        return JobNotFound("no such job")
    if isinstance(exc, ResourceExistsError):
        return ConcurrencyConflict("the entity already exists")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return StoreError("table storage is unreachable")
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or "unknown"
        return StoreError(f"table storage answered {exc.status_code} ({code})")
    return StoreError(f"table storage failed ({type(exc).__name__})")


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Run a block of storage calls; any azure-core error leaves it as a `StoreError`."""
    try:
        yield
    except AzureError as exc:
        raise _map(exc) from exc
