"""EventBridge Scheduler expressions: what is refused (with the problem named) and when each fires."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaosplane.schedules import ExpressionError, parse


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 9 * * 1", "not a schedule expression"),
        ("cron(0 9 * * 1)", "6 fields"),
        ("cron(0 9 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 9 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 9 * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
        ("cron(0 9 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
        ("cron(0 9 ? * FUN *)", "day-of-week: 'FUN' is not a number or a name"),
        ("cron(0 9 15W * ? *)", "W (nearest weekday) is not supported"),
        ("cron(0 9 5-1 * ? *)", "runs backwards"),
        ("rate(5 minute)", "must be written rate(5 minutes)"),
        ("rate(1 hours)", "must be written rate(1 hour)"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "a rate() expression looks like rate(5 minutes)"),
        ("at(2026-02-30T09:00:00)", "not a valid date"),
    ],
)
def test_bad_expressions_are_refused_naming_the_problem(expression: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ExpressionError, match="unknown time zone 'Mars/Olympus'"):
        parse("rate(5 minutes)", "Mars/Olympus")


def test_a_daily_cron_keeps_its_local_time_across_daylight_saving() -> None:
    """09:00 in Berlin is 08:00 UTC before the last Sunday of March 2026 and 07:00 UTC after it."""
    daily = parse("cron(0 9 * * ? *)", "Europe/Berlin")

    fired = daily.between(utc(2026, 3, 27, 0, 0), utc(2026, 3, 31, 0, 0))

    assert fired == [utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]


def test_weekday_numbers_count_from_sunday_as_in_eventbridge() -> None:
    weekdays = parse("cron(30 6 ? * 2-6 *)")  # MON-FRI
    fired = weekdays.between(utc(2026, 11, 27, 12), utc(2026, 12, 5, 12))  # Fri 27 Nov .. Sat 5 Dec
    assert [f.strftime("%a %d") for f in fired] == ["Mon 30", "Tue 01", "Wed 02", "Thu 03", "Fri 04"]
    assert parse("cron(30 6 ? * MON-FRI *)").between(utc(2026, 11, 27, 12), utc(2026, 12, 5, 12)) == fired


def test_nth_and_last_weekday_of_the_month() -> None:
    third_friday = parse("cron(0 12 ? * 6#3 *)")
    last_friday = parse("cron(0 12 ? * 6L *)")
    assert third_friday.next_after(utc(2026, 1, 1)) == utc(2026, 1, 16, 12)
    assert last_friday.next_after(utc(2026, 1, 1)) == utc(2026, 1, 30, 12)
    assert parse("cron(0 0 L * ? *)").next_after(utc(2026, 2, 1)) == utc(2026, 2, 28)


def test_steps_start_dates_end_dates_and_years() -> None:
    quarter_hours = parse("cron(0/15 * * * ? *)")
    assert quarter_hours.between(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 11, 0)) == [
        utc(2026, 1, 1, 10, 15),
        utc(2026, 1, 1, 10, 30),
        utc(2026, 1, 1, 10, 45),
        utc(2026, 1, 1, 11, 0),
    ]
    bounded = parse("cron(0 9 * * ? *)", start=utc(2026, 5, 10), end=utc(2026, 5, 12, 12))
    assert bounded.between(utc(2026, 1, 1), utc(2027, 1, 1)) == [
        utc(2026, 5, 10, 9),
        utc(2026, 5, 11, 9),
        utc(2026, 5, 12, 9),
    ]
    assert parse("cron(0 9 1 1 ? 2027)").between(utc(2026, 1, 1), utc(2030, 1, 1)) == [utc(2027, 1, 1, 9)]


def test_rate_counts_from_the_start_and_at_fires_once_in_its_zone() -> None:
    every_ten = parse("rate(10 minutes)", anchor=utc(2026, 1, 1, 10, 3))
    assert every_ten.between(utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 30)) == [
        utc(2026, 1, 1, 10, 3),
        utc(2026, 1, 1, 10, 13),
        utc(2026, 1, 1, 10, 23),
    ]
    once = parse("at(2026-07-01T09:00:00)", "America/New_York")
    assert once.between(utc(2026, 1, 1), utc(2027, 1, 1)) == [utc(2026, 7, 1, 13)]
    assert once.next_after(utc(2026, 7, 1, 13)) is None
