"""EventBridge Scheduler expressions: validated here, so a bad one is a clear 4xx, and evaluated
here, so the embedded AWS can fire schedules as AWS would (moto stores them and never fires them).

Three forms, as EventBridge Scheduler takes them:
- `cron(minutes hours day-of-month month day-of-week year)`: six fields, not Unix cron's five. One
  of day-of-month and day-of-week must be `?`. Day-of-week counts 1-7 from SUNDAY; `L` (last),
  `#` (nth weekday of the month) and `W` (nearest weekday) are AWS extensions.
- `rate(value unit)`: minutes, hours or days; `1 minute` but `5 minutes`, as AWS insists.
- `at(yyyy-mm-ddThh:mm:ss)`: once, in the schedule's time zone.

Evaluation is APScheduler's (time zones and daylight saving included); this module only translates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_CRON = re.compile(r"^cron\((.*)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # EventBridge: 1 = SUN
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th"}
_FIELD = re.compile(r"^(\*|\d+|[A-Za-z]{3})(-(\d+|[A-Za-z]{3}))?(/\d+)?$")
_RANGES = {
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "year": (1970, 2199),
}
MIN_RATE_SECONDS = 60


class ExpressionError(ValueError):
    """An expression EventBridge Scheduler would refuse (or that Chaosplane cannot evaluate)."""


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(f"unknown time zone {name!r}: use an IANA name such as Europe/Paris") from None


def _number(token: str, field: str, names: list[str] | None, offset: int = 0) -> int:
    if token.isdigit():
        value = int(token)
    elif names is not None and token.lower() in names:
        value = names.index(token.lower()) + 1
    else:
        raise ExpressionError(f"{field}: {token!r} is not a number" + (" or a name" if names else ""))
    low, high = _RANGES.get(field, (1, 7))
    if not low <= value <= high:
        raise ExpressionError(f"{field}: {value} is outside {low}-{high}")
    return value - offset


def _list(value: str, field: str, names: list[str] | None = None, as_names: list[str] | None = None) -> str:
    """A field's comma list, checked, in APScheduler's syntax (names for weekdays)."""
    parts = []
    for part in value.split(","):
        match = _FIELD.match(part)
        if not match:
            raise ExpressionError(f"{field}: cannot read {part!r}")
        start, _, end, step = match.groups()
        if start == "*":
            if end:
                raise ExpressionError(f"{field}: {part!r} is not a range")
            parts.append("*" + (step or ""))
            continue
        first = _number(start, field, names)
        last = _number(end, field, names) if end else None
        if last is not None and last < first:
            raise ExpressionError(f"{field}: range {part!r} runs backwards")
        if step and last is None:
            # AWS's `start/step` means from start to the end of the field's range.
            last = _RANGES.get(field, (1, 7))[1]
        show = (lambda n: as_names[n - 1]) if as_names else str
        text = show(first) + (f"-{show(last)}" if last is not None else "")
        parts.append(text + (step or ""))
    return ",".join(parts)


def _cron(fields: list[str]) -> dict[str, str]:
    if len(fields) != 6:
        raise ExpressionError(
            f"cron() takes 6 fields (minutes hours day-of-month month day-of-week year), not {len(fields)}; "
            "EventBridge cron is not Unix cron: e.g. cron(0 9 ? * MON-FRI *)"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(
            "exactly one of day-of-month and day-of-week must be ? (e.g. cron(0 9 * * ? *))"
        )
    trigger = {
        "minute": _list(minutes, "minutes"),
        "hour": _list(hours, "hours"),
        "month": _list(month, "month", _MONTHS),
        "year": _list(year, "year"),
        "day": "*",
        "day_of_week": "*",
    }
    if dom != "?":
        if "W" in dom.upper():
            raise ExpressionError("day-of-month: W (nearest weekday) is not supported by Chaosplane")
        trigger["day"] = "last" if dom.upper() == "L" else _list(dom, "day-of-month")
        return trigger
    nth = re.match(r"^(\w+)#([1-5])$", dow)
    last = re.match(r"^(\w+)L$", dow)
    if nth:
        day = _WEEKDAYS[_number(nth.group(1), "day-of-week", _WEEKDAYS) - 1]
        trigger["day"] = f"{_ORDINALS[int(nth.group(2))]} {day}"
    elif last:
        trigger["day"] = f"last {_WEEKDAYS[_number(last.group(1), 'day-of-week', _WEEKDAYS) - 1]}"
    elif dow.upper() == "L":
        trigger["day_of_week"] = "sat"  # AWS: `L` alone in day-of-week is the last day of the week
    else:
        trigger["day_of_week"] = _list(dow, "day-of-week", _WEEKDAYS, as_names=_WEEKDAYS)
    return trigger


@dataclass(frozen=True)
class Recurrence:
    """When a schedule fires: `next_after` and `between`, in UTC, honouring start and end dates."""

    expression: str
    zone: ZoneInfo
    start: datetime | None = None
    end: datetime | None = None
    anchor: datetime | None = None  # rate() counts from the start date, else from this (creation)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment` (aware), or None if it never fires again."""
        if self.start is not None and moment < self.start:
            moment = self.start - timedelta(microseconds=1)
        found = self._next(moment)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found.astimezone(UTC)

    def between(self, after: datetime, until: datetime) -> list[datetime]:
        """Every fire time in (after, until]."""
        times = []
        moment = after
        while (found := self.next_after(moment)) is not None and found <= until:
            times.append(found)
            moment = found
        return times

    def _next(self, moment: datetime) -> datetime | None:
        if (cron := _CRON.match(self.expression)) is not None:
            trigger = CronTrigger(timezone=self.zone, **_cron(cron.group(1).split()))
            # APScheduler answers "at or after": ask from the next whole second.
            after = moment.replace(microsecond=0) + timedelta(seconds=1)
            found: datetime | None = trigger.get_next_fire_time(None, after)
            return found
        if (rate := _RATE.match(self.expression)) is not None:
            every = timedelta(seconds=int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")])
            anchor = self.start or self.anchor or moment
            if moment < anchor:
                return anchor
            return anchor + every * ((moment - anchor) // every + 1)
        if (at := _AT.match(self.expression)) is not None:
            when = datetime.fromisoformat(at.group(1)).replace(tzinfo=self.zone)
            return when if when > moment else None
        raise ExpressionError(f"not a schedule expression: {self.expression!r}")


def parse(
    expression: str,
    zone: str = "UTC",
    start: datetime | None = None,
    end: datetime | None = None,
    anchor: datetime | None = None,
) -> Recurrence:
    """Check `expression` as EventBridge Scheduler would; raise ExpressionError naming the problem."""
    expression = expression.strip()
    tz = time_zone(zone)
    if (cron := _CRON.match(expression)) is not None:
        try:
            CronTrigger(timezone=tz, **_cron(cron.group(1).split()))
        except ExpressionError:
            raise
        except ValueError as err:  # what our checks let through and APScheduler still refuses
            raise ExpressionError(f"cannot evaluate {expression!r}: {err}") from None
    elif (rate := _RATE.match(expression)) is not None:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ExpressionError("rate() needs a positive value")
        if (value == 1) != (not unit.endswith("s")):
            right = unit.rstrip("s") + ("" if value == 1 else "s")
            raise ExpressionError(f"rate({value} {unit}) must be written rate({value} {right})")
    elif (at := _AT.match(expression)) is not None:
        try:
            datetime.fromisoformat(at.group(1))
        except ValueError:
            raise ExpressionError(f"at(): {at.group(1)} is not a valid date and time") from None
    elif expression.startswith(("cron(", "rate(", "at(")):
        kind = expression.split("(", 1)[0]
        example = {
            "cron": "cron(0 9 ? * MON-FRI *)",
            "rate": "rate(5 minutes)",
            "at": "at(2026-12-01T09:00:00)",
        }
        raise ExpressionError(f"cannot read {expression!r}; a {kind}() expression looks like {example[kind]}")
    else:
        raise ExpressionError(
            f"{expression!r} is not a schedule expression: use cron(...), rate(...) or at(...), "
            "as EventBridge Scheduler does"
        )
    if start is not None and end is not None and end <= start:
        raise ExpressionError("end_date must be after start_date")
    return Recurrence(expression, tz, start, end, anchor)
