"""The inventory as one in-memory model: every output (table, JSON, CSV, HTML, HTTP) renders it.

Plain values only, never a secret value: ``hint`` is the three characters Graph itself shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from rotation.domain.sign_in_report import REPORT_AGE

Kind = Literal["password", "certificate", "federated"]
#: On which directory object a credential lives: the app registration or its service principal.
CredentialObject = Literal["application", "servicePrincipal"]
#: What the sign-in report says of a credential: a day (``reported``), nothing (``never``: not in the
#: report), ``unknown`` (the report could not be read) or ``notReported`` (federated credentials: the
#: report lists only secrets and certificates).
SignInStatus = Literal["reported", "never", "unknown", "notReported"]
Urgency = Literal["expired", "critical", "soon", "later", "none"]
FORMATS: Final = ("table", "json", "csv", "html")
HTTP_FORMATS: Final = ("json", "html")
MAX_DAYS: Final = 3650
#: Urgency thresholds in days (the HTML colours and the summary use the same).
CRITICAL_DAYS: Final = 7
SOON_DAYS: Final = 30


class Standing(StrEnum):
    """How the rotator relates to a credential (or, for ``dangling``, a vault secret)."""

    MANAGED = "managed"
    RETIRING = "retiring"
    ORPHANED = "orphaned"
    UNMANAGED = "unmanaged"
    DANGLING = "dangling"


def urgency_of(days_left: float | None) -> Urgency:
    if days_left is None:
        return "none"
    if days_left <= 0:
        return "expired"
    if days_left < CRITICAL_DAYS:
        return "critical"
    if days_left < SOON_DAYS:
        return "soon"
    return "later"


@dataclass(frozen=True)
class InventoryRow:
    """One credential (or one dangling vault secret). Never holds a value; ``hint`` is Graph's."""

    standing: Standing
    kind: Kind
    key_id: str
    app_id: str | None
    app_name: str | None
    credential_name: str | None = None
    hint: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    vault: str | None = None
    secret: str | None = None
    note: str = ""
    credential_object: CredentialObject = "application"
    #: A certificate's SHA-1 thumbprint (Graph's ``customKeyIdentifier``).
    thumbprint: str | None = None
    #: A federated credential's trusted issuer and subject (who may sign in as the app).
    issuer: str | None = None
    subject: str | None = None
    sign_in_status: SignInStatus = "unknown"
    #: The day of the last sign-in the report shows (``sign_in_status == "reported"``).
    last_sign_in: datetime | None = None
    #: The app has no password left that signs in (none, or all expired), on either object.
    no_password_left: bool = False

    def days_left(self, now: datetime) -> float | None:
        return None if self.end is None else (self.end - now).total_seconds() / 86400

    def urgency(self, now: datetime) -> Urgency:
        return urgency_of(self.days_left(now))

    @property
    def last_sign_in_text(self) -> str:
        """The last sign-in as every format shows it: its day, ``never`` (not in the report),
        ``unknown`` (the report could not be read: the inventory says why, once) or ``n/a``."""
        if self.sign_in_status == "reported" and self.last_sign_in is not None:
            return f"{self.last_sign_in:%Y-%m-%d}"
        return {"never": "never", "unknown": "unknown"}.get(self.sign_in_status, "n/a")


@dataclass(frozen=True)
class Inventory:
    generated: datetime
    rows: tuple[InventoryRow, ...]
    applications: int
    vault_secrets: int
    days: int | None = None
    warnings: tuple[str, ...] = ()
    #: Why the sign-in report could not be read (said once for the whole inventory), or ``None``.
    sign_ins_unavailable: str | None = None
    #: Apps that hold credentials but no password that signs in: ``(appId, display name)``.
    apps_without_password: tuple[tuple[str, str | None], ...] = ()
    service_principals: int = 0
    #: How many vault certificates were listed; ``None`` while ``ROTATION_CERTIFICATES`` is off.
    vault_certificates: int | None = None

    def sign_in_line(self) -> str:
        """What the "last sign-in" column means, said once per inventory."""
        if self.sign_ins_unavailable is not None:
            return f"last sign-in: unknown ({self.sign_ins_unavailable})"
        return f"last sign-in: Graph's sign-in activity report ({REPORT_AGE}); never = not in the report"

    def counts(self) -> dict[str, int]:
        by_standing = {s.value: 0 for s in Standing}
        by_urgency: dict[str, int] = {"expired": 0, "critical": 0, "soon": 0, "later": 0, "none": 0}
        for row in self.rows:
            by_standing[row.standing.value] += 1
            by_urgency[row.urgency(self.generated)] += 1
        return {**by_standing, **by_urgency, "total": len(self.rows)}
