"""Cron expressions: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first).

Each field: ``*``, a number, ``a-b``, ``a,b,c``, ``*/n`` or ``a-b/n``. Names
(JAN, MON) are not accepted. Day-of-month and day-of-week combine as in
Vixie cron: when both are restricted, either may match. Times are UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ._errors import WorkflowDefinitionError

_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day of month": (1, 31),
    "month": (1, 12),
    "day of week": (0, 6),
}


def _field(text: str, name: str) -> frozenset[int]:
    low, high = _RANGES[name]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)  # noqa: PLW2901 - the range before the step
            if not step_text.isdigit() or int(step_text) == 0:
                raise WorkflowDefinitionError(f"cron {name}: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise WorkflowDefinitionError(f"cron {name}: bad range {part!r}")
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
            if step != 1:
                end = high
        else:
            raise WorkflowDefinitionError(f"cron {name}: {part!r} is not *, N, A-B or a step")
        if name == "day of week" and end == 7:  # 7 is Sunday too
            values.add(0)
            end = 6 if start <= 6 else 7
        if not (low <= start <= end <= high or (name == "day of week" and start == 7)):
            raise WorkflowDefinitionError(f"cron {name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(v % 7 if name == "day of week" else v for v in values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_any: bool
    weekdays_any: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse a 5- or 6-field expression.

        Raises:
            WorkflowDefinitionError: naming the field and what is wrong with it.
        """
        parts = expression.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        if len(parts) != 6:
            raise WorkflowDefinitionError(
                f"cron {expression!r}: 5 fields (min hour dom month dow) or 6 (sec first), "
                f"not {len(parts)}"
            )
        names = list(_RANGES)
        sec, minute, hour, day, month, weekday = (
            _field(text, name) for text, name in zip(parts, names, strict=True)
        )
        return cls(
            sec,
            minute,
            hour,
            day,
            month,
            weekday,
            days_any=parts[3] == "*",
            weekdays_any=parts[5] == "*",
        )

    def _date_ok(self, when: dt.datetime) -> bool:
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.days_any or self.weekdays_any:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def matches(self, when: dt.datetime) -> bool:
        """True when ``when`` (UTC, whole seconds) is a firing time."""
        return (
            when.second in self.seconds
            and when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self._date_ok(when)
        )

    def next_after(self, when: dt.datetime) -> dt.datetime:
        """The first firing time strictly after ``when`` (searches up to 4 years ahead)."""
        t = when.replace(microsecond=0) + dt.timedelta(seconds=1)
        limit = t + dt.timedelta(days=4 * 366)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + dt.timedelta(days=32)).replace(
                    day=1
                )
                continue
            if not self._date_ok(t):
                t = t.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + dt.timedelta(minutes=1)
                continue
            if self.matches(t):
                return t
            t += dt.timedelta(seconds=1)
        raise WorkflowDefinitionError("cron expression never fires (in the next 4 years)")
