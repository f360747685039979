"""What Graph's credential sign-in activity report says, tenant-wide, for the read-only tools.

The report (``/beta/reports/appCredentialSignInActivities``) has one row per credential that signed
in, by keyId, for application and service-principal credentials alike. It is day-granular (a last
sign-in reads as midnight of its day) and at least a day late, so "never" means "not in the report",
not "never used in the last hours". The reconciler reads it per app (`Directory.credential_sign_ins`);
the inventory reads it once for the whole tenant (`ApplicationCatalog.sign_in_report`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

#: How every output says the report's age, once per inventory.
REPORT_AGE: Final = "day-granular, at least a day late"
#: Why the report could not be read, by Graph's 403 code (the two that users meet).
NO_AUDIT_LOG: Final = "no AuditLog.Read.All"
NO_PREMIUM: Final = "the tenant has no Entra ID P1/P2 licence"
GLOBAL_ONLY: Final = "the report exists only in Microsoft's global cloud"


@dataclass(frozen=True)
class SignInReport:
    """Either the last sign-in of every credential the report lists (lower-case keyId → its day,
    ``None`` when the row has no date), or why it could not be read (``unavailable``, safe to show)."""

    last_sign_ins: Mapping[str, datetime | None] = field(default_factory=dict)
    unavailable: str | None = None

    @classmethod
    def refused(cls, reason: str) -> SignInReport:
        return cls({}, reason)

    @property
    def readable(self) -> bool:
        return self.unavailable is None

    def covers(self, key_id: str) -> bool:
        return key_id.lower() in self.last_sign_ins

    def last_sign_in(self, key_id: str) -> datetime | None:
        return self.last_sign_ins.get(key_id.lower())


def refusal_reason(code: str) -> str:
    """The reason to show for a 403 of the report, by Graph's error code."""
    if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant":
        return NO_PREMIUM
    if code == "Authorization_RequestDenied":
        return NO_AUDIT_LOG
    return f"Graph refused the report ({code or 'HTTP 403'})"
