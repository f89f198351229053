"""The model request, opened while the attempt's claim is being written.

A run must not record or send anything before its claim is written (the claim's ETag guards
every flush), but nothing stops it from *asking the model* during that round trip: the claim
write and the model's time to first token then overlap instead of adding up. `Prefetch`
opens the stream and reads its first event in a task; `stream()` hands the run that event
and then the rest. A refused claim (canceled, superseded, finished) closes it unread, so the
only cost of a lost race is a model request cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..llm import StreamEvent
from ._types import LLMSource

__all__ = ["Prefetch"]


class Prefetch:
    """An `LLMSource` for one request, already under way (see the module docstring)."""

    def __init__(self, llm: LLMSource, request: Mapping[str, Any]) -> None:
        self._request = request
        self._stream = llm.stream(request)
        self._first: asyncio.Task[StreamEvent | None] = asyncio.create_task(self._read_first())
        self._used = False
        self._taken = False  # the first event was handed out

    async def _read_first(self) -> StreamEvent | None:
        try:
            return await anext(self._stream)
        except StopAsyncIteration:
            return None  # an empty stream

    def stream(self, request: Mapping[str, Any]) -> AsyncIterator[StreamEvent]:
        """The prefetched stream (once); `request` must be the one it was opened with."""
        if self._used or request is not self._request:
            raise RuntimeError("a prefetched stream serves its own request once")
        self._used = True
        return self

    def __aiter__(self) -> Prefetch:
        return self

    async def __anext__(self) -> StreamEvent:
        if not self._taken:
            self._taken = True
            first = await self._first
            if first is None:
                raise StopAsyncIteration
            return first
        return await anext(self._stream)

    async def aclose(self) -> None:
        """Stop the request (unread or half read) and close its stream; idempotent."""
        if not self._first.done():
            self._first.cancel()
            await asyncio.wait([self._first])
        if not self._first.cancelled():
            self._first.exception()  # retrieved: an unread error is not logged as lost
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
