"""Counters the emulator keeps for benchmarks and tests (`GET /_emulator/stats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats"]


@dataclass
class Stats:
    requests: int = 0  # every API request, answered or refused
    completions: int = 0  # chat completions answered 200 (streamed or not)
    streams: int = 0  # streamed responses started
    streams_completed: int = 0  # streams that reached `data: [DONE]`
    active_streams: int = 0
    tokens: int = 0  # content deltas written (streaming) or returned (non-streaming)
    faults: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)  # by status, faults included

    def reset(self) -> None:
        """Zero every counter but `active_streams` (those streams are still running)."""
        active = self.active_streams
        self.__dict__.update(Stats().__dict__)
        self.active_streams = active

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completions": self.completions,
            "streams": self.streams,
            "streams_completed": self.streams_completed,
            "active_streams": self.active_streams,
            "tokens": self.tokens,
            "faults": dict(self.faults),
            "errors": {str(k): v for k, v in sorted(self.errors.items())},
        }
