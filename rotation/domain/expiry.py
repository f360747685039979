"""Which expiry window a credential crosses today: the rule of the daily expiry notices (pure).

The daily timer (``functions/expiry.py``) keeps no record of what it already said, so the rule
itself must make each window fire once per credential. Days to expiry are measured from the
start of the run's UTC day (not from the moment the run happens), and window ``w`` is crossed on
the day when those days fall in ``(w - 1, w]``; window ``0`` is the day after the credential
expired (``(-1, 0]``). Consecutive UTC days' intervals tile the time line without gap or overlap,
so with one run per day:

- every credential gets exactly one notice per window it passes through (distinct whole windows
  never overlap, so at most one window per credential per day);
- a run that starts late (a past-due timer, a slow cold start) changes nothing: the reference is
  the day, not the clock;
- a second run on the same UTC day crosses exactly the same windows again, so it repeats the
  same notices (each carries a ``noticeId`` — keyId, window and day — that a consumer can
  de-duplicate on, and the alert rule mutes repeats);
- a day without a run loses that day's crossings: those credentials are told at their next window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

#: ``ROTATION_EXPIRY_WINDOWS_DAYS``' default: a month, two weeks, a week, the last day, expired.
DEFAULT_WINDOWS: Final[tuple[int, ...]] = (30, 14, 7, 1, 0)
#: The largest window a setting may name (a credential lives at most two years; a year's notice is plenty).
MAX_WINDOW_DAYS: Final = 365
DAY: Final = timedelta(days=1)


def notice_day(now: datetime) -> datetime:
    """The start (00:00 UTC) of ``now``'s UTC day: what days to expiry are measured from."""
    moment = now.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def days_from(day: datetime, end: datetime) -> float:
    """Days from ``day`` to ``end`` (negative once expired)."""
    return (end - day) / DAY


def window_crossed(end: datetime | None, now: datetime, windows: Sequence[int]) -> int | None:
    """The window ``end`` crosses on ``now``'s UTC day, or ``None``: ``w`` when the days from the
    start of that day to ``end`` fall in ``(w - 1, w]``. A credential without an end never expires."""
    if end is None:
        return None
    days = days_from(notice_day(now), end)
    for window in windows:
        if window - 1 < days <= window:
            return window
    return None


def parse_windows(value: str) -> tuple[tuple[int, ...] | None, str | None]:
    """``ROTATION_EXPIRY_WINDOWS_DAYS``: comma-separated distinct whole days from 0 to 365, e.g.
    ``30,14,7,1,0``. Returns ``(windows in descending order, None)`` or ``(None, what is wrong)``."""
    expected = (
        f"expected comma-separated distinct whole numbers of days from 0 to {MAX_WINDOW_DAYS}, "
        f"e.g. '{','.join(map(str, DEFAULT_WINDOWS))}'"
    )
    items = [item.strip() for item in value.split(",")]
    windows: list[int] = []
    for item in items:
        # isdigit() alone accepts other scripts' digits ('٣'); int() would accept '+7' and '7_0'.
        if not item or not item.isascii() or not item.isdigit():
            shown = repr(item) if item else "an empty entry"
            return None, f"{shown} is not a whole number of days; {expected}"
        window = int(item)
        if window > MAX_WINDOW_DAYS:
            return None, f"{window} is out of range; {expected}"
        if window in windows:
            return None, f"{window} is listed twice; {expected}"
        windows.append(window)
    return tuple(sorted(windows, reverse=True)), None
