"""The stop conditions' CloudWatch metrics around a run: what the result page charts.

A run's result keeps, for every stop-condition alarm, the alarm's metric from before the fault to
after it, the alarm's threshold and comparison, and the fault window, so a reader sees whether the
fault moved the metric and how near it came to stopping the run. Read with GetMetricData when the
run ends (kept in the result's `metrics`), and on demand: while it runs, and after it ends until the
minutes after it have passed, when the complete chart replaces the one kept at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chaosplane.models import ExperimentResult

MARGIN = timedelta(minutes=10)  # how much of "before" and "after" the chart shows
# CloudWatch takes a few minutes to publish a point, and an alarm's period may be five minutes:
# "after" is complete this long after its last minute.
SETTLE = timedelta(minutes=5)
# A finished run's chart is read again only within this time after its end: later its alarms may be
# gone and CloudWatch keeps one-minute points for 15 days, so a new read could only lose points.
READ_AGAIN_UNTIL = timedelta(hours=1)
MetricReader = Callable[[list[str], datetime, datetime], list[dict[str, Any]]]


def _first(result: ExperimentResult, step: str) -> datetime | None:
    return next((e.at for e in result.timeline if e.step == step), None)


def fault_window(result: ExperimentResult, now: datetime) -> tuple[datetime | None, datetime | None]:
    """From the first injection to the first rollback step (or now, while the fault is held)."""
    start = _first(result, "inject")
    if start is None:
        return None, None
    end = _first(result, "rollback") or result.end_time or now
    return start, end


def series_for(result: ExperimentResult, read: MetricReader, now: datetime) -> dict[str, Any]:
    """The chart's data: the window read, the fault window inside it, and one series per alarm."""
    begin = result.start_time or (result.timeline[0].at if result.timeline else now)
    fault_start, fault_end = fault_window(result, now)
    start = begin - MARGIN
    end = min(now, (result.end_time or now) + MARGIN)
    names = list(result.stop_conditions)  # names or ARNs: the team's reader knows where each is
    ended = result.end_time if result.status.is_final else None
    complete_at = ended + MARGIN + SETTLE if ended else None
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "fault_start": fault_start.isoformat() if fault_start else None,
        "fault_end": fault_end.isoformat() if fault_end else None,
        "series": read(names, start, end) if names else [],
        "complete": complete_at is not None and now >= complete_at,  # it will not change any more
        "complete_at": complete_at.isoformat() if complete_at else None,
        "until": (ended + MARGIN).isoformat() if ended else None,  # where "after" ends
    }


def loses_points(kept: dict[str, Any], read: dict[str, Any]) -> bool:
    """Whether a new read has no points for an alarm the kept chart has points for (alarm deleted)."""
    found = {s["alarm"]: bool(s.get("values")) for s in read.get("series", [])}
    return any(s.get("values") and not found.get(s["alarm"]) for s in kept.get("series", []))
