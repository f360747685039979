"""Collection: the inventory's only I/O, all of it reads, and cheap.

Graph ``GET /applications`` paged through ``@odata.nextLink`` (what is listed is Graph's decision:
owned apps with ``Application.ReadWrite.OwnedBy``, all with ``Application.Read.All``), ``GET
/servicePrincipals`` the same way (the passwords that live on service principals) and, per vault
in ``ROTATION_VAULTS``, one list call per 25 secrets (attributes and tags of the latest versions,
never a value).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rotation.domain.errors import RotationError
from rotation.domain.listing import ListedApplication
from rotation.domain.model import SERVICE_PRINCIPAL, SecretVersion, Tag, parse_credential_object
from rotation.tools.inventory.classify import classify, within_days
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


@dataclass(frozen=True)
class Sources:
    """What the inventory is made of: every readable app, every configured vault's secrets (latest
    attributes and tags, never a value), and what could not be read; plus the service principals
    whose passwords managed secrets hold (``CredentialObject=servicePrincipal``), kept apart from
    ``applications`` because their object ids are no app's."""

    applications: list[ListedApplication]
    secrets: list[SecretVersion]
    warnings: tuple[str, ...]
    service_principals: tuple[ListedApplication, ...] = ()


async def _read_service_principals(
    runtime: Runtime, secrets: list[SecretVersion], gate: asyncio.Semaphore
) -> tuple[tuple[ListedApplication, ...], tuple[str, ...]]:
    """The service principal of each app a secret names with ``CredentialObject=servicePrincipal``: one
    read each (the application listing holds no service principal's passwords)."""
    app_ids = sorted(
        {
            v.tags[Tag.ProviderAddress].strip().lower()
            for v in secrets
            if Tag.ProviderAddress in v.tags
            and parse_credential_object(v.tags.get(Tag.CredentialObject)) == SERVICE_PRINCIPAL
        }
    )

    async def one(app_id: str) -> ListedApplication | str:
        async with gate:
            try:
                return ListedApplication(
                    application=await runtime.directory.get_application(app_id, on=SERVICE_PRINCIPAL)
                )
            except RotationError as error:
                return f"the service principal of app {app_id} could not be read ({error.code}): {error.message}"

    found = await asyncio.gather(*(one(app_id) for app_id in app_ids))
    return (
        tuple(f for f in found if isinstance(f, ListedApplication)),
        tuple(f for f in found if isinstance(f, str)),
    )


async def read_sources(runtime: Runtime, *, step: ProgressStep | None = None, page_size: int = 100) -> Sources:
    """Read every app (``page_size`` per Graph request) and every configured vault (vaults in
    parallel, at most ``ROTATION_SWEEP_CONCURRENCY`` at a time). ``step`` is called once per source read."""
    gate = asyncio.Semaphore(max(1, runtime.settings.sweep_concurrency))

    async def applications() -> list[ListedApplication]:
        listed = await runtime.directory.list_applications(page_size=page_size)
        if step is not None:
            step(f"{len(listed)} applications")
        return listed

    vault_listings = asyncio.gather(*(_list_vault(name, runtime, gate, step) for name in sorted(runtime.vaults)))
    # Wait for every read before raising, so no listing is still running when the caller closes the clients.
    apps, listings = await asyncio.gather(applications(), vault_listings, return_exceptions=True)
    if isinstance(apps, BaseException):
        raise apps
    if isinstance(listings, BaseException):
        raise listings
    secrets = [version for listing, _ in listings for version in listing]
    principals, unreadable = await _service_principals(runtime, secrets, gate, page_size)
    problems = (*(problem for _, problem in listings if problem), *unreadable)
    return Sources(apps, secrets, problems, principals)


async def _service_principals(
    runtime: Runtime, secrets: list[SecretVersion], gate: asyncio.Semaphore, page_size: int
) -> tuple[tuple[ListedApplication, ...], tuple[str, ...]]:
    """Every service principal holding a password (one listing); if Graph refuses the listing, at
    least those that ``CredentialObject=servicePrincipal`` secrets name (one read each), so that their
    passwords are not taken for deleted ones."""
    try:
        listed = await runtime.directory.list_service_principals_with_passwords(page_size=page_size)
    except RotationError as error:
        found, unreadable = await _read_service_principals(runtime, secrets, gate)
        return found, (f"service principals could not be listed ({error.code}): {error.message}", *unreadable)
    return tuple(listed), ()


def classify_sources(runtime: Runtime, sources: Sources, now: datetime) -> list[InventoryRow]:
    """Every credential of ``sources`` with who looks after it (see ``classify``)."""
    settings = runtime.settings
    margin = timedelta(seconds=settings.orphan_margin_seconds)
    hosts = {name.lower(): settings.vault_host(name) for name in settings.vaults}
    apps = [*sources.applications, *sources.service_principals]
    return classify(apps, sources.secrets, now, orphan_margin=margin, vault_hosts=hosts)


async def collect(
    runtime: Runtime,
    *,
    days: int | None = None,
    now: datetime | None = None,
    step: ProgressStep | None = None,
) -> Inventory:
    """Read every app and every configured vault (:func:`read_sources`) and classify."""
    sources = await read_sources(runtime, step=step)
    moment = now or datetime.now(UTC)
    rows = within_days(classify_sources(runtime, sources, moment), days, moment)
    return Inventory(
        generated=moment,
        rows=tuple(rows),
        applications=len(sources.applications),
        vault_secrets=len(sources.secrets),
        days=days,
        warnings=sources.warnings,
    )
