"""The daily expiry notices: every credential the rotator can read that crosses an expiry window
today (``rotation.domain.expiry``), with the owners of its app. Read-only.

What it reads: the inventory's sources (one Graph listing, 999 apps per request, one of service
principals, 999 per request, for the passwords that live on them, and one list call per 25 secrets
of each configured vault, so a notice says whether the rotator manages the credential), then the
owners of each app that has a credential in a window, one request per page of 100 owners of such an
app (``GET /applications/{id}/owners``) and none for the others. With
``Application.ReadWrite.OwnedBy`` Graph lists every app of the tenant, so managed and unmanaged
credentials alike get their notice.

Every notice is logged as ``CredentialExpiryNotice`` (what the daily alert counts); it names the
credential by keyId and display name, never a value, and each owner by display name and mail only.
The hourly sweep's ``CredentialExpiring`` (managed secrets only) is a separate signal and unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from rotation.domain.errors import RotationError
from rotation.domain.expiry import days_from, notice_day, window_crossed
from rotation.domain.listing import APPLICATION_PAGE_MAX, ApplicationOwner
from rotation.observability import event
from rotation.tools.inventory.collect import classify_sources, read_sources
from rotation.tools.inventory.model import InventoryRow, Standing

if TYPE_CHECKING:
    from rotation.runtime import Runtime

NOTICE_EVENT: Final = "CredentialExpiryNotice"
#: Standings the rotator looks after: named by a secret's CredentialId or RetireCredentialId tag, or
#: created by it (a rotator display name) and named by no tag.
ROTATOR_STANDINGS: Final = frozenset({Standing.MANAGED, Standing.RETIRING, Standing.ORPHANED})


def describe_owners(owners: Iterable[ApplicationOwner]) -> str:
    """``"Ada Lovelace <ada@contoso.com>; Payments team"``: each readable owner by name and mail."""
    shown: list[str] = []
    for owner in owners:
        if owner.display_name and owner.mail:
            shown.append(f"{owner.display_name} <{owner.mail}>")
        elif owner.display_name or owner.mail:
            shown.append(str(owner.display_name or owner.mail))
    return "; ".join(shown)


@dataclass(frozen=True)
class ExpiryNotice:
    """One credential crossing one window today. ``owners`` is ``None`` when Graph would not show them."""

    row: InventoryRow
    window: int
    days_left: float
    day: datetime
    owners: tuple[ApplicationOwner, ...] | None

    @property
    def managed(self) -> bool:
        return self.row.standing in ROTATOR_STANDINGS

    @property
    def notice_id(self) -> str:
        """The same for every run of one UTC day: what a consumer de-duplicates a repeated run on."""
        return f"{self.row.key_id.lower()}/{self.window}/{self.day:%Y-%m-%d}"

    def dimensions(self) -> dict[str, Any]:
        row = self.row
        owners = self.owners or ()
        return {
            "noticeId": self.notice_id,
            "appId": row.app_id,
            "appName": row.app_name,
            "keyId": row.key_id,
            "kind": row.kind,
            # A password on the service principal is told like one on the app registration, with the
            # app's owners: where it lives says where to renew it.
            "credentialObject": row.credential_object,
            "thumbprint": row.thumbprint,
            "credentialName": row.credential_name,
            "expires": row.end.isoformat() if row.end else None,
            "daysLeft": round(self.days_left, 1),
            "window": self.window,
            "managed": self.managed,
            "standing": row.standing.value,
            "vault": row.vault,
            "secret": row.secret,
            "ownersReadable": self.owners is not None,
            "owners": describe_owners(owners) or None,
            "ownerCount": len(owners),
        }


@dataclass(frozen=True)
class NoticeRun:
    """What one run found and told."""

    notices: list[ExpiryNotice]
    applications: int
    credentials: int
    owner_reads: int
    warnings: tuple[str, ...]


async def _owners_of(
    runtime: Runtime, object_ids: Iterable[str]
) -> tuple[dict[str, tuple[ApplicationOwner, ...] | None], list[str]]:
    """Each app's owners, at most ``ROTATION_SWEEP_CONCURRENCY`` reads at a time. A read that fails
    (throttled beyond the retry budget, Graph down) leaves that app's notices without owners rather
    than losing every notice of the run."""
    gate = asyncio.Semaphore(max(1, runtime.settings.sweep_concurrency))
    problems: list[str] = []

    async def one(object_id: str) -> tuple[str, tuple[ApplicationOwner, ...] | None]:
        async with gate:
            try:
                return object_id, await runtime.directory.list_owners(object_id)
            except RotationError as error:
                problems.append(f"owners of application object {object_id} not read ({error.code}): {error.message}")
                return object_id, None

    found = dict(await asyncio.gather(*(one(object_id) for object_id in object_ids)))
    return found, problems


async def find_notices(runtime: Runtime, now: datetime) -> NoticeRun:
    """Every credential crossing one of ``ROTATION_EXPIRY_WINDOWS_DAYS`` today, with its app's owners."""
    windows = runtime.settings.expiry_windows_days
    sources = await read_sources(runtime, page_size=APPLICATION_PAGE_MAX)
    rows = [r for r in classify_sources(runtime, sources, now) if r.standing is not Standing.DANGLING]
    crossing = [(row, w) for row in rows if (w := window_crossed(row.end, now, windows)) is not None]
    object_ids = {listed.application.app_id.lower(): listed.application.object_id for listed in sources.applications}
    # Only apps the listing returned have owners to read (a row of an app it did not list has none).
    wanted = sorted({oid for row, _ in crossing if row.app_id and (oid := object_ids.get(row.app_id.lower()))})
    owners, problems = await _owners_of(runtime, wanted)
    day = notice_day(now)
    notices = [
        ExpiryNotice(
            row=row,
            window=window,
            days_left=days_from(now, row.end) if row.end else 0.0,  # a crossing always has an end
            day=day,
            owners=owners.get(object_ids.get((row.app_id or "").lower(), "")),
        )
        for row, window in crossing
    ]
    notices.sort(key=lambda n: (n.row.end or day, n.row.app_id or "", n.row.key_id))
    return NoticeRun(
        notices=notices,
        applications=len(sources.applications),
        credentials=len(rows),
        owner_reads=len(wanted),
        warnings=(*sources.warnings, *problems),
    )


def log_notices(run: NoticeRun) -> None:
    """One ``CredentialExpiryNotice`` per notice (the daily alert counts them), and the run's warnings."""
    for notice in run.notices:
        level = logging.ERROR if notice.window == 0 else logging.WARNING
        event(NOTICE_EVENT, level=level, **notice.dimensions())
    for warning in run.warnings:
        event("ExpiryNoticesIncomplete", level=logging.WARNING, warning=warning)
