"""Find the managed secrets that need work, from list calls only, and reconcile them.

`scan` reads every vault in `ROTATION_VAULTS` with `list_properties_of_secrets` (one request per 25
secrets, no values) and decides per secret with `policy.assess`. The timer trigger enqueues
what `scan` finds and logs the expiry warnings (`report_expiring`); the command line reconciles it
inline with bounded concurrency.

Given the app catalogue, `scan` also lists the rotator's applications once (one request per 999
apps) to find managed secrets whose `CredentialId` names a credential deleted in Entra: their value
cannot sign in, so they are due now (and alerted on), not reported healthy until they would expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from rotation.domain import policy
from rotation.domain.errors import RotationError
from rotation.domain.model import Action, Outcome, ReconcileRequest, SecretVersion
from rotation.domain.state import SecretStatus
from rotation.observability import event
from rotation.service.ports import ApplicationCatalog, Lock, Vault
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings

__all__ = ["SecretStatus", "reconcile_all", "report_expiring", "scan", "status_of", "work_requests"]


def status_of(version: SecretVersion, settings: Settings, now: datetime) -> SecretStatus:
    """The status of one listed secret: :func:`rotation.domain.policy.assess` (kept under this name
    for the status view)."""
    return policy.assess(version, now, settings)


async def scan(
    settings: Settings,
    vaults: Mapping[str, Vault],
    now: datetime,
    *,
    only: str | None = None,
    failures: dict[str, RotationError] | None = None,
    catalog: ApplicationCatalog | None = None,
) -> list[SecretStatus]:
    """Every managed secret of every configured vault (or of `only`), with what it needs.

    One unreadable vault must not hide the others' work: with `failures` given, its error is recorded
    there (and logged) and the scan goes on; without, the first error is raised. With `catalog`,
    secrets whose credential was deleted in Entra are found too (:func:`mark_deleted_credentials`).
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
    if catalog is not None:
        found = await mark_deleted_credentials(found, catalog)
    return sorted(found, key=lambda s: (s.vault, s.name.lower()))


def report_expiring(statuses: list[SecretStatus], settings: Settings, now: datetime) -> None:
    """Log `CredentialExpiring` for each managed secret expiring within `ROTATION_EXPIRY_ALERT_DAYS`.

    Only the timer sweep calls this: the expiry alert counts these lines, so a read that scans the
    same vaults (`GET /api/secrets`, `status`) must not log them, or every dashboard refresh would
    fire the alert again.
    """
    for status in statuses:
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


#: Graph's largest page for `/applications`: the fewest requests per sweep.
APPLICATION_PAGE = 999


async def mark_deleted_credentials(statuses: list[SecretStatus], catalog: ApplicationCatalog) -> list[SecretStatus]:
    """``statuses`` with every active secret whose ``CredentialId`` the app no longer has made due now,
    each alerted once per sweep (``CredentialMissing``). Apps the rotator cannot read, or a listing
    that fails, change nothing (the reconcile finds the same on its own read); one app listing serves
    every vault."""
    named = [s for s in statuses if s.credential_id and s.app_id and s.enabled and not s.problem]
    if not named:
        return statuses
    try:
        listed = await catalog.list_applications(page_size=APPLICATION_PAGE)
    except RotationError as error:
        event("CredentialCheckSkipped", level=logging.WARNING, errorCode=error.code, error=error.message)
        return statuses
    credentials = {
        item.application.app_id.lower(): {c.key_id.lower() for c in item.application.password_credentials}
        for item in listed
    }
    marked: list[SecretStatus] = []
    for status in statuses:
        live = credentials.get((status.app_id or "").lower()) if status in named else None
        credential_id = (status.credential_id or "").lower()
        if live is None or credential_id in live or status.state == "validating":
            marked.append(status)
            continue
        event(
            "CredentialMissing",
            level=logging.ERROR,
            vault=status.vault,
            secret=status.name,
            appId=status.app_id,
            keyId=status.credential_id,
        )
        reason = f"credential {status.credential_id} no longer exists on app {status.app_id}: the value cannot sign in"
        marked.append(dataclasses.replace(status, needs_work=reason, next_look_at=None))
    return marked


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
    lock: Lock | None = None,
) -> list[Outcome]:
    """Reconcile `requests` with at most `concurrency` at a time (each secret at most once), each
    under `lock` when one is given: a secret whose lock another worker holds is skipped (`LockHeld`
    in its outcome), since that worker converges it."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(request: ReconcileRequest) -> Outcome:
        async with gate:
            # `reconcile` reports a RotationError in the outcome, so one secret's failure never stops
            # the others; so does a lock that is held or cannot be taken.
            if lock is None:
                outcome = await reconciler.reconcile(request, dry_run=dry_run)
            else:
                try:
                    async with lock.hold(request.lock_key) as held:
                        outcome = await reconciler.reconcile(request, dry_run=dry_run, held=held)
                except RotationError as error:
                    skipped = Outcome(request.operation_id, request.vault, request.secret, Action.SKIPPED)
                    outcome = skipped.with_error(error)
        if on_done is not None:
            on_done(outcome)
        return outcome

    return list(await asyncio.gather(*(one(r) for r in requests)))
