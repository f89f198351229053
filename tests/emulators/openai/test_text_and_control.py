"""Pure parts of the emulator: answer text, marker parsing, pacing schedule, plans."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.openai_emulator import (
    CHAT,
    REASONING,
    ControlError,
    Pacing,
    expected_answer,
    expected_tokens,
    parse_control,
    strip_marker,
)
from local.openai_emulator._pacing import schedule
from local.openai_emulator._plan import make_plan


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_same_request_same_answer_and_different_prompts_differ() -> None:
    a = expected_answer(user("Tell me about queues"))
    assert a == expected_answer(user("Tell me about queues"))
    assert a != expected_answer(user("Tell me about tables"))
    assert a != expected_answer(user("Tell me about queues"), seed=7)


def test_marker_is_stripped_before_seeding_but_its_tokens_count() -> None:
    plain = expected_tokens(user("Explain retries"))
    steered = expected_tokens(user("Explain retries [[emulator tokens=25 fault=500 times=1]]"))
    assert len(plain) == 200
    assert steered == plain[:25]


def test_limits_give_a_prefix_of_the_longer_answer() -> None:
    long = expected_tokens(user("x"), tokens=300)
    assert expected_tokens(user("x"), tokens=300, max_tokens=40) == long[:40]
    # reasoning tokens count against max_completion_tokens
    assert (
        expected_tokens(user("x"), tokens=300, max_completion_tokens=40, reasoning_tokens=32)
        == long[:8]
    )


def test_tokens_are_token_sized_and_text_is_english_like_with_multibyte() -> None:
    tokens = expected_tokens(user("a long answer please"), tokens=3000)
    text = "".join(tokens)
    assert all(tok for tok in tokens)
    assert 2.5 <= len(text) / len(tokens) <= 5.5
    assert max(len(t) for t in tokens) <= 7
    assert any(len(ch.encode()) > 1 for ch in text)  # é, —, emoji...
    assert text[0].isupper() and ". " in text and "\n\n" in text


def test_list_content_parts_seed_like_their_text() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi [[emulator tokens=3]]"}]}]
    assert len(expected_tokens(parts)) == 3


def test_parse_control_marker_and_header_override() -> None:
    c = parse_control(
        user("q [[emulator fault=429 retry_after=2.5 times=2 tokens=9]]"),
        {"x-emulator": "tokens=4 rate=100"},
    )
    assert (c.fault, c.fault_status, c.retry_after, c.times, c.tokens, c.rate) == (
        "429",
        429,
        2.5,
        2,
        4,
        100.0,
    )
    # only the last user message counts
    older = [{"role": "user", "content": "[[emulator fault=500]]"}, *user("plain")]
    assert parse_control(older).fault is None


@pytest.mark.parametrize(
    "marker",
    ["[[emulator tokens=abc]]", "[[emulator bogus=1]]", "[[emulator fault=explode]]",
     "[[emulator fault=200]]", "[[emulator rate=0]]", "[[emulator tokens]]"],
)  # fmt: skip
def test_bad_markers_are_refused(marker: str) -> None:
    with pytest.raises(ControlError):
        parse_control(user(f"q {marker}"))


@given(st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=40))
def test_strip_marker_leaves_other_text_alone(text: str) -> None:
    assert strip_marker(f"{text} [[emulator tokens=5]]") == text.strip()
    assert strip_marker(text) == text


def test_schedule_orders_deltas_with_ttft_rate_and_bursts() -> None:
    due = schedule(50, Pacing(ttft_ms=300, rate=100, jitter=0.3), seed=1)
    assert due[0] == pytest.approx(0.3)
    assert all(b >= a for a, b in itertools.pairwise(due))
    assert 0.3 + 49 * 0.007 <= due[-1] <= 0.3 + 49 * 0.013
    bursty = schedule(20, Pacing(ttft_ms=0, rate=100, jitter=0, burst=5), seed=1)
    assert len(set(bursty)) == 4 and bursty[0] == bursty[4] < bursty[5]
    assert schedule(20, Pacing(rate=50), seed=3) == schedule(20, Pacing(rate=50), seed=3)


def test_plans_follow_profile_and_faults() -> None:
    body = {"messages": user("q"), "max_completion_tokens": 100}
    plan = make_plan(body, REASONING, Pacing(tokens=150), parse_control(user("q")), False)
    assert len(plan.tokens) == 100 - REASONING.reasoning_tokens
    assert plan.finish_reason == "length"
    assert plan.usage["completion_tokens"] == 100
    assert plan.usage["completion_tokens_details"]["reasoning_tokens"] == 32
    assert plan.pacing.ttft_ms == REASONING.ttft_ms
    filtered = user("q [[emulator fault=content_filter after=5]]")
    control = parse_control(filtered)
    cf = make_plan({"messages": filtered}, CHAT, Pacing(), control, True)
    assert cf.finish_reason == "content_filter" and len(cf.tokens) == 5
    inactive = make_plan({"messages": filtered}, CHAT, Pacing(), control, False)
    assert inactive.finish_reason == "stop" and inactive.fault is None
    assert inactive.text == expected_answer(filtered)
