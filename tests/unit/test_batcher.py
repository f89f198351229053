from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.__main__ import record
from bench.batching import simulate
from bench.traces import TRACES
from relay.batcher import (
    MAX_SEQ,
    Batch,
    Batcher,
    encoded_text_size,
    message_overhead,
)

JOB = "0f8fad5b-d9cb-469f-a165-70867728950e"
HTML_SENSITIVE = "<>&'+`"


def encode(job_id: str, seq: int, attempt: int, text: str, *, ascii_only: bool) -> bytes:
    """The message as a client receives it, by two real encoders."""
    msg = {
        "type": 1,
        "target": "delta",
        "arguments": [{"jobId": job_id, "seq": seq, "attempt": attempt, "text": text}],
    }
    raw = json.dumps(msg, separators=(",", ":"), ensure_ascii=ascii_only)
    if ascii_only:  # System.Text.Json's default encoder also escapes HTML-sensitive characters
        for ch in HTML_SENSITIVE:
            raw = raw.replace(ch, f"\\u{ord(ch):04x}")
    return (raw + "\x1e").encode("utf-8", "surrogatepass")


def make(window: float = 0.09, max_bytes: int = 2048, attempt: int = 1) -> Batcher:
    return Batcher(window, max_bytes, message_overhead(JOB, attempt))


# --- size accounting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("", 0),
        ("abc", 3),
        ('"', 2),
        ("\\", 2),
        ("\n\t\r", 18),
        ("\x00\x7f", 12),
        ("<a&b>", 20),
        ("é中", 12),
        ("😀", 12),
        ("\ud800", 6),
    ],
)
def test_encoded_text_size_examples(text: str, size: int) -> None:
    assert encoded_text_size(text) == size


@given(st.text())
def test_encoded_text_size_bounds_both_encoders(text: str) -> None:
    bound = encoded_text_size(text)
    for ascii_only in (True, False):
        raw = encode("j", 1, 1, text, ascii_only=ascii_only)
        empty = encode("j", 1, 1, "", ascii_only=ascii_only)
        assert len(raw) - len(empty) <= bound


def test_message_overhead_is_the_empty_message_at_max_seq() -> None:
    for ascii_only in (True, False):
        assert message_overhead(JOB, 3) == len(encode(JOB, MAX_SEQ, 3, "", ascii_only=ascii_only))
    assert message_overhead(JOB, 12) == message_overhead(JOB, 1) + 1
    assert message_overhead(JOB, 1, target="status") == message_overhead(JOB, 1) + 1


# --- example rules -----------------------------------------------------------------------


def test_first_delta_goes_out_at_once_later_ones_wait_for_the_window() -> None:
    b = make(window=0.1)
    [first] = b.feed("Hello", 10.0)
    assert (first.seq, first.text, first.deltas, first.opened_at, first.closed_at) == (
        1,
        "Hello",
        1,
        10.0,
        10.0,
    )
    assert b.feed(",", 10.02) == []
    assert b.feed(" world", 10.05) == []
    assert b.next_deadline() == pytest.approx(10.12)
    assert b.poll(10.119) == []
    [second] = b.poll(10.12)
    assert second == Batch(2, ", world", 2, 10.02, 10.12)
    assert b.next_deadline() is None
    assert b.finish(11.0) == []


def test_late_feed_closes_the_expired_batch_before_adding() -> None:
    b = make(window=0.1)
    b.feed("a", 0.0)
    b.feed("b", 0.05)
    out = b.feed("c", 0.5)  # nobody polled at 0.15
    assert [(x.seq, x.text, x.closed_at) for x in out] == [(2, "b", 0.5)]
    assert b.next_deadline() == pytest.approx(0.6)
    assert [x.text for x in b.finish(0.51)] == ["c"]


def test_empty_deltas_are_ignored_and_do_not_count_as_first() -> None:
    b = make()
    assert b.feed("", 0.0) == []
    assert b.next_deadline() is None
    [first] = b.feed("x", 1.0)
    assert first.text == "x" and first.seq == 1
    assert b.feed("", 1.01) == []
    assert b.next_deadline() is None


def test_window_zero_is_one_message_per_delta() -> None:
    b = make(window=0.0)
    texts = [[x.text for x in b.feed(t, i * 0.01)] for i, t in enumerate("abcd")]
    assert texts == [["a"], ["b"], ["c"], ["d"]]


def test_batch_closes_when_the_next_delta_would_not_fit() -> None:
    overhead = message_overhead(JOB, 1)
    b = Batcher(10.0, overhead + 20, overhead)
    b.feed("first", 0.0)
    assert b.feed("a" * 15, 0.1) == []
    [full] = b.feed("b" * 6, 0.2)  # 15 + 6 > 20: the open batch goes, the delta stays whole
    assert (full.text, full.deltas, full.closed_at) == ("a" * 15, 1, 0.2)
    assert b.next_deadline() == pytest.approx(10.2)
    [exact] = b.feed("c" * 14, 0.3)  # 6 + 14 == 20: full, nothing more can fit
    assert exact.text == "b" * 6 + "c" * 14 and exact.deltas == 2


def test_oversized_delta_is_split_at_code_points_and_fills_batches() -> None:
    overhead = message_overhead(JOB, 1)
    b = Batcher(10.0, overhead + 24, overhead)
    b.feed("x", 0.0)
    b.feed("ab", 0.1)
    out = b.feed("😀" * 6, 0.2)  # 72 bytes of budget at 12 each
    # the open batch takes one emoji (2 + 12 <= 24, 2 + 24 > 24), then two per batch; a
    # full batch goes at once, the last emoji stays open for the window
    assert [x.text for x in out] == ["ab😀", "😀😀", "😀😀"]
    assert [x.deltas for x in out] == [2, 1, 1]
    assert b.next_deadline() == pytest.approx(10.2)
    assert [x.text for x in b.finish(0.3)] == ["😀"]


def test_huge_first_delta_all_goes_out_at_once() -> None:
    b = make(max_bytes=256)
    out = b.feed("é" * 1000, 5.0)
    assert "".join(x.text for x in out) == "é" * 1000
    assert all(x.closed_at == 5.0 for x in out)
    assert [x.seq for x in out] == list(range(1, len(out) + 1))
    assert b.next_deadline() is None


def test_first_seq_and_feed_after_finish() -> None:
    b = Batcher(0.1, 2048, message_overhead(JOB, 2), first_seq=41)
    assert b.next_seq == 41
    assert b.feed("a", 0.0)[0].seq == 41
    b.feed("b", 0.01)
    assert b.finish(0.02)[0].seq == 42
    with pytest.raises(RuntimeError):
        b.feed("c", 0.03)


@pytest.mark.parametrize(
    ("window", "max_bytes", "overhead", "first_seq"),
    [(-0.1, 2048, 100, 1), (math.nan, 2048, 100, 1), (0.1, 111, 100, 1), (0.1, 2048, 100, 0)],
)
def test_bad_parameters_are_refused(
    window: float, max_bytes: int, overhead: int, first_seq: int
) -> None:
    with pytest.raises(ValueError):
        Batcher(window, max_bytes, overhead, first_seq)


# --- properties --------------------------------------------------------------------------

delta_text = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=3000),
    st.text(alphabet="<>&'+`\"\\\n\x00\x1f\x7fé中😀𝄞", max_size=400),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=5),
)
gaps = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)


@st.composite
def streams(draw: st.DrawFn) -> tuple[float, int, int, list[tuple[str, float]]]:
    window = draw(st.sampled_from([0.0, 0.04, 0.09, 0.25]))
    max_bytes = draw(st.integers(min_value=256, max_value=2048))
    attempt = draw(st.integers(min_value=1, max_value=10))
    items = draw(st.lists(st.tuples(delta_text, gaps), max_size=60))
    t, stream = 0.0, []
    for text, gap in items:
        t += gap
        stream.append((text, t))
    return window, max_bytes, attempt, stream


def run(
    window: float, max_bytes: int, attempt: int, stream: list[tuple[str, float]]
) -> tuple[list[Batch], list[float]]:
    """Drive the batcher like the activity does: poll exactly at each deadline.

    Returns the batches and, per non-empty delta, the time its last part was sent.
    """
    b = Batcher(window, max_bytes, message_overhead(JOB, attempt))
    out: list[Batch] = []
    for text, t in stream:
        deadline = b.next_deadline()
        while deadline is not None and deadline <= t:
            polled = b.poll(deadline)
            assert polled, "poll at next_deadline() must send the open batch"
            out += polled
            deadline = b.next_deadline()
        out += b.feed(text, t)
    out += b.finish(stream[-1][1] if stream else 0.0)
    # Map each delta's end offset to the close time of the batch that completed it.
    sent_at, ends, pos = [], [], 0
    for text, _ in stream:
        pos += len(text)
        if text:
            ends.append(pos)
    done, k = 0, 0
    for batch in out:
        done += len(batch.text)
        while k < len(ends) and ends[k] <= done:
            sent_at.append(batch.closed_at)
            k += 1
    return out, sent_at


@settings(max_examples=300, deadline=None)
@given(streams())
def test_properties_hold_for_any_stream(
    case: tuple[float, int, int, list[tuple[str, float]]],
) -> None:
    window, max_bytes, attempt, stream = case
    out, sent_at = run(window, max_bytes, attempt, stream)
    # nothing lost, nothing repeated, nothing reordered
    assert "".join(b.text for b in out) == "".join(text for text, _ in stream)
    # seqs are consecutive from 1, and no batch is empty
    assert [b.seq for b in out] == list(range(1, len(out) + 1))
    assert all(b.text and b.deltas >= 1 for b in out)
    # every message fits, by either encoder
    for b in out:
        for ascii_only in (True, False):
            assert len(encode(JOB, b.seq, attempt, b.text, ascii_only=ascii_only)) <= max_bytes
    # no delta waits longer than the window; the first is sent when it arrives
    arrivals = [t for text, t in stream if text]
    assert len(sent_at) == len(arrivals)
    for arrived, sent in zip(arrivals, sent_at, strict=True):
        assert 0.0 <= sent - arrived <= window + 1e-9
    if arrivals:
        assert sent_at[0] == arrivals[0]
        assert out[0].closed_at == arrivals[0]
    # batches close in time order and never before they open
    assert all(b.opened_at <= b.closed_at for b in out)
    assert all(x.closed_at <= y.closed_at for x, y in pairwise(out))


@settings(max_examples=100, deadline=None)
@given(st.lists(delta_text, min_size=1, max_size=30))
def test_first_nonempty_delta_is_emitted_by_feed(deltas: list[str]) -> None:
    b = make(window=1.0)
    first = next((i for i, d in enumerate(deltas) if d), None)
    for i, d in enumerate(deltas):
        out = b.feed(d, float(i))
        if i == first:
            assert "".join(x.text for x in out) == d
            assert all(x.closed_at == float(i) for x in out)
        elif first is None or i < first:
            assert out == []


# --- the benchmark's driver (bench/batching.py) ----------------------------------------------


def test_bench_counts_follow_from_the_rules() -> None:
    steady = next(t for t in TRACES if t.name == "steady 100/s")
    per_delta = simulate(steady, 200, 0, jobs=2)
    assert per_delta.messages == 200 and per_delta.max_ms == 0
    # first delta alone, then 9 deltas (0..80 ms after the batch opens) per 90 ms batch
    batched = simulate(steady, 200, 90, jobs=2)
    assert batched.messages == 1 + math.ceil(199 / 9)
    assert batched.units == batched.messages  # small batches: one 2 KB unit each
    assert 0 < batched.p50_ms <= batched.p95_ms <= batched.max_ms <= 90


def test_bench_record_replaces_only_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "batching.md"
    doc.write_text(
        "# Title\n\nprose\n<!-- bench:batching:begin -->\nold\n<!-- bench:batching:end -->\ntail\n"
    )
    record("batching", "NEW TABLE", "python -m bench batching", doc)
    text = doc.read_text()
    assert "old" not in text and "NEW TABLE" in text and "python -m bench batching" in text
    assert text.startswith("# Title\n\nprose\n") and text.endswith("-->\ntail\n")
