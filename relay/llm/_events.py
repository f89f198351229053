"""What an Azure OpenAI stream yields, in the core's own terms (no openai types leak out)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamEnd", "StreamEvent", "TextDelta", "Usage"]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class TextDelta:
    """A non-empty piece of the answer's text, in order."""

    text: str


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a finished answer: why it stopped, and usage when the service sent it."""

    finish_reason: str
    usage: Usage | None


StreamEvent = TextDelta | StreamEnd
