"""What one request will be answered with: tokens, finish reason, usage and timing.

Pure: the server turns a validated request into a `Plan` and then only writes it out.
`expected_answer()` runs the same computation for tests, without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._control import Control, parse_control
from ._pacing import Pacing, effective_pacing, schedule
from ._profiles import Profile
from ._text import prompt_tokens, request_seed, tokens_for
from ._wire import usage

__all__ = ["Plan", "answer_tokens", "expected_answer", "expected_tokens", "make_plan"]


@dataclass(frozen=True)
class Plan:
    tokens: list[str]  # content deltas, in order
    due: list[float]  # due time of each delta, seconds from the response start
    finish_reason: str  # "stop", "length" or "content_filter"
    usage: dict[str, Any]
    pacing: Pacing
    fault: str | None  # the stream/response fault to apply, None when inactive
    control: Control

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def answer_tokens(
    messages: Sequence[Any],
    *,
    wanted: int,
    cap: int | None,
    seed: int | None,
) -> tuple[list[str], str]:
    """The visible tokens and finish reason of a fault-free answer."""
    count = wanted if cap is None else min(wanted, cap)
    finish = "length" if cap is not None and cap < wanted else "stop"
    return tokens_for(request_seed(messages, seed), count), finish


def _cap(
    max_tokens: int | None, max_completion_tokens: int | None, reasoning_tokens: int
) -> int | None:
    if max_completion_tokens is not None:
        return max(0, max_completion_tokens - reasoning_tokens)
    return max_tokens


def make_plan(
    body: Mapping[str, Any],
    profile: Profile,
    base: Pacing,
    control: Control,
    fault_active: bool,
) -> Plan:
    messages = body["messages"]
    pacing = effective_pacing(base, profile.ttft_ms, control)
    reasoning = control.reasoning_tokens
    if reasoning is None:
        reasoning = profile.reasoning_tokens if profile.reasoning else 0
    tokens, finish = answer_tokens(
        messages,
        wanted=pacing.tokens,
        cap=_cap(body.get("max_tokens"), body.get("max_completion_tokens"), reasoning),
        seed=body.get("seed"),
    )
    fault = control.fault if fault_active else None
    if fault == "content_filter":
        tokens, finish = tokens[: control.after], "content_filter"
    seed = request_seed(messages, body.get("seed"))
    return Plan(
        tokens=tokens,
        due=schedule(len(tokens), pacing, seed),
        finish_reason=finish,
        usage=usage(prompt_tokens(messages), len(tokens) + reasoning, reasoning),
        pacing=pacing,
        fault=fault,
        control=control,
    )


def expected_tokens(
    messages: Sequence[Mapping[str, Any]],
    *,
    tokens: int | None = None,
    max_tokens: int | None = None,
    max_completion_tokens: int | None = None,
    seed: int | None = None,
    reasoning_tokens: int = 0,
    default_tokens: int = 200,
    header: str = "",
) -> list[str]:
    """The content deltas a fault-free response to this request carries, in order.

    `messages` may still hold the `[[emulator ...]]` marker (its `tokens=` counts);
    `tokens` stands for a per-request override sent another way, `default_tokens` for
    the server's default, `reasoning_tokens` for the reasoning profile's hidden tokens
    (they count against `max_completion_tokens`), `header` for an x-emulator header.
    """
    control = parse_control(messages, {"x-emulator": header} if header else None)
    wanted = tokens if tokens is not None else control.tokens
    reasoning = control.reasoning_tokens
    if reasoning is None:
        reasoning = reasoning_tokens
    result, _ = answer_tokens(
        messages,
        wanted=default_tokens if wanted is None else wanted,
        cap=_cap(max_tokens, max_completion_tokens, reasoning),
        seed=seed,
    )
    return result


def expected_answer(messages: Sequence[Mapping[str, Any]], **options: Any) -> str:
    """The full answer text of a fault-free response (see `expected_tokens`)."""
    return "".join(expected_tokens(messages, **options))
