"""An expiry inventory of every app credential the rotator can see, and who looks after each.

Reads only, and cheaply: Graph ``GET /applications`` paged through ``@odata.nextLink`` (what is
listed is Graph's decision: owned apps with ``Application.ReadWrite.OwnedBy``, all with
``Application.Read.All``) and, per vault in ``ROTATION_VAULTS``, one list call per 25 secrets
(attributes and tags of the latest versions, never a value). Each credential is then:

- ``managed``: a vault secret's ``CredentialId`` tag names it;
- ``retiring``: a ``RetireCredentialId`` tag names it (replaced, waiting for its grace period);
- ``orphaned``: the rotator created it (``rotator:{vault}/{secret}:*``) but no tag names it;
- ``unmanaged``: everything else, including every certificate.

A vault secret whose ``CredentialId`` names a credential that no app has any more is ``dangling``:
its value no longer signs in (rotated or deleted in Entra but not in the vault).

:func:`inventory_response` serves the same report over HTTP for the function app.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal

from rotation.domain.errors import RotationError, ThrottledError
from rotation.domain.listing import ListedApplication
from rotation.domain.model import PasswordCredential, SecretVersion, Tag, format_utc
from rotation.redact import registry

if TYPE_CHECKING:
    from rotation.runtime import Runtime

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

    def days_left(self, now: datetime) -> float | None:
        return None if self.end is None else (self.end - now).total_seconds() / 86400

    def urgency(self, now: datetime) -> Urgency:
        return urgency_of(self.days_left(now))

    def to_dict(self, now: datetime) -> dict[str, Any]:
        days = self.days_left(now)
        return {
            "standing": self.standing.value,
            "kind": self.kind,
            "appId": self.app_id,
            "appName": self.app_name,
            "keyId": self.key_id,
            "credentialName": self.credential_name,
            "hint": self.hint,
            "start": format_utc(self.start) if self.start else None,
            "end": format_utc(self.end) if self.end else None,
            "daysLeft": round(days, 1) if days is not None else None,
            "urgency": urgency_of(days),
            "vault": self.vault,
            "secret": self.secret,
            "note": self.note,
        }


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "generatedAt": format_utc(self.generated),
            "days": self.days,
            "applications": self.applications,
            "vaultSecrets": self.vault_secrets,
            "counts": self.counts(),
            "warnings": list(self.warnings),
            "credentials": [row.to_dict(self.generated) for row in self.rows],
        }


# --------------------------------------------------------------------------------------------------
# Classification (pure)


@dataclass(frozen=True)
class _Reference:
    version: SecretVersion
    retiring: bool

    @property
    def vault(self) -> str:
        return self.version.vault

    @property
    def secret(self) -> str:
        return self.version.name


def _references(secrets: Iterable[SecretVersion]) -> dict[str, list[_Reference]]:
    """keyId (lower-case) → the vault secrets whose latest tags name it."""
    found: dict[str, list[_Reference]] = {}
    for version in secrets:
        for tag, retiring in ((Tag.CredentialId, False), (Tag.RetireCredentialId, True)):
            key_id = version.tags.get(tag, "").strip().lower()
            if key_id:
                found.setdefault(key_id, []).append(_Reference(version, retiring))
    return found


def _reference_note(reference: _Reference, app_id: str) -> str:
    tags = reference.version.tags
    provider = tags.get(Tag.ProviderAddress, "").strip().lower()
    if not provider:
        return "the secret has no ProviderAddress tag, so it is not rotated"
    if provider != app_id.lower():
        return f"the secret's ProviderAddress names another app ({provider})"
    if not reference.version.enabled:
        return "the secret's latest version is disabled"
    return ""


def _password_row(
    listed: ListedApplication,
    credential: PasswordCredential,
    references: Mapping[str, list[_Reference]],
    now: datetime,
    margin: timedelta,
) -> InventoryRow:
    app = listed.application
    base = InventoryRow(
        standing=Standing.UNMANAGED,
        kind="password",
        key_id=credential.key_id,
        app_id=app.app_id,
        app_name=app.display_name,
        credential_name=credential.display_name,
        hint=credential.hint,
        start=credential.start,
        end=credential.end,
    )
    named = references.get(credential.key_id.lower(), [])
    current = [r for r in named if not r.retiring]
    retiring = [r for r in named if r.retiring]
    chosen = current[0] if current else (retiring[0] if retiring else None)
    if chosen is not None:
        notes = [_reference_note(chosen, app.app_id)]
        if len(named) > 1:
            others = ", ".join(f"{r.vault}/{r.secret}" for r in named[1:])
            notes.append(f"also named by {others}")
        return replace(
            base,
            standing=Standing.MANAGED if current else Standing.RETIRING,
            vault=chosen.vault,
            secret=chosen.secret,
            note="; ".join(n for n in notes if n),
        )
    owner = credential.rotator_owner()
    if owner is not None:
        note = f"created by rotation {owner.rotation_id} for {owner.vault}/{owner.secret}; no tag names it"
        if credential.start is not None and now - credential.start < margin:
            note += " (recent: may be a rotation still in progress)"
        return replace(base, standing=Standing.ORPHANED, vault=owner.vault, secret=owner.secret, note=note)
    return base


def _dangling_rows(apps: Sequence[ListedApplication], references: Mapping[str, list[_Reference]]) -> list[InventoryRow]:
    known = {c.key_id.lower() for listed in apps for c in listed.application.password_credentials}
    names = {listed.application.app_id.lower(): listed.application.display_name for listed in apps}
    rows: list[InventoryRow] = []
    for key_id, named in sorted(references.items()):
        if key_id in known:
            continue
        for reference in named:
            if reference.retiring:
                continue  # a retired credential being gone is the goal, not a problem
            app_id = reference.version.tags.get(Tag.ProviderAddress, "").strip().lower() or None
            if app_id is not None and app_id in names:
                note = "the credential no longer exists on the app: rotated or deleted in Entra, not in the vault"
            elif app_id is not None:
                note = "the app is not visible to the rotator (deleted, or the rotator is not an owner)"
            else:
                note = "the secret has no ProviderAddress tag; no visible app has this credential"
            rows.append(
                InventoryRow(
                    standing=Standing.DANGLING,
                    kind="password",
                    key_id=key_id,
                    app_id=app_id,
                    app_name=names.get(app_id) if app_id else None,
                    end=reference.version.expires,
                    vault=reference.vault,
                    secret=reference.secret,
                    note=note,
                )
            )
    return rows


def classify(
    apps: Sequence[ListedApplication],
    secrets: Sequence[SecretVersion],
    now: datetime,
    *,
    orphan_margin: timedelta = timedelta(0),
) -> list[InventoryRow]:
    """Every credential of ``apps`` with its standing, plus the dangling vault secrets, soonest expiry first."""
    references = _references(secrets)
    rows: list[InventoryRow] = []
    for listed in apps:
        app = listed.application
        rows.extend(_password_row(listed, c, references, now, orphan_margin) for c in app.password_credentials)
        rows.extend(
            InventoryRow(
                standing=Standing.UNMANAGED,
                kind="certificate",
                key_id=certificate.key_id,
                app_id=app.app_id,
                app_name=app.display_name,
                credential_name=certificate.display_name,
                start=certificate.start,
                end=certificate.end,
                note="certificates are not rotated by the rotator",
            )
            for certificate in listed.certificates
        )
    rows.extend(_dangling_rows(apps, references))
    return sorted(rows, key=lambda r: _sort_key(r, now))


def _sort_key(row: InventoryRow, now: datetime) -> tuple[int, float, str, str]:
    days = row.days_left(now)
    return (days is None, days if days is not None else 0.0, (row.app_name or "").lower(), row.key_id)


def within_days(rows: Iterable[InventoryRow], days: int | None, now: datetime) -> list[InventoryRow]:
    """``--days N``: what expires within N days (expired ones included); rows without an end date are out."""
    if days is None:
        return list(rows)
    return [r for r in rows if (left := r.days_left(now)) is not None and left <= days]


# --------------------------------------------------------------------------------------------------
# Collection (the only I/O)

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


async def collect(
    runtime: Runtime,
    *,
    days: int | None = None,
    now: datetime | None = None,
    step: ProgressStep | None = None,
) -> Inventory:
    """Read every app and every configured vault (vaults in parallel, at most
    ``ROTATION_SWEEP_CONCURRENCY`` at a time) and classify. ``step`` is called once per source read."""
    settings = runtime.settings
    gate = asyncio.Semaphore(max(1, settings.sweep_concurrency))

    async def applications() -> list[ListedApplication]:
        listed = await runtime.directory.list_applications()
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
    moment = now or datetime.now(UTC)
    secrets = [version for listing, _ in listings for version in listing]
    warnings = tuple(problem for _, problem in listings if problem)
    margin = timedelta(seconds=settings.orphan_margin_seconds)
    rows = within_days(classify(apps, secrets, moment, orphan_margin=margin), days, moment)
    return Inventory(
        generated=moment,
        rows=tuple(rows),
        applications=len(apps),
        vault_secrets=len(secrets),
        days=days,
        warnings=warnings,
    )


# --------------------------------------------------------------------------------------------------
# Output formats

_COLUMNS: Final = (
    ("daysLeft", "Days"),
    ("end", "Expires"),
    ("standing", "Standing"),
    ("kind", "Kind"),
    ("appName", "App"),
    ("appId", "App id"),
    ("credentialName", "Credential"),
    ("keyId", "Key id"),
    ("hint", "Hint"),
    ("vault", "Vault"),
    ("secret", "Secret"),
    ("note", "Note"),
)


def _terminal_safe(text: str) -> str:
    # App display names are anyone's input: no escape sequences reach a terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def render_table(inventory: Inventory) -> str:
    from rotation.cli.output import table

    now = inventory.generated
    shown = ("daysLeft", "end", "standing", "kind", "appName", "credentialName", "keyId", "vault", "secret")
    headers = [label for key, label in _COLUMNS if key in shown]
    rows = []
    for row in inventory.rows:
        data = row.to_dict(now)
        data["appName"] = data["appName"] or data["appId"]  # a deleted app has no name, only its id
        cells = []
        for key in shown:
            value = data[key]
            text = "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
            cells.append(_terminal_safe(_clip(text, 40)))
        rows.append(cells)
    lines = [table(rows, headers), "", summary_line(inventory)]
    lines.extend(f"warning: {_terminal_safe(w)}" for w in inventory.warnings)
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_line(inventory: Inventory) -> str:
    counts = inventory.counts()
    standings = ", ".join(f"{counts[s.value]} {s.value}" for s in Standing)
    scope = f" expiring within {inventory.days} days" if inventory.days is not None else ""
    return (
        f"{counts['total']} credential(s){scope} across {inventory.applications} application(s) and "
        f"{inventory.vault_secrets} vault secret(s): {standings}; {counts['expired']} expired, "
        f"{counts['critical']} within {CRITICAL_DAYS} days, {counts['soon']} within {SOON_DAYS} days"
    )


def render_json(inventory: Inventory) -> str:
    return registry.scrub(json.dumps(inventory.to_dict(), indent=2))


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    # A display name such as '=HYPERLINK(...)' would run as a formula in a spreadsheet.
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(inventory: Inventory) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key for key, _ in _COLUMNS] + ["urgency"])
    for row in inventory.rows:
        data = row.to_dict(inventory.generated)
        writer.writerow([_csv_cell(data[key]) for key, _ in _COLUMNS] + [data["urgency"]])
    return registry.scrub(out.getvalue())


def render(inventory: Inventory, fmt: str) -> str:
    if fmt == "json":
        return render_json(inventory)
    if fmt == "csv":
        return render_csv(inventory)
    if fmt == "html":
        from rotation.tools.inventory.html import render_inventory_html

        return registry.scrub(render_inventory_html(inventory))
    return render_table(inventory)


# --------------------------------------------------------------------------------------------------
# HTTP (GET /api/inventory?days=N&format=json|html, wired by the function app)

JSON_TYPE: Final = "application/json; charset=utf-8"
HTML_TYPE: Final = "text/html; charset=utf-8"


@dataclass(frozen=True)
class _Problem:
    status: int
    code: str
    message: str

    def response(self) -> tuple[int, str, str]:
        return self.status, JSON_TYPE, json.dumps({"error": {"code": self.code, "message": self.message}})


def parse_days(days: int | str | None) -> int | _Problem | None:
    """``days`` as given by a caller or a query string: ``None``/empty (no filter) or 0-3650."""
    if days is None or (isinstance(days, str) and not days.strip()):
        return None
    if isinstance(days, bool):
        return _Problem(400, "BadRequest", f"'days' must be a whole number from 0 to {MAX_DAYS}.")
    if isinstance(days, str):
        text = days.strip()
        if not text.isascii() or not text.isdigit():
            return _Problem(400, "BadRequest", f"'days' must be a whole number from 0 to {MAX_DAYS}.")
        days = int(text)
    if not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
        return _Problem(400, "BadRequest", f"'days' must be a whole number from 0 to {MAX_DAYS}.")
    return days


async def inventory_response(runtime: Runtime, days: int | str | None, fmt: str | None) -> tuple[int, str, str]:
    """``(status, content type, body)`` for ``GET /api/inventory?days=N&format=json|html``.

    ``days`` may be the raw query-string value. Bad input is a 400 with ``{"error": {"code", "message"}}``
    (and no call to Graph or Key Vault); throttling beyond the retry budget is a 503, any other failure
    a 500 whose message says what to do. Bodies never contain a secret value.
    """
    chosen = (fmt or "json").strip().lower()
    if chosen not in HTTP_FORMATS:
        return _Problem(400, "BadRequest", "'format' must be json or html.").response()
    parsed = parse_days(days)
    if isinstance(parsed, _Problem):
        return parsed.response()
    try:
        inventory = await collect(runtime, days=parsed)
    except ThrottledError as error:
        return _Problem(503, error.code, registry.scrub(error.message)).response()
    except RotationError as error:
        return _Problem(500, error.code, registry.scrub(error.message)).response()
    if chosen == "html":
        return 200, HTML_TYPE, render(inventory, "html")
    return 200, JSON_TYPE, render_json(inventory)
