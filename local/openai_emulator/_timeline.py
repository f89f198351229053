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

__all__ = ["Timeline", "stream_key"]


def stream_key(messages: Sequence[Any]) -> str:
    """A digest of the last user message's text content ('' when there is none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else repr(content)
            return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return ""


class Timeline:
    """Per stream: its key, start time and `[time, deltas written so far]` after each write."""

    def __init__(self, limit: int = 20_000) -> None:
        self._streams: deque[dict[str, Any]] = deque(maxlen=limit)

    def open(self, key: str) -> list[tuple[float, int]]:
        marks: list[tuple[float, int]] = []
        self._streams.append({"key": key, "start": time.time(), "marks": marks})
        return marks

    def drain(self) -> list[dict[str, Any]]:
        """Every stream recorded since the last drain (running ones included), then forget."""
        out = [
            {"key": s["key"], "start": s["start"], "marks": [list(m) for m in s["marks"]]}
            for s in self._streams
        ]
        self._streams.clear()
        return out
