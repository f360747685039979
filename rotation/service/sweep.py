"""Find the managed secrets that need work, from list calls only, and reconcile them.

`scan` reads every vault in `ROTATION_VAULTS` with `list_properties_of_secrets` (one request per 25
secrets, no values) and decides per secret with `policy.assess`. The timer trigger enqueues
what `scan` finds and logs the expiry warnings (`report_expiring`); the command line reconciles it
inline with bounded concurrency.

Given the app catalogue, `scan` also lists the rotator's applications once (one request per 999
apps) to find managed secrets whose `CredentialId` names a credential deleted in Entra: their value
cannot sign in, so they are due now (and alerted on), not reported healthy until they would expire.
When a scanned secret holds a service principal's password, it lists the service principals once too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from rotation.domain import policy
from rotation.domain.errors import RotationError
from rotation.domain.listing import APPLICATION_PAGE_MAX
from rotation.domain.model import (
    APPLICATION,
    SERVICE_PRINCIPAL,
    Action,
    CredentialObject,
    Outcome,
    ReconcileRequest,
    SecretVersion,
)
from rotation.domain.state import SecretStatus
from rotation.observability import event
from rotation.service.ports import ApplicationCatalog, Lock, Vault
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings

__all__ = [
    "ScanTally",
    "SecretStatus",
    "needs_attention",
    "reconcile_all",
    "report_expiring",
    "scan",
    "status_of",
    "work_requests",
]


def status_of(version: SecretVersion, settings: Settings, now: datetime) -> SecretStatus:
    """The status of one listed secret: :func:`rotation.domain.policy.assess` (kept under this name
    for the status view)."""
    return policy.assess(version, now, settings)


@dataclass
class ScanTally:
    """What a scan saw, counted as it goes: a scan that keeps only some statuses still reports on all."""

    managed: int = 0
    problems: int = 0

    def count(
        self, status: SecretStatus, keep: Callable[[SecretStatus], bool] | None, found: list[SecretStatus]
    ) -> None:
        """Count ``status`` and, if ``keep`` accepts it (or there is no ``keep``), add it to ``found``."""
        self.managed += 1
        self.problems += 1 if status.problem else 0
        if keep is None or keep(status):
            found.append(status)


V = TypeVar("V")


async def scan_each_vault(
    chosen: list[tuple[str, V]],
    one: Callable[[V], Awaitable[None]],
    failures: dict[str, RotationError] | None,
    **log_fields: str,
) -> None:
    """Run ``one`` on every chosen vault at once. A vault's `RotationError` goes to ``failures`` (and
    `VaultScanFailed`, with ``log_fields``) when given, so that one unreadable vault does not hide the
    others' work; anything else, or any error without ``failures``, is raised."""
    results = await asyncio.gather(*(one(vault) for _, vault in chosen), return_exceptions=True)
    for (name, _), result in zip(chosen, results, strict=True):
        if isinstance(result, BaseException):
            if failures is None or not isinstance(result, RotationError):
                raise result
            failures[name] = result
            event(
                "VaultScanFailed",
                level=logging.ERROR,
                vault=name,
                **log_fields,
                errorCode=result.code,
                error=result.message,
            )


async def scan(
    settings: Settings,
    vaults: Mapping[str, Vault],
    now: datetime,
    *,
    only: str | None = None,
    failures: dict[str, RotationError] | None = None,
    catalog: ApplicationCatalog | None = None,
    keep: Callable[[SecretStatus], bool] | None = None,
    tally: ScanTally | None = None,
) -> list[SecretStatus]:
    """Every managed secret of every configured vault (or of `only`), with what it needs.

    Page by page (`Vault.secret_pages`), so that a sweep holds one page per vault at a time, not the
    fleet: with `keep`, only the statuses it accepts are kept (the timer keeps what needs work or
    expires soon), and `tally` counts them all. One unreadable vault must not hide the others' work:
    with `failures` given, its error is recorded there (and logged) and the scan goes on; without,
    the first error is raised. With `catalog`, secrets whose credential was deleted in Entra are
    found too (:func:`live_credentials`, :func:`marked_if_deleted`).
    """
    chosen = [(name, v) for name, v in vaults.items() if only is None or name == only.lower()]
    live = await live_credentials(catalog) if catalog is not None and chosen else None
    counts = tally if tally is not None else ScanTally()
    found: list[SecretStatus] = []
    # The service principals' passwords are listed only when a scanned secret names one: a fleet of
    # app registrations' passwords pays nothing for them.
    principals: asyncio.Task[dict[str, frozenset[str]] | None] | None = None

    async def checked(status: SecretStatus) -> SecretStatus:
        nonlocal principals
        if status.credential_object == APPLICATION:
            return marked_if_deleted(status, live)
        if catalog is None:
            return status
        if principals is None:
            principals = asyncio.ensure_future(live_service_principal_credentials(catalog))
        return marked_if_deleted(status, await principals, on=SERVICE_PRINCIPAL)

    async def one(vault: Vault) -> None:
        async for page in vault.secret_pages():
            for version in page:
                # A certificate's own secret changes only with the certificate (its own flow).
                if not version.managed or version.backs_certificate:
                    continue
                counts.count(await checked(status_of(version, settings, now)), keep, found)

    await scan_each_vault(chosen, one, failures)
    return sorted(found, key=lambda s: (s.vault, s.name.lower()))


def needs_attention(settings: Settings, now: datetime) -> Callable[[SecretStatus], bool]:
    """What the timer sweep keeps of a scan: the secrets that need work, or expire within the alert window."""

    def keep(status: SecretStatus) -> bool:
        days = status.days_to_expiry(now)
        return bool(status.needs_work) or (days is not None and days <= settings.expiry_alert_days)

    return keep


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


async def live_credentials(catalog: ApplicationCatalog) -> dict[str, frozenset[str]] | None:
    """The keyIds of every app the rotator can read, by appId (one listing, 999 apps per request);
    ``None`` when the listing fails (the check is skipped: the reconcile finds the same on its own read)."""
    try:
        listed = await catalog.list_applications(page_size=APPLICATION_PAGE_MAX)
    except RotationError as error:
        event("CredentialCheckSkipped", level=logging.WARNING, errorCode=error.code, error=error.message)
        return None
    return {
        item.application.app_id.lower(): frozenset(c.key_id.lower() for c in item.application.password_credentials)
        for item in listed
    }


async def live_service_principal_credentials(catalog: ApplicationCatalog) -> dict[str, frozenset[str]] | None:
    """The keyIds of every service principal's passwords, by appId (one listing, 999 per request, those
    without a password included); ``None`` when the listing fails (the reconcile's own read finds it)."""
    try:
        listed = await catalog.list_service_principals(page_size=APPLICATION_PAGE_MAX, include_without=True)
    except RotationError as error:
        event("CredentialCheckSkipped", level=logging.WARNING, errorCode=error.code, error=error.message)
        return None
    return {
        item.principal.app_id.lower(): frozenset(c.key_id.lower() for c in item.principal.password_credentials)
        for item in listed
    }


def marked_if_deleted(
    status: SecretStatus, live: Mapping[str, frozenset[str]] | None, *, on: CredentialObject = APPLICATION
) -> SecretStatus:
    """``status`` made due now (and alerted on: ``CredentialMissing``) when its ``CredentialId`` names a
    credential its app (or, ``on="servicePrincipal"``, its service principal: what ``live`` lists) no
    longer has; unchanged when the object is not readable, is not the one ``live`` lists, or nothing is
    wrong."""
    if live is None or not status.credential_id or not status.app_id or not status.enabled or status.problem:
        return status
    if status.credential_object != on:
        # An app registration's listing says nothing about its service principal's passwords, and
        # the reverse: never take one object's keyIds for the other's.
        return status
    keys = live.get(status.app_id.lower())
    if keys is None or status.credential_id.lower() in keys or status.state == "validating":
        return status
    event(
        "CredentialMissing",
        level=logging.ERROR,
        vault=status.vault,
        secret=status.name,
        appId=status.app_id,
        keyId=status.credential_id,
        credentialObject=on,
    )
    holder = "the service principal of app" if on == SERVICE_PRINCIPAL else "app"
    reason = f"credential {status.credential_id} no longer exists on {holder} {status.app_id}: the value cannot sign in"
    return dataclasses.replace(status, needs_work=reason, next_look_at=None)


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
