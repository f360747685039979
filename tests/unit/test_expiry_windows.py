"""The daily expiry notices' window rule: each window fires on exactly one day per credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotation.domain.expiry import DEFAULT_WINDOWS, notice_day, parse_windows, window_crossed

RUN = datetime(2026, 12, 10, 6, 0, tzinfo=UTC)  # the default schedule's 06:00 UTC
MIDNIGHT = datetime(2026, 12, 10, tzinfo=UTC)


def test_days_are_measured_from_the_start_of_the_runs_utc_day() -> None:
    assert notice_day(RUN) == MIDNIGHT
    assert notice_day(datetime(2026, 12, 10, 23, 59, 59, 999999, tzinfo=UTC)) == MIDNIGHT
    # A run in another offset is placed on its UTC day.
    assert notice_day(datetime(2026, 12, 11, 0, 30, tzinfo=UTC).astimezone()) == MIDNIGHT + timedelta(days=1)


@pytest.mark.parametrize(
    ("end", "window"),
    [
        (MIDNIGHT + timedelta(days=30), 30),  # the interval's closed end
        (MIDNIGHT + timedelta(days=29, seconds=1), 30),
        (MIDNIGHT + timedelta(days=29), None),  # (29, 30] is open at 29, and 29 is no window
        (MIDNIGHT + timedelta(days=30, seconds=1), None),
        (MIDNIGHT + timedelta(days=13, hours=12), 14),
        (MIDNIGHT + timedelta(days=7), 7),
        (MIDNIGHT + timedelta(hours=20), 1),  # expires later today: the last day's notice
        (MIDNIGHT + timedelta(seconds=1), 1),
        (MIDNIGHT, 0),  # expired at midnight
        (MIDNIGHT - timedelta(hours=23), 0),  # expired yesterday
        (MIDNIGHT - timedelta(days=1), None),  # expired the day before: told yesterday
        (MIDNIGHT + timedelta(days=100), None),
        (None, None),  # never expires
    ],
)
def test_window_w_is_crossed_when_the_days_fall_in_w_minus_one_to_w(end: datetime | None, window: int | None) -> None:
    assert window_crossed(end, RUN, DEFAULT_WINDOWS) == window


def test_each_window_fires_on_exactly_one_day_whatever_the_time_of_expiry() -> None:
    """Walk 40 daily runs for credentials ending at many times of day: each window fires once."""
    for minutes in range(0, 24 * 60, 37):
        end = MIDNIGHT + timedelta(days=31, minutes=minutes)
        crossed = (window_crossed(end, RUN + timedelta(days=d), DEFAULT_WINDOWS) for d in range(40))
        fired = [w for w in crossed if w is not None]
        assert fired == [30, 14, 7, 1, 0], (minutes, fired)


@pytest.mark.parametrize("hour", [0, 6, 13, 23])
def test_a_late_run_crosses_the_same_window_as_an_on_time_one(hour: int) -> None:
    end = MIDNIGHT + timedelta(days=7)
    run = MIDNIGHT + timedelta(hours=hour, minutes=59)
    assert window_crossed(end, run, DEFAULT_WINDOWS) == window_crossed(end, MIDNIGHT, DEFAULT_WINDOWS) == 7


def test_a_second_run_on_the_same_day_crosses_the_same_windows_again() -> None:
    # Stateless: a repeat run repeats the notices (they carry a noticeId to de-duplicate on).
    end = MIDNIGHT + timedelta(days=14)
    assert window_crossed(end, RUN, DEFAULT_WINDOWS) == window_crossed(end, RUN + timedelta(hours=12), DEFAULT_WINDOWS)


def test_a_missed_day_loses_that_days_window_and_the_next_window_still_fires() -> None:
    end = MIDNIGHT + timedelta(days=7, hours=3)
    runs = [RUN + timedelta(days=d) for d in range(10) if d != 1]  # no run on the day window 7 is crossed
    fired = [w for run in runs if (w := window_crossed(end, run, DEFAULT_WINDOWS)) is not None]
    assert fired == [1, 0]


def test_parse_windows_accepts_distinct_days_and_sorts_them_descending() -> None:
    assert parse_windows("30,14,7,1,0") == ((30, 14, 7, 1, 0), None)
    assert parse_windows(" 1 , 90,0") == ((90, 1, 0), None)
    assert parse_windows("365") == ((365,), None)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "an empty entry"),
        ("30,,7", "an empty entry"),
        ("30,", "an empty entry"),
        ("seven", "'seven' is not a whole number"),
        ("-1", "'-1' is not a whole number"),
        ("1e2", "not a whole number"),
        ("7_0", "not a whole number"),
        ("366", "366 is out of range"),
        ("7,7", "7 is listed twice"),
        ("07,7", "7 is listed twice"),
    ],
)
def test_parse_windows_refuses_anything_else_saying_what_is_expected(value: str, fragment: str) -> None:
    windows, problem = parse_windows(value)
    assert windows is None and problem is not None
    assert fragment in problem
    assert "from 0 to 365" in problem and "30,14,7,1,0" in problem
