"""The delta batcher: coalesces an LLM stream's deltas into SignalR-sized batches. No I/O.

Like `h11.Connection`, a `Batcher` is a state machine that is handed events and the time, and
hands back what to send; it never awaits, sleeps or reads a clock. The caller (the streaming
activity) feeds each delta with `feed`, waits for the next delta at most until
`next_deadline()`, calls `poll` when that deadline passes, and `finish` at the end of the stream.

Rules:
- The first non-empty delta goes out at once (no window on time to first token).
- Later deltas coalesce: a batch closes when `now >= opened_at + window_s` (checked at the next
  `feed` or `poll`), or when it is full: adding the next delta would exceed `max_bytes`.
- A delta is split only when it is too big for a batch of its own; the split is at code point
  boundaries and the parts fill batches to the limit. Empty deltas are ignored.
- `max_bytes` bounds the whole encoded message a client receives, envelope and record separator
  included; the text's share is counted pessimistically (see `encoded_text_size`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "MAX_SEQ",
    "Batch",
    "Batcher",
    "encoded_text_size",
    "message_overhead",
]

MAX_SEQ = 9_999_999_999  # message_overhead reserves 10 digits for seq

# Cost of each UTF-8 byte of a text, as the most verbose common JSON encoder writes it. The
# SignalR service re-serializes arguments with System.Text.Json, whose default encoder writes
# non-ASCII as \uXXXX and also escapes HTML-sensitive < > & ' + ` as \u00XX; Python's
# json.dumps writes \n as 2 bytes and (ensure_ascii=False) é as 2. Taking the maximum per
# character bounds both. A lead byte carries its character's cost, continuation bytes cost 0:
# 2- and 3-byte sequences (BMP, lone surrogates via surrogatepass) cost 6 (\uXXXX), 4-byte
# sequences (astral) 12 (a surrogate pair of escapes).
_ASCII_COST = bytearray(1 for _ in range(128))
for _b in [*range(0x20), 0x7F, *b"<>&'+`"]:
    _ASCII_COST[_b] = 6
for _b in b'"\\':
    _ASCII_COST[_b] = 2
_BYTE_COST = bytes(
    _ASCII_COST
    + bytes(0 for _ in range(0x80, 0xC0))
    + bytes(6 for _ in range(0xC0, 0xF0))
    + bytes(12 for _ in range(0xF0, 0x100))
)
_ASCII_COST_T = tuple(_ASCII_COST)
del _b

_ENVELOPE = '{"type":1,"target":"","arguments":[{"jobId":"","seq":%d,"attempt":%d,"text":""}]}\x1e'


# Deltas are model tokens, drawn from a bounded vocabulary: memoizing the cost of short ones
# turns the hot path's encode+translate+sum (~150 ns) into one dict lookup (~20 ns).
_CACHE: dict[str, int] = {}
_CACHE_MAX_ENTRIES = 65536
_CACHE_MAX_CHARS = 32


def encoded_text_size(text: str) -> int:
    """Upper bound of the bytes `text` takes inside a JSON string (quotes not counted)."""
    # One C-level pass: map every UTF-8 byte to its cost, then sum the cost bytes.
    return sum(text.encode("utf-8", "surrogatepass").translate(_BYTE_COST))


def _delta_cost(text: str) -> int:
    cost = _CACHE.get(text)
    if cost is None:
        cost = encoded_text_size(text)
        if len(text) <= _CACHE_MAX_CHARS:
            if len(_CACHE) >= _CACHE_MAX_ENTRIES:
                _CACHE.clear()
            _CACHE[text] = cost
    return cost


def _char_cost(ch: str) -> int:
    o = ord(ch)
    if o < 0x80:
        return _ASCII_COST_T[o]
    return 6 if o < 0x10000 else 12


def message_overhead(job_id: str, attempt: int, target: str = "delta") -> int:
    """Bytes of `{"type":1,"target":..,"arguments":[{jobId,seq,attempt,text:""}]}\\x1e`.

    Counted with the largest seq allowed (`MAX_SEQ`) and the text empty, so that
    `overhead + encoded_text_size(text) <= max_bytes` bounds every message of the job.
    """
    skeleton = _ENVELOPE % (MAX_SEQ, attempt)
    return len(skeleton) + encoded_text_size(target) + encoded_text_size(job_id)


@dataclass(frozen=True)
class Batch:
    seq: int
    text: str
    deltas: int  # deltas that contributed; a split delta counts in each of its parts
    opened_at: float  # arrival time of the oldest delta in the batch
    closed_at: float


class Batcher:
    """Coalesces deltas into batches; see the module docstring for the rules."""

    def __init__(
        self, window_s: float, max_bytes: int, overhead_bytes: int, first_seq: int = 1
    ) -> None:
        if not (math.isfinite(window_s) and window_s >= 0):
            raise ValueError("window_s must be a finite number >= 0")
        # The text budget must hold any one character (an astral one costs 12).
        if max_bytes - overhead_bytes < 12:
            raise ValueError("max_bytes leaves no room for text after the envelope")
        if not 1 <= first_seq <= MAX_SEQ:
            raise ValueError(f"first_seq must be between 1 and {MAX_SEQ}")
        self._window = window_s
        self._budget = max_bytes - overhead_bytes
        self._seq = first_seq
        self._started = False
        self._finished = False
        # The open batch: parts and running sums, so a delta costs O(len(delta)).
        self._parts: list[str] = []
        self._cost = 0
        self._deltas = 0
        self._opened_at = 0.0

    @classmethod
    def for_job(
        cls, job_id: str, attempt: int, window_s: float, max_bytes: int, first_seq: int = 1
    ) -> Batcher:
        return cls(window_s, max_bytes, message_overhead(job_id, attempt), first_seq)

    @property
    def next_seq(self) -> int:
        """The seq the next batch will carry."""
        return self._seq

    @property
    def text_budget(self) -> int:
        return self._budget

    def next_deadline(self) -> float | None:
        """When the open batch must be sent (call `poll` then), or None if nothing is open."""
        return self._opened_at + self._window if self._parts else None

    def poll(self, now: float) -> list[Batch]:
        if self._parts and now >= self._opened_at + self._window:
            return [self._close(now)]
        return []

    def feed(self, delta: str, now: float) -> list[Batch]:
        """Add one delta received at `now`; return the batches to send now, in seq order."""
        if self._finished:
            raise RuntimeError("feed after finish")
        # Hot path, kept inline: one expiry check, one cost lookup, one append.
        out: list[Batch] = []
        if self._parts and now >= self._opened_at + self._window:
            out.append(self._close(now))
        if not delta:
            return out
        cost = _delta_cost(delta)
        if self._cost + cost <= self._budget:
            if not self._parts:
                self._opened_at = now
            self._parts.append(delta)
            self._cost += cost
            self._deltas += 1
        else:
            self._overflow(delta, cost, now, out)
        # The batch is non-empty here: a non-empty delta always leaves a part open.
        if not self._started:
            self._started = True
            out.append(self._close(now))
        elif now >= self._opened_at + self._window or self._cost >= self._budget:
            out.append(self._close(now))
        return out

    def finish(self, now: float) -> list[Batch]:
        """End of stream: send whatever is open. Further feeds are refused."""
        self._finished = True
        return [self._close(now)] if self._parts else []

    def _overflow(self, delta: str, cost: int, now: float, out: list[Batch]) -> None:
        """Add a delta that does not fit in the open batch."""
        if cost <= self._budget:
            # Fits in a batch of its own: close the open one (non-empty, or it would have
            # fitted) and keep the delta whole.
            out.append(self._close(now))
            self._append(delta, cost, now)
            return
        # Too big for any batch: fill the open batch, then whole batches; the rest stays open.
        space = self._budget - self._cost
        start = run = 0
        for i, ch in enumerate(delta):
            c = _char_cost(ch)
            if run + c > space:
                if i > start:
                    self._append(delta[start:i], run, now)
                out.append(self._close(now))
                start, run, space = i, 0, self._budget
            run += c
        self._append(delta[start:], run, now)

    def _append(self, piece: str, cost: int, now: float) -> None:
        if not self._parts:
            self._opened_at = now
        self._parts.append(piece)
        self._cost += cost
        self._deltas += 1

    def _close(self, now: float) -> Batch:
        if self._seq > MAX_SEQ:
            raise OverflowError("seq exceeds MAX_SEQ")
        batch = Batch(self._seq, "".join(self._parts), self._deltas, self._opened_at, now)
        self._seq += 1
        self._parts = []
        self._cost = 0
        self._deltas = 0
        return batch
