"""Collection: the inventory's only I/O, all of it reads, and cheap.

Graph ``GET /applications`` paged through ``@odata.nextLink`` (what is listed is Graph's decision:
owned apps with ``Application.ReadWrite.OwnedBy``, all with ``Application.Read.All``), Graph
``GET /servicePrincipals`` paged the same way (passwords that live on a service principal) and, per
vault in ``ROTATION_VAULTS``, one list call per 25 secrets (attributes and tags of the latest
versions, never a value) and, while ``ROTATION_CERTIFICATES`` is on, one per 25 certificates (the
same, never a certificate's DER or key).

The inventory itself (``details=True``) also reads what the expiry notices have no use for: each
app's federated identity credentials, in the same listing (``$expand=federatedIdentityCredentials``,
which makes Graph page apps by 100 instead of 999), and the sign-in activity report once for the
whole tenant (one listing, paged, instead of one request per app). An inventory over N apps makes
``ceil(N/100) + S + R`` Graph requests (S service-principal pages of 999, R report pages). Should Graph
refuse the expansion (its reference once said federated credentials come from the per-app route
only), the inventory lists without it and reads them per app: ``ceil(N/100) + N + S + R``, said as a
warning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rotation.domain.certificates import CertificateVersion
from rotation.domain.errors import GraphError, RotationError
from rotation.domain.listing import APPLICATION_PAGE_MAX, ListedApplication, ListedServicePrincipal
from rotation.domain.model import SecretVersion
from rotation.domain.sign_in_report import SignInReport
from rotation.service.certificate_ports import CertificateVault
from rotation.tools.inventory.classify import apps_without_password, classify, within_days
from rotation.tools.inventory.model import Inventory, InventoryRow

if TYPE_CHECKING:
    from rotation.runtime import Runtime

ProgressStep = Callable[[str], None]


async def _list_vault(
    name: str, runtime: Runtime, gate: asyncio.Semaphore, step: ProgressStep | None
) -> tuple[list[SecretVersion], str | None]:
    async with gate:
        try:
            listing = await runtime.vaults[name].list_secrets()
        except RotationError as error:
            # One unreadable vault must not hide the others; the report says what it could not see.
            return [], f"vault '{name}' could not be listed ({error.code}): {error.message}"
        finally:
            if step is not None:
                step(f"vault {name}")
    return listing, None


async def _list_certificates(
    name: str, vault: CertificateVault, gate: asyncio.Semaphore, step: ProgressStep | None
) -> tuple[list[CertificateVersion], str | None]:
    """Every certificate's latest attributes and tags, by list calls only (one per 25 certificates:
    no DER, no version list, nothing the key could sign)."""
    async with gate:
        listing: list[CertificateVersion] = []
        try:
            async for page in vault.certificate_pages():
                listing.extend(page)
        except RotationError as error:
            # Like an unreadable vault: its key credentials look unmanaged, and the warning says why.
            return [], f"certificates of vault '{name}' could not be listed ({error.code}): {error.message}"
        finally:
            if step is not None:
                step(f"certificates of vault {name}")
    return listing, None


@dataclass(frozen=True)
class Sources:
    """What the inventory is made of: every readable app, every configured vault's secrets (latest
    attributes and tags, never a value), and what could not be read."""

    applications: list[ListedApplication]
    secrets: list[SecretVersion]
    warnings: tuple[str, ...]
    service_principals: list[ListedServicePrincipal] = field(default_factory=list)
    #: The sign-in report, when it was asked for (``details=True``).
    sign_ins: SignInReport | None = None
    #: Every vault certificate's latest version, or ``None`` while ``ROTATION_CERTIFICATES`` is off.
    certificates: list[CertificateVersion] | None = None
    #: The vaults whose certificates could not be listed (each said in ``warnings`` too).
    unlisted_certificates: tuple[str, ...] = ()


async def _service_principals(
    runtime: Runtime, step: ProgressStep | None
) -> tuple[list[ListedServicePrincipal], str | None]:
    try:
        # Graph's largest page: a tenant has many more service principals (Microsoft's own among
        # them) than app registrations, and nothing here is expanded.
        listed = await runtime.directory.list_service_principals(page_size=APPLICATION_PAGE_MAX)
    except RotationError as error:
        # Their passwords go unseen, which the report says; the app registrations' are still worth a report.
        if step is not None:
            step("service principals not listed")
        return [], f"service principals could not be listed ({error.code}): {error.message}"
    if step is not None:
        step(f"{len(listed)} service principals with credentials")
    return listed, None


async def _with_federated(
    runtime: Runtime, apps: list[ListedApplication], gate: asyncio.Semaphore
) -> tuple[list[ListedApplication], str | None]:
    """Each app with its federated credentials read on its own (one request per app, ``gate`` at a
    time): the fallback when Graph refuses ``$expand`` on the listing."""
    unread = 0

    async def one(listed: ListedApplication) -> ListedApplication:
        nonlocal unread
        async with gate:
            try:
                found = await runtime.directory.list_federated_credentials(listed.application.object_id)
            except RotationError:
                found = None
        if found is None:
            unread += 1
            return listed
        return replace(listed, federated=found)

    read = list(await asyncio.gather(*(one(listed) for listed in apps)))
    problem = f"federated credentials of {unread} application(s) could not be read" if unread else None
    return read, problem


async def _sign_in_report(runtime: Runtime) -> SignInReport:
    try:
        return await runtime.directory.sign_in_report()
    except RotationError as error:
        return SignInReport.refused(f"the report could not be read ({error.code})")


async def read_sources(
    runtime: Runtime, *, step: ProgressStep | None = None, page_size: int = 100, details: bool = False
) -> Sources:
    """Read every app (``page_size`` per Graph request), every service principal (999 a request) and
    every configured vault (vaults in parallel, at most ``ROTATION_SWEEP_CONCURRENCY`` at a time).
    ``details`` adds each app's federated credentials (expanded in the listing) and the sign-in
    report. ``step`` is called once per source read (:func:`source_count` of them)."""
    gate = asyncio.Semaphore(max(1, runtime.settings.sweep_concurrency))

    expanded = details
    refused_expansion: list[str] = []

    async def applications() -> list[ListedApplication]:
        nonlocal expanded
        try:
            listed = await runtime.directory.list_applications(page_size=page_size, expand_federated=details)
        except GraphError as error:
            if not details:
                raise
            # Graph would not expand federated credentials on the listing: list plainly, read them per app.
            expanded = False
            refused_expansion.append(f"federated credentials read per app: Graph refused $expand ({error.code})")
            listed = await runtime.directory.list_applications(page_size=page_size)
        if step is not None:
            step(f"{len(listed)} applications")
        return listed

    async def report() -> SignInReport | None:
        if not details:
            return None
        read = await _sign_in_report(runtime)
        if step is not None:
            step("sign-in report" if read.readable else f"sign-in report unavailable ({read.unavailable})")
        return read

    vault_listings = asyncio.gather(*(_list_vault(name, runtime, gate, step) for name in sorted(runtime.vaults)))
    certificate_vaults = runtime.certificate_vaults
    certificate_listings = asyncio.gather(
        *(_list_certificates(name, certificate_vaults[name], gate, step) for name in sorted(certificate_vaults))
    )
    # Wait for every read before raising, so no listing is still running when the caller closes the clients.
    apps, principals, listings, sign_ins, certificate_lists = await asyncio.gather(
        applications(),
        _service_principals(runtime, step),
        vault_listings,
        report(),
        certificate_listings,
        return_exceptions=True,
    )
    if isinstance(apps, BaseException):
        raise apps
    if isinstance(principals, BaseException):
        raise principals
    if isinstance(listings, BaseException):
        raise listings
    if isinstance(sign_ins, BaseException):
        raise sign_ins
    if isinstance(certificate_lists, BaseException):
        raise certificate_lists
    problems = [problem for _, problem in listings if problem]
    problems.extend(problem for _, problem in certificate_lists if problem)
    service_principals, sp_problem = principals
    if sp_problem:
        problems.append(sp_problem)
    problems.extend(refused_expansion)
    if details and not expanded:
        apps, federated_problem = await _with_federated(runtime, apps, gate)
        if federated_problem:
            problems.append(federated_problem)
    secrets = [version for listing, _ in listings for version in listing]
    # Empty, not None, when certificates are on but every listing failed: the warnings say so.
    certificates = [c for listing, _ in certificate_lists for c in listing] if certificate_vaults else None
    unlisted = tuple(
        name for name, (_, problem) in zip(sorted(certificate_vaults), certificate_lists, strict=True) if problem
    )
    return Sources(apps, secrets, tuple(problems), service_principals, sign_ins, certificates, unlisted)


def source_count(vaults: int, *, details: bool, certificate_vaults: int = 0) -> int:
    """How many times :func:`read_sources` calls ``step``: apps, service principals, each vault, each
    vault's certificates (``ROTATION_CERTIFICATES``) and the sign-in report with ``details``."""
    return 2 + vaults + certificate_vaults + (1 if details else 0)


def classify_sources(runtime: Runtime, sources: Sources, now: datetime) -> list[InventoryRow]:
    """Every credential of ``sources`` with who looks after it (see ``classify``)."""
    settings = runtime.settings
    margin = timedelta(seconds=settings.orphan_margin_seconds)
    hosts = {name.lower(): settings.vault_host(name) for name in settings.vaults}
    return classify(
        sources.applications,
        sources.secrets,
        now,
        orphan_margin=margin,
        vault_hosts=hosts,
        service_principals=sources.service_principals,
        sign_ins=sources.sign_ins,
        certificates=sources.certificates,
        unlisted_certificates=sources.unlisted_certificates,
    )


async def collect(
    runtime: Runtime,
    *,
    days: int | None = None,
    now: datetime | None = None,
    step: ProgressStep | None = None,
) -> Inventory:
    """Read every app, service principal and configured vault, each app's federated credentials and
    the sign-in report (:func:`read_sources`), and classify."""
    sources = await read_sources(runtime, step=step, details=True)
    moment = now or datetime.now(UTC)
    every_row = classify_sources(runtime, sources, moment)
    rows = within_days(every_row, days, moment)
    report = sources.sign_ins
    return Inventory(
        generated=moment,
        rows=tuple(rows),
        applications=len(sources.applications),
        vault_secrets=len(sources.secrets),
        days=days,
        warnings=sources.warnings,
        sign_ins_unavailable=report.unavailable if report is not None else "not read",
        # Judged on every row, not only those within --days: an app is left without a password either way.
        apps_without_password=apps_without_password(every_row),
        service_principals=len(sources.service_principals),
        vault_certificates=len(sources.certificates) if sources.certificates is not None else None,
    )
