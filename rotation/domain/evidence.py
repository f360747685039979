"""Retirement on evidence: an old credential goes only once the sign-in report shows nothing uses it.

Microsoft's renewal runbook says to confirm in the sign-in logs that the new keyId is in use before
removing the old one; the grace period alone is a guess (Key Vault references refresh about once a
day, pipelines cache, people copy values). Graph's per-credential report
(``/beta/reports/appCredentialSignInActivities``) is that evidence, with two limits this rule allows
for: it is late (at least a day) and day-granular (a last sign-in reads as midnight of its day).

:func:`retirement_hold` is the pure decision; the retire step (``rotation.service.steps.retire``)
reads the report and acts on it. An emergency never waits for evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from rotation.domain.model import ensure_utc, format_utc

#: How far behind real time the report may be: documented as "not real time", seen a day late, and a
#: sign-in of day D reads as D 00:00, so the report says nothing about the last two days.
REPORT_DELAY: Final = timedelta(hours=48)
_DAY: Final = timedelta(days=1)


class EvidenceMode(StrEnum):
    """``ROTATION_RETIREMENT_EVIDENCE``: ``off`` (the grace period decides), ``auto`` (the report
    decides when the rotator may read it, the grace period otherwise, said once) or ``required``
    (no retirement without the report)."""

    OFF = "off"
    AUTO = "auto"
    REQUIRED = "required"


@dataclass(frozen=True)
class Hold:
    """Why an old credential stays although its grace period is over; ``reason`` is safe to show."""

    reason: str
    last_sign_in: datetime | None


def retirement_hold(
    last_sign_in: datetime | None,
    *,
    key_id: str,
    active_since: datetime,
    now: datetime,
    quiet: timedelta,
    old_expires: datetime | None,
    delay: timedelta = REPORT_DELAY,
) -> Hold | None:
    """Whether the old credential ``key_id`` must stay: ``None`` when it may go.

    It may go when the report shows it unused for ``quiet`` within the span the report covers
    (up to ``now - delay``), and that quiet span began after the new credential became active
    (``active_since``: before it, consumers had nothing else to use). It never stays past its own
    expiry: an expired credential signs nobody in.
    """
    now = ensure_utc(now)
    if old_expires is not None and now >= ensure_utc(old_expires):
        return None
    covered_until = now - delay
    quiet_from = covered_until - quiet
    if quiet_from < ensure_utc(active_since):
        ready = ensure_utc(active_since) + quiet + delay
        return Hold(
            f"waiting for the sign-in report to cover {quiet} without credential {key_id} after the new "
            f"credential became active (not before {format_utc(ready)})",
            last_sign_in,
        )
    if last_sign_in is not None and ensure_utc(last_sign_in) + _DAY > quiet_from:
        day = f"{ensure_utc(last_sign_in):%Y-%m-%d}"
        return Hold(f"credential {key_id} signed in on {day}: something still uses it", last_sign_in)
    return None
