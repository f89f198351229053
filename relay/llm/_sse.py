"""Server-sent events framing and chat-completion chunk reading, with no I/O (h11 style).

The SDK builds a pydantic `ChatCompletionChunk` per event; at tens of thousands of deltas a
second that was a fifth to a quarter of the host's event loop. Here an event's `data` is
parsed with `json.loads` and only the few fields the relay uses are read from the dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._events import Usage

__all__ = ["Chunk", "MalformedChunk", "SSEDecoder", "StreamErrorEvent", "read_chunk"]

_DONE = b"[DONE]"


class SSEDecoder:
    """Bytes of a `text/event-stream` in, the `data` of each complete event out.

    Per the SSE spec: lines end with LF, CRLF or CR; `data:` lines of one event are joined
    with LF; a blank line ends the event; comments and other fields (event, id, retry) are
    ignored, as the SDK ignores them for chat completions. An event cut off by the end of the
    body is dropped (the spec's rule), so a cut stream shows up as a missing finish.
    """

    __slots__ = ("_data", "_partial", "done")

    def __init__(self) -> None:
        self._partial = b""  # an unterminated last line, carried into the next feed
        self._data: list[bytes] = []
        self.done = False  # `data: [DONE]` seen; later events are dropped

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._partial + chunk if self._partial else chunk
        if b"\r" in buffer:
            # A trailing CR may be the first half of a CRLF split across reads: keep it.
            held = b"\r" if buffer.endswith(b"\r") else b""
            if held:
                buffer = buffer[:-1]
            lines = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            self._partial = lines.pop() + held
        else:
            lines = buffer.split(b"\n")
            self._partial = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                    self._data = []
                    if self.done:
                        continue
                    if data.startswith(_DONE):
                        self.done = True
                        continue
                    events.append(data)
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events


class MalformedChunk(ValueError):
    """An event whose data is not a JSON object."""


class StreamErrorEvent(Exception):
    """An event carrying `{"error": {...}}` in place of a chunk (the SDK's APIError case)."""

    def __init__(self, error: object) -> None:
        code = error.get("code") if isinstance(error, dict) else None
        self.code = code if isinstance(code, str) else None
        super().__init__("Azure OpenAI reported an error mid-stream")


@dataclass(frozen=True, slots=True)
class Chunk:
    """What the relay reads from one `chat.completion.chunk` (choice index 0 only)."""

    text: str | None
    finish_reason: str | None
    usage: Usage | None


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    values = (raw.get("prompt_tokens"), raw.get("completion_tokens"), raw.get("total_tokens"))
    if all(type(v) is int for v in values):
        return Usage(*values)  # type: ignore[arg-type]
    return None


def read_chunk(data: bytes) -> Chunk:
    """One event's data as a `Chunk`. Chunks with no choices are normal (Azure's
    `prompt_filter_results` first, `usage` last); unknown fields are ignored.

    Raises MalformedChunk for data that is not a JSON object, StreamErrorEvent for an error.
    """
    try:
        parsed: Any = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedChunk("Azure OpenAI sent a stream event that is not JSON") from exc
    if not isinstance(parsed, dict):
        raise MalformedChunk("Azure OpenAI sent a stream event that is not a JSON object")
    error = parsed.get("error")
    if error:
        raise StreamErrorEvent(error)
    text: str | None = None
    finish: str | None = None
    choices = parsed.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str) and content:
                    text = content if text is None else text + content
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                finish = reason
    usage = parsed.get("usage")
    return Chunk(text, finish, _usage(usage) if usage is not None else None)
