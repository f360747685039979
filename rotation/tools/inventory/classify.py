"""Classification (pure): which credential a vault secret names, and so who looks after it.

Each password credential of each listed app is ``managed`` (a vault secret's ``CredentialId`` tag
names it), ``retiring`` (a ``RetireCredentialId`` tag names it), ``orphaned`` (the rotator created it,
``rotator:{vault}/{secret}:*``, but no tag names it) or ``unmanaged``; every certificate is
``unmanaged``. A vault secret whose ``CredentialId`` names a credential no app has any more is
``dangling``: its value no longer signs in. A service principal read for a ``CredentialObject=servicePrincipal``
secret is classified like an app; its rows say they live on the service principal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rotation.domain.errors import bind_command
from rotation.domain.listing import CertificateCredential, ListedApplication
from rotation.domain.model import Application, PasswordCredential, SecretVersion, Tag
from rotation.tools.inventory.model import InventoryRow, Kind, Standing

#: The note of every row of a service principal's password.
SP_NOTE = "on the service principal"


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


def _unmanaged_row(
    app: Application, kind: Kind, credential: PasswordCredential | CertificateCredential
) -> InventoryRow:
    """A credential as nobody's: what every row starts as before a tag or its name says otherwise."""
    return InventoryRow(
        standing=Standing.UNMANAGED,
        kind=kind,
        key_id=credential.key_id,
        app_id=app.app_id,
        app_name=app.display_name,
        credential_name=credential.display_name,
        start=credential.start,
        end=credential.end,
        credential_object=app.credential_object,
    )


def _password_row(
    listed: ListedApplication,
    credential: PasswordCredential,
    references: Mapping[str, list[_Reference]],
    now: datetime,
    margin: timedelta,
    vault_hosts: Mapping[str, str] | None = None,
) -> InventoryRow:
    app = listed.application
    base = replace(_unmanaged_row(app, "password", credential), hint=credential.hint)
    named = references.get(credential.key_id.lower(), [])
    current = [r for r in named if not r.retiring]
    retiring = [r for r in named if r.retiring]
    chosen = current[0] if current else (retiring[0] if retiring else None)
    if chosen is not None:
        notes = [_reference_note(chosen, app.app_id)]
        if len(named) > 1:
            others = ", ".join(f"{r.vault}/{r.secret}" for r in named[1:])
            notes.append(f"also named by {others}")
        host = (vault_hosts or {}).get(chosen.vault.lower())
        if host is not None and app.binding_for(host, chosen.secret) is None:
            # Managed by its Key Vault tags, but the app's owners have not bound it: nothing rotates it.
            on_sp = app.credential_object == "servicePrincipal"
            command = bind_command(chosen.vault, chosen.secret, app.app_id, service_principal=on_sp)
            notes.append(f"not bound: {command}")
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
    # The app registration's name first (a service principal, listed after its app, carries its own).
    names: dict[str, str | None] = {}
    for listed in apps:
        names.setdefault(listed.application.app_id.lower(), listed.application.display_name)
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
    vault_hosts: Mapping[str, str] | None = None,
) -> list[InventoryRow]:
    """Every credential of ``apps`` with its standing, plus the dangling vault secrets, soonest expiry first."""
    references = _references(secrets)
    rows: list[InventoryRow] = []
    for listed in apps:
        app = listed.application
        passwords = [
            _password_row(listed, c, references, now, orphan_margin, vault_hosts) for c in app.password_credentials
        ]
        if app.credential_object == "servicePrincipal":
            # Said in the note too, so that the table, the CSV and the HTML show it, not only the JSON.
            passwords = [replace(r, note="; ".join(n for n in (SP_NOTE, r.note) if n)) for r in passwords]
        rows.extend(passwords)
        rows.extend(
            replace(_unmanaged_row(app, "certificate", certificate), note="certificates are not rotated by the rotator")
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
