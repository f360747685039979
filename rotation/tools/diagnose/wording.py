"""Phrases every check module shares: dates, durations, credential labels, a skipped check.

Plain functions of plain values; none of them sees a secret value except :func:`stripped`, which
the checks use only to compare a value's first three characters with Graph's ``hint``.
"""

from __future__ import annotations

from datetime import datetime

from rotation.domain.model import PasswordCredential, Sensitive, format_utc
from rotation.tools.diagnose.results import Check, Status


def stripped(value: Sensitive) -> str:
    return value.reveal().strip()


def when(moment: datetime | None) -> str:
    return format_utc(moment) if moment else "never"


def days_between(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def in_days(end: datetime | None, now: datetime) -> str:
    if end is None:
        return "no end date"
    days = days_between(end, now)
    if days < 0:
        return f"expired {abs(days):.1f} days ago ({format_utc(end)})"
    return f"expires in {days:.1f} days ({format_utc(end)})"


def credential_label(credential: PasswordCredential) -> str:
    name = f"'{credential.display_name}'" if credential.display_name else "(no description)"
    return f"{credential.key_id} {name} hint {credential.hint or '?'}"


def skip(check_id: str, title: str, why: str, remedy: str = "") -> Check:
    return Check(check_id, title, Status.SKIP, why, remedy=remedy)
