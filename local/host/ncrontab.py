"""NCRONTAB schedules (`{second} {minute} {hour} {day} {month} {day-of-week}`); pure, no I/O.

The timer trigger's format: six fields, each `*`, a number, a range `a-b`, a step `*/n` or
`a-b/n`, or a comma list of those; months and weekdays also by English name (`Jan`, `Mon`),
Sunday is 0 (7 is accepted too). As with cron, when both day-of-month and day-of-week are
restricted, a time matches if either does. A five-field expression (no seconds) is accepted as
NCrontab does, with second 0. A TimeSpan (`hh:mm:ss`, `d.hh:mm:ss`) means "every interval",
which the host allows on dedicated plans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Schedule", "ScheduleError", "parse_schedule", "parse_timespan"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


class ScheduleError(ValueError):
    """A schedule expression that is not valid NCRONTAB or TimeSpan."""


def parse_timespan(text: str) -> timedelta | None:
    """`[d.]hh:mm[:ss[.fff]]` -> timedelta; None if `text` is not in that form."""
    m = re.fullmatch(r"\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*", text)
    if not m:
        return None
    days, hours, minutes, seconds, frac = m.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int((frac or "0").ljust(6, "0")[:6]),
    )


def _value(token: str, lo: int, names: list[str] | None) -> int:
    low = token.lower()
    if names and low in names:
        return names.index(low) + (1 if names is _MONTHS else 0)
    if not token.isdigit():
        raise ScheduleError(f"invalid value {token!r}")
    return int(token)


def _field(text: str, lo: int, hi: int, names: list[str] | None = None) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"invalid step in {text!r}")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, lo, names), _value(b, lo, names)
        else:
            start = _value(part, lo, names)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ScheduleError(f"value out of range {lo}-{hi} in {text!r}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Schedule:
    expression: str
    interval: timedelta | None = None
    seconds: frozenset[int] = frozenset()
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    days_any: bool = True
    weekdays_any: bool = True

    def _day_ok(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_any or self.weekdays_any:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (same tzinfo as `after`)."""
        if self.interval is not None:
            return after + self.interval
        t = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = after + timedelta(days=366 * 5)
        while t <= limit:
            if t.month not in self.months:
                first = t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)
                t = first.replace(day=1)
                continue
            if not self._day_ok(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if t.minute not in self.minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        raise ScheduleError(f"schedule {self.expression!r} never fires")


def parse_schedule(expression: str) -> Schedule:
    span = parse_timespan(expression)
    if span is not None:
        if span <= timedelta(0):
            raise ScheduleError(f"schedule interval must be positive: {expression!r}")
        return Schedule(expression, interval=span)
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ScheduleError(
            f"schedule {expression!r} must have six fields "
            "({second} {minute} {hour} {day} {month} {day-of-week}) or be a TimeSpan"
        )
    try:
        weekdays = {d % 7 for d in _field(fields[5], 0, 7, _DAYS)}
        return Schedule(
            expression,
            seconds=_field(fields[0], 0, 59),
            minutes=_field(fields[1], 0, 59),
            hours=_field(fields[2], 0, 23),
            days=_field(fields[3], 1, 31),
            months=_field(fields[4], 1, 12, _MONTHS),
            weekdays=frozenset(weekdays),
            days_any=fields[3] in ("*", "?"),
            weekdays_any=fields[5] in ("*", "?"),
        )
    except ScheduleError as exc:
        raise ScheduleError(f"invalid schedule {expression!r}: {exc}") from exc
