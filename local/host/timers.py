"""Timer triggers: NCRONTAB schedules in UTC (or WEBSITE_TIME_ZONE when it names an IANA zone).

Like the host, a timer never overlaps itself: the next occurrence is computed after an
invocation ends, from the current time. `runOnStartup` fires once when the host starts.
`useMonitor` is accepted and ignored: this host keeps no schedule status between runs, so a
missed occurrence while the host was down is not reported as past due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from .index import FunctionSpec, IndexError_, resolve_expression
from .logs import HOST_LOGGER
from .ncrontab import Schedule, ScheduleError, parse_schedule

__all__ = ["TimerListener", "timer_schedule"]

Execute = Callable[[FunctionSpec, dict[str, Any], str], Awaitable[bool]]


def timer_schedule(spec: FunctionSpec, environ: dict[str, str] | os._Environ[str]) -> Schedule:
    where = f"function {spec.name!r}"
    expression = resolve_expression(str(spec.trigger.get("schedule", "")), environ, where)
    try:
        return parse_schedule(expression)
    except ScheduleError as exc:
        raise IndexError_(f"{where}: {exc}") from exc


def _zone() -> tzinfo:
    name = os.environ.get("WEBSITE_TIME_ZONE")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logging.getLogger(HOST_LOGGER).warning(
                "WEBSITE_TIME_ZONE %r is not an IANA zone here; timers use UTC", name
            )
    return UTC


class TimerListener:
    def __init__(self, spec: FunctionSpec, schedule: Schedule, execute: Execute) -> None:
        self.spec, self.schedule, self._execute = spec, schedule, execute
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._zone = _zone()
        self._last: datetime | None = None
        self.next_due: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer:{self.spec.name}")

    async def stop(self, grace: float) -> None:
        self._stop.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

    async def _fire(self, due: datetime, past_due: bool) -> None:
        now = datetime.now(self._zone)
        nxt = self.schedule.next_after(now)
        info = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {
                "Last": (self._last or datetime.min.replace(tzinfo=UTC)).isoformat(),
                "Next": nxt.isoformat(),
                "LastUpdated": now.isoformat(),
            },
            "IsPastDue": past_due,
        }
        name = self.spec.trigger["name"]
        request = TimerRequestConverter.decode(
            meta.Datum(json.dumps(info), "json"), trigger_metadata={}
        )
        await self._execute(self.spec, {name: request}, f"Timer fired at {due.isoformat()}")
        self._last = due

    async def _run(self) -> None:
        if self.spec.trigger.get("runOnStartup"):
            await self._fire(datetime.now(self._zone), past_due=False)
        last_due: datetime | None = None
        while not self._stop.is_set():
            now = datetime.now(self._zone)
            # An early wake-up must not fire the same occurrence twice.
            due = self.schedule.next_after(max(now, last_due) if last_due else now)
            last_due = due
            self.next_due = due
            wait = (due - now).total_seconds()
            try:
                await asyncio.wait_for(self._stop.wait(), max(0.0, wait))
                return
            except TimeoutError:
                pass
            late = (datetime.now(self._zone) - due).total_seconds() > 1.0
            await self._fire(due, past_due=late)
