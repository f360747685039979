"""Find the managed secrets that need work, from list calls only, and reconcile them.

`scan` reads every vault in `ROTATION_VAULTS` with `list_properties_of_secrets` (one request per 25
secrets, no values) and decides per secret with `policy.sweep_needs_work`. The timer trigger enqueues
what `scan` finds; the command line reconciles it inline with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rotation.domain import policy
from rotation.domain.errors import RotationError, TagError
from rotation.domain.model import ManagedSecret, Outcome, ReconcileRequest, SecretVersion, format_utc
from rotation.observability import event
from rotation.service.ports import Vault
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings


@dataclass(frozen=True)
class SecretStatus:
    """A managed secret as the list call shows it: state and dates, never a value."""

    vault: str
    name: str
    app_id: str | None
    enabled: bool
    expires: datetime | None
    updated: datetime | None
    state: str | None
    credential_id: str | None
    rotation_id: str | None
    retire_credential_id: str | None
    retire_after: datetime | None
    failure_reason: str | None
    needs_work: str | None
    problem: str | None = None

    def days_to_expiry(self, now: datetime) -> float | None:
        return None if self.expires is None else (self.expires - now).total_seconds() / 86400

    def to_dict(self, now: datetime) -> dict[str, Any]:
        days = self.days_to_expiry(now)
        return {
            "vault": self.vault,
            "secret": self.name,
            "appId": self.app_id,
            "enabled": self.enabled,
            "expires": format_utc(self.expires) if self.expires else None,
            "daysToExpiry": round(days, 1) if days is not None else None,
            "lastRotated": format_utc(self.updated) if self.updated and self.rotation_id else None,
            "state": self.state,
            "credentialId": self.credential_id,
            "rotationId": self.rotation_id,
            "pendingRetirement": (
                {
                    "credentialId": self.retire_credential_id,
                    "after": format_utc(self.retire_after) if self.retire_after else None,
                }
                if self.retire_credential_id
                else None
            ),
            "failureReason": self.failure_reason,
            "needsWork": self.needs_work,
            "problem": self.problem,
        }


def status_of(version: SecretVersion, settings: Settings, now: datetime) -> SecretStatus:
    needs = policy.sweep_needs_work(version, settings, now)
    try:
        managed = ManagedSecret.from_version(version)
    except TagError as error:
        return SecretStatus(
            version.vault,
            version.name,
            version.tags.get("ProviderAddress"),
            version.enabled,
            version.expires,
            version.updated,
            None,
            None,
            None,
            None,
            None,
            None,
            needs,
            "; ".join(error.problems),
        )
    return SecretStatus(
        vault=version.vault,
        name=version.name,
        app_id=managed.app_id,
        enabled=version.enabled,
        expires=version.expires,
        updated=version.updated,
        state=managed.state.value if managed.state else None,
        credential_id=managed.credential_id,
        rotation_id=managed.rotation_id,
        retire_credential_id=managed.retire_credential_id,
        retire_after=managed.retire_after,
        failure_reason=managed.failure_reason,
        needs_work=needs,
    )


async def scan(
    settings: Settings,
    vaults: Mapping[str, Vault],
    now: datetime,
    *,
    only: str | None = None,
    failures: dict[str, RotationError] | None = None,
) -> list[SecretStatus]:
    """Every managed secret of every configured vault (or of `only`), with what it needs.

    One unreadable vault must not hide the others' work: with `failures` given, its error is recorded
    there (and logged) and the scan goes on; without, the first error is raised.
    """
    chosen = [(name, v) for name, v in vaults.items() if only is None or name == only.lower()]
    listings = await asyncio.gather(*(vault.list_secrets() for _, vault in chosen), return_exceptions=True)
    found: list[SecretStatus] = []
    for (name, _), listing in zip(chosen, listings, strict=True):
        if isinstance(listing, BaseException):
            if failures is None or not isinstance(listing, RotationError):
                raise listing
            failures[name] = listing
            event("VaultScanFailed", level=logging.ERROR, vault=name, errorCode=listing.code, error=listing.message)
            continue
        found.extend(status_of(version, settings, now) for version in listing if version.managed)
    for status in found:
        days = status.days_to_expiry(now)
        if days is not None and days <= settings.expiry_alert_days:
            event(
                "CredentialExpiring",
                level=logging.WARNING,
                vault=status.vault,
                secret=status.name,
                appId=status.app_id,
                credentialId=status.credential_id,
                expires=status.expires,
                daysToExpiry=round(days, 1),
            )
    return sorted(found, key=lambda s: (s.vault, s.name.lower()))


def work_requests(statuses: list[SecretStatus], now: datetime, *, source: str) -> list[ReconcileRequest]:
    """One reconcile request per secret that needs work; the reason says why, for the logs."""
    return [
        ReconcileRequest.new(s.vault, s.name, now=now, reason=f"{source}: {s.needs_work}"[:500])
        for s in statuses
        if s.needs_work
    ]


async def reconcile_all(
    reconciler: Reconciler,
    requests: list[ReconcileRequest],
    *,
    concurrency: int,
    dry_run: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Reconcile `requests` with at most `concurrency` at a time (each secret at most once)."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(request: ReconcileRequest) -> Outcome:
        async with gate:
            # `reconcile` reports a RotationError in the outcome, so one secret's failure never stops
            # the others.
            outcome = await reconciler.reconcile(request, dry_run=dry_run)
        if on_done is not None:
            on_done(outcome)
        return outcome

    return list(await asyncio.gather(*(one(r) for r in requests)))
