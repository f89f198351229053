"""Deterministic answer text: English-like words split into token-sized deltas.

Pure functions, no I/O. The token stream is an endless sequence drawn from a RNG seeded
with a hash of the request's messages (emulator markers stripped) and its `seed`
option, so an answer of N tokens is always the first N tokens of the same stream: a
shorter limit gives a prefix of a longer answer, and a retried request gets the same text.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from ._control import strip_marker

__all__ = ["prompt_tokens", "request_seed", "token_stream", "tokens_for"]

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "at",
    "or",
    "an",
    "which",
    "stream",
    "answer",
    "token",
    "model",
    "queue",
    "browser",
    "message",
    "batch",
    "service",
    "function",
    "durable",
    "orchestration",
    "activity",
    "request",
    "response",
    "client",
    "server",
    "delta",
    "sequence",
    "attempt",
    "retry",
    "latency",
    "throughput",
    "window",
    "buffer",
    "signal",
    "record",
    "catch",
    "reload",
    "connection",
    "group",
    "user",
    "simple",
    "careful",
    "steady",
    "quiet",
    "bright",
    "early",
    "later",
    "often",
    "rarely",
    "clearly",
    "quickly",
    "because",
    "although",
    "however",
    "therefore",
    "meanwhile",
    "instead",
    "usually",
    "perhaps",
    "together",
    "reliable",
    "ordered",
    "partial",
    "complete",
    "transient",
    "durable",
    "patient",
    "eventual",
    "internationalization",
    "configuration",
    "acknowledgement",
]
# Words with multi-byte characters, mixed in now and then.
_ACCENTED = ("café", "naïve", "résumé", "façade", "coördinate", "über", "señor", "déjà vu")
_EMOJI = ("🙂", "🚀", "✨", "📦", "✅")
_PIECE = 4  # characters per token piece when a word is split


def _canonical_content(content: Any) -> Any:
    if isinstance(content, str):
        return strip_marker(content)
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append({"type": "text", "text": strip_marker(str(part.get("text", "")))})
            else:
                parts.append(part)
        return parts
    return content


def request_seed(messages: Sequence[Any], seed: int | None = None) -> int:
    """A 64-bit seed from the messages (markers stripped) and the request's `seed`."""
    canon = [
        {
            "role": m.get("role"),
            "content": _canonical_content(m.get("content")),
            "name": m.get("name"),
        }
        for m in messages
        if isinstance(m, dict)
    ]
    blob = json.dumps(
        {"messages": canon, "seed": seed}, sort_keys=True, ensure_ascii=False, default=str
    )
    return int.from_bytes(hashlib.sha256(blob.encode("utf-8")).digest()[:8], "big")


def _split_word(word: str) -> list[str]:
    """Split one word (with its leading space, if any) into ~4-character pieces."""
    if len(word) <= _PIECE + 2:
        return [word]
    head = _PIECE + 1 if word.startswith(" ") else _PIECE
    pieces = [word[:head]]
    rest = word[head:]
    while rest:
        pieces.append(rest[:_PIECE])
        rest = rest[_PIECE:]
    return pieces


def _sentence(rng: random.Random, first_in_text: bool) -> list[str]:
    count = rng.randint(7, 17)
    words: list[str] = []
    for i in range(count):
        word = rng.choice(_ACCENTED) if rng.random() < 0.04 else rng.choice(_WORDS)
        if i == 0:
            word = word[:1].upper() + word[1:]
        words.append(word)
        if 2 < i < count - 2 and rng.random() < 0.05:
            words.append("—")
        elif 2 < i < count - 2 and rng.random() < 0.08:
            words[-1] += ","
    tokens: list[str] = []
    for i, word in enumerate(words):
        lead = "" if (i == 0 and first_in_text) else " "
        if word.endswith(","):
            tokens.extend(_split_word(lead + word[:-1]))
            tokens.append(",")
        else:
            tokens.extend(_split_word(lead + word))
    tokens.append("." if rng.random() < 0.85 else "!")
    if rng.random() < 0.15:
        tokens.append(" " + rng.choice(_EMOJI))
    return tokens


def token_stream(seed: int) -> Iterator[str]:
    """The endless token stream for `seed`; each token is a non-empty string."""
    rng = random.Random(seed)
    first = True
    sentences_left = rng.randint(3, 6)
    while True:
        yield from _sentence(rng, first)
        first = False
        sentences_left -= 1
        if sentences_left == 0:
            yield "\n\n"
            first = True
            sentences_left = rng.randint(3, 6)


def tokens_for(seed: int, count: int) -> list[str]:
    """The first `count` tokens of the stream for `seed`."""
    stream = token_stream(seed)
    return [next(stream) for _ in range(max(0, count))]


def prompt_tokens(messages: Sequence[Any]) -> int:
    """A tokenizer-free estimate: ~4 characters a token plus a per-message overhead."""
    total = 3
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):
            text = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        else:
            text = "" if content is None else str(content)
        total += 4 + math.ceil(len(text) / 4)
    return total
