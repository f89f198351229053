"""An opt-in record of when each streamed content delta left the emulator (wall clock).

A benchmark compares these stamps with the time each delta's text reaches a client at the
far end of a pipeline, which gives the delay the pipeline adds per delta. Wall-clock time
(`time.time()`) is used because the consumer runs in another process on the same machine.
Streams are keyed by a digest of the last user message (what a caller can steer through an
app that forwards only the messages); the record is bounded so a long soak cannot grow it.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

__all__ = ["StreamMarks", "Timeline", "stream_key"]


def stream_key(messages: Sequence[Any]) -> str:
    """A digest of the last user message's text content ('' when there is none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else repr(content)
            return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return ""


class StreamMarks:
    """One stream's stamps: `(wall time, deltas written so far)` after each write."""

    __slots__ = ("done", "key", "marks", "start")

    def __init__(self, key: str) -> None:
        self.key = key
        self.start = time.time()
        self.marks: list[tuple[float, int]] = []
        self.done = False  # set when the response ends, however it ends

    def add(self, count: int) -> None:
        self.marks.append((time.time(), count))


class Timeline:
    """The streams recorded since the last drain; running ones stay until they end."""

    def __init__(self, limit: int = 20_000) -> None:
        self._streams: deque[StreamMarks] = deque(maxlen=limit)

    def open(self, key: str) -> StreamMarks:
        record = StreamMarks(key)
        self._streams.append(record)
        return record

    def drain(self) -> list[dict[str, Any]]:
        """Every finished stream not drained yet; forget those, keep the running ones."""
        done = [s for s in self._streams if s.done]
        running = [s for s in self._streams if not s.done]
        self._streams.clear()
        self._streams.extend(running)
        return [{"key": s.key, "start": s.start, "marks": [list(m) for m in s.marks]} for s in done]
