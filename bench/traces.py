"""Synthetic LLM streams for the benchmarks: deterministic token texts and arrival times.

A stream is a list of `(delta, t)` with `t` in simulated seconds from the first token. Token
texts imitate a chat model's deltas: about 4 characters on average, mostly ASCII words and
word pieces with leading spaces, some punctuation and newlines, and a few percent multi-byte
(accented letters, CJK, typographic quotes, emoji). Nothing here reads a clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TRACES", "Stream", "Trace", "tokens"]

Stream = list[tuple[str, float]]

_LETTERS = "etaoinshrdlucmfwypvbgkjqxz"
_WEIGHTS = [
    12,
    9,
    8,
    7.5,
    7,
    6.5,
    6.3,
    6,
    6,
    4.3,
    4,
    2.8,
    2.4,
    2.4,
    2.2,
    2,
    2,
    1.9,
    1.5,
    1,
    0.8,
    0.2,
    0.2,
    0.2,
    0.1,
    0.1,
]
_LENGTHS = [1, 2, 3, 4, 5, 6, 7, 8]
_LENGTH_WEIGHTS = [8, 12, 20, 24, 16, 10, 6, 4]
_PUNCT = [",", ".", ":", "\n", "\n\n", "**", "`", " -", "'s", "?"]
_MULTI = ["é", " café", "—", "“", "”", " 中文", "日本", "😀", "ü", " naïve", "→", "€"]


def tokens(rng: random.Random, n: int) -> list[str]:
    """`n` realistic delta texts."""
    out: list[str] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.04:
            out.append(rng.choice(_MULTI))
        elif r < 0.14:
            out.append(rng.choice(_PUNCT))
        else:
            length = rng.choices(_LENGTHS, _LENGTH_WEIGHTS)[0]
            word = "".join(rng.choices(_LETTERS, _WEIGHTS, k=length))
            # most tokens start a word (" the"); the rest continue one ("ing")
            out.append(" " + word[1:] if r < 0.7 and length > 1 else word)
    return out


def _steady(rate: float) -> Callable[[random.Random, int], list[float]]:
    def times(rng: random.Random, n: int) -> list[float]:
        return [i / rate for i in range(n)]

    return times


def _jittered(rate: float, sigma: float = 0.6) -> Callable[[random.Random, int], list[float]]:
    # log-normal gaps with mean 1/rate: network and sampler jitter around a steady rate
    mu = math.log(1.0 / rate) - sigma * sigma / 2

    def times(rng: random.Random, n: int) -> list[float]:
        t, out = 0.0, list[float]()
        for _ in range(n):
            out.append(t)
            t += rng.lognormvariate(mu, sigma)
        return out

    return times


def _bursty(rate: float) -> Callable[[random.Random, int], list[float]]:
    # Content filtering holds the output back and releases it in runs: 10 to 40 deltas within
    # a few milliseconds, then a pause as long as the model took to generate them.
    def times(rng: random.Random, n: int) -> list[float]:
        t, out = 0.0, list[float]()
        while len(out) < n:
            burst = min(rng.randint(10, 40), n - len(out))
            for _ in range(burst):
                out.append(t)
                t += rng.uniform(0.0002, 0.002)
            t += burst / rate * rng.uniform(0.7, 1.3)
        return out

    return times


@dataclass(frozen=True)
class Trace:
    name: str
    mean_rate: float  # deltas per second, on average
    times: Callable[[random.Random, int], list[float]]

    def stream(self, seed: int, n: int) -> Stream:
        rng = random.Random(f"{self.name}/{seed}/{n}")
        return list(zip(tokens(rng, n), self.times(rng, n), strict=True))


TRACES: tuple[Trace, ...] = (
    Trace("steady 50/s", 50, _steady(50)),
    Trace("steady 100/s", 100, _steady(100)),
    Trace("steady 150/s", 150, _steady(150)),
    Trace("jittered ~100/s", 100, _jittered(100)),
    Trace("bursty ~100/s", 100, _bursty(100)),
)
