"""The inventory as one in-memory model: every output (table, JSON, CSV, HTML, HTTP) renders it.

Plain values only, never a secret value: ``hint`` is the three characters Graph itself shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

Kind = Literal["password", "certificate"]
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
    #: On which object the credential lives: ``application`` or ``servicePrincipal``.
    credential_object: str = "application"

    def days_left(self, now: datetime) -> float | None:
        return None if self.end is None else (self.end - now).total_seconds() / 86400

    def urgency(self, now: datetime) -> Urgency:
        return urgency_of(self.days_left(now))


@dataclass(frozen=True)
class Inventory:
    generated: datetime
    rows: tuple[InventoryRow, ...]
    applications: int
    vault_secrets: int
    days: int | None = None
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        by_standing = {s.value: 0 for s in Standing}
        by_urgency: dict[str, int] = {"expired": 0, "critical": 0, "soon": 0, "later": 0, "none": 0}
        for row in self.rows:
            by_standing[row.standing.value] += 1
            by_urgency[row.urgency(self.generated)] += 1
        return {**by_standing, **by_urgency, "total": len(self.rows)}
