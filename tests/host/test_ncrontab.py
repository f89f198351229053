"""NCRONTAB schedules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local.host.ncrontab import ScheduleError, parse_schedule, parse_timespan

T0 = datetime(2025, 3, 14, 10, 20, 30, 500000, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/5 * * * * *", datetime(2025, 3, 14, 10, 20, 35, tzinfo=UTC)),
        ("0 */5 * * * *", datetime(2025, 3, 14, 10, 25, 0, tzinfo=UTC)),
        ("0 0 * * * *", datetime(2025, 3, 14, 11, 0, 0, tzinfo=UTC)),
        ("0 30 9 * * *", datetime(2025, 3, 15, 9, 30, 0, tzinfo=UTC)),
        ("0 30 9 * * 1-5", datetime(2025, 3, 17, 9, 30, 0, tzinfo=UTC)),
        ("0 0 0 * * Sun", datetime(2025, 3, 16, 0, 0, 0, tzinfo=UTC)),
        ("0 0 0 1 Jan *", datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)),
        ("0 0 12 29 2 *", datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC)),
        ("0 0 0 13 * 5", datetime(2025, 3, 21, 0, 0, 0, tzinfo=UTC)),  # day OR weekday
        ("30 20 10 * * *", datetime(2025, 3, 15, 10, 20, 30, tzinfo=UTC)),
        ("5 * * * *", datetime(2025, 3, 14, 11, 5, 0, tzinfo=UTC)),  # five fields: second 0
    ],
)
def test_next_occurrence(expression: str, expected: datetime) -> None:
    assert parse_schedule(expression).next_after(T0) == expected


def test_timespan_schedule_is_an_interval() -> None:
    schedule = parse_schedule("00:05:00")
    assert schedule.next_after(T0) == T0 + timedelta(minutes=5)
    assert parse_timespan("1.02:03:04") == timedelta(days=1, hours=2, minutes=3, seconds=4)


@pytest.mark.parametrize(
    "bad", ["* * * *", "61 * * * * *", "*/0 * * * * *", "a * * * * *", "5-1 * * * * *"]
)
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)
