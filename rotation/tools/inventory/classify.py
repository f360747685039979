"""Classification (pure): which credential a vault secret names, and so who looks after it.

Each password credential of each listed app, and of each listed service principal, is ``managed``
(a vault secret's ``CredentialId`` tag names it), ``retiring`` (a ``RetireCredentialId`` tag names
it), ``orphaned`` (the rotator created it, ``rotator:{vault}/{secret}:*``, but no tag names it) or
``unmanaged``. Each certificate (key credential) is classified the same way by the tags of the
vaults' certificates while ``ROTATION_CERTIFICATES`` is on, and is ``unmanaged`` (said so) while it is
off; every federated credential is ``unmanaged``. A vault secret (or certificate) whose
``CredentialId`` names a credential no app has any more is ``dangling``: it no longer signs in.

Then each row gets what the sign-in report says of its keyId (:func:`with_sign_ins`), and the rows
of an app that has no password left that signs in (none, or all expired, on either object) say so.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rotation.domain.certificates import CertificateVersion
from rotation.domain.errors import bind_command
from rotation.domain.listing import (
    CertificateCredential,
    FederatedCredential,
    ListedApplication,
    ListedServicePrincipal,
)
from rotation.domain.model import (
    Application,
    PasswordCredential,
    SecretVersion,
    Tag,
    credential_object_label,
    parse_credential_object,
)
from rotation.domain.sign_in_report import SignInReport
from rotation.tools.inventory.model import CredentialObject, InventoryRow, Kind, Standing


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


def _reference_note(reference: _Reference, app_id: str, noun: str = "secret") -> str:
    tags = reference.version.tags
    provider = tags.get(Tag.ProviderAddress, "").strip().lower()
    if not provider:
        return f"the {noun} has no ProviderAddress tag, so it is not rotated"
    if provider != app_id.lower():
        return f"the {noun}'s ProviderAddress names another app ({provider})"
    if not reference.version.enabled:
        return f"the {noun}'s latest version is disabled"
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
    )


def _password_row(
    app: Application,
    credential: PasswordCredential,
    references: Mapping[str, list[_Reference]],
    now: datetime,
    margin: timedelta,
    vault_hosts: Mapping[str, str] | None = None,
    credential_object: CredentialObject = "application",
) -> InventoryRow:
    """``app`` is the object the password lives on: an app registration, or a service principal in
    `Application`'s shape (its own object id and tags, so its binding is read where it lives)."""
    base = replace(
        _unmanaged_row(app, "password", credential), hint=credential.hint, credential_object=credential_object
    )
    named = references.get(credential.key_id.lower(), [])
    if named:
        return _referenced_row(base, app, named, vault_hosts, credential_object)
    return _orphan_or_unmanaged(base, credential, now, margin)


def _referenced_row(
    base: InventoryRow,
    app: Application,
    named: Sequence[_Reference],
    vault_hosts: Mapping[str, str] | None,
    credential_object: CredentialObject,
    noun: str = "secret",
) -> InventoryRow:
    """``base`` as managed (a ``CredentialId`` of ``named`` names it) or retiring (only a
    ``RetireCredentialId`` does), by which vault object, with what stands in the way of its rotation.
    ``noun``: what the vault objects are (a secret, a certificate)."""
    current = [r for r in named if not r.retiring]
    chosen = current[0] if current else named[0]
    notes = [_reference_note(chosen, app.app_id, noun)]
    if len(named) > 1:
        others = ", ".join(f"{r.vault}/{r.secret}" for r in named[1:])
        notes.append(f"also named by {others}")
    held = chosen.version.tags.get(Tag.RetirementHeld, "").strip()
    if chosen.retiring and held:
        # The grace period is over, but the sign-in report shows the credential in use (issue 13).
        notes.append(f"retirement held: {held}")
    host = (vault_hosts or {}).get(chosen.vault.lower())
    if host is not None and app.binding_for(host, chosen.secret) is None:
        # Managed by its Key Vault tags, but the app's owners have not bound it: nothing rotates it.
        on_sp = credential_object == "servicePrincipal"
        notes.append(f"not bound: {bind_command(chosen.vault, chosen.secret, app.app_id, service_principal=on_sp)}")
    if noun == "certificate" and credential_object == "servicePrincipal":
        # Certificates are rotated on the app registration only (Graph's addKey on the application).
        notes.append("managed certificates are rotated on the app registration, not on its service principal")
    elif parse_credential_object(chosen.version.tags.get(Tag.CredentialObject)) not in (None, credential_object):
        # The rotator reads the object the tag names: this credential is not where it would look.
        holder = credential_object_label(credential_object)
        notes.append(f"the {noun}'s CredentialObject tag does not name {holder}, which holds it")
    return replace(
        base,
        standing=Standing.RETIRING if chosen.retiring else Standing.MANAGED,
        vault=chosen.vault,
        secret=chosen.secret,
        note="; ".join(n for n in notes if n),
    )


def _orphan_or_unmanaged(
    base: InventoryRow, credential: PasswordCredential, now: datetime, margin: timedelta
) -> InventoryRow:
    """``base`` (named by no tag) as orphaned when its name says the rotator created it, else as it is."""
    owner = credential.rotator_owner()
    if owner is not None:
        note = f"created by rotation {owner.rotation_id} for {owner.vault}/{owner.secret}; no tag names it"
        if credential.start is not None and now - credential.start < margin:
            note += " (recent: may be a rotation still in progress)"
        return replace(base, standing=Standing.ORPHANED, vault=owner.vault, secret=owner.secret, note=note)
    return base


#: A certificate's note while the rotator does not rotate certificates at all.
CERTIFICATES_OFF = "not managed: ROTATION_CERTIFICATES is off"


def _certificate_row(
    app: Application,
    certificate: CertificateCredential,
    references: Mapping[str, list[_Reference]] | None,
    now: datetime,
    margin: timedelta,
    vault_hosts: Mapping[str, str] | None = None,
    credential_object: CredentialObject = "application",
    unlisted: Collection[str] = (),
) -> InventoryRow:
    """A key credential, classified like a password by the vaults' certificates (``references``,
    ``None`` while ``ROTATION_CERTIFICATES`` is off): the same tags, the same record of intent.
    ``unlisted``: the vaults (names and hosts, lower-case) whose certificates could not be listed."""
    base = replace(
        _unmanaged_row(app, "certificate", certificate),
        thumbprint=certificate.thumbprint,
        credential_object=credential_object,
    )
    if references is None:
        return replace(base, note=CERTIFICATES_OFF)
    named = references.get(certificate.key_id.lower(), [])
    if named:
        return _referenced_row(base, app, named, vault_hosts, credential_object, "certificate")
    # `addKey` names a key as it names a password (`rotator:<host>/<name>:<rotationId>`).
    as_named = PasswordCredential(certificate.key_id, certificate.display_name, start=certificate.start)
    row = _orphan_or_unmanaged(base, as_named, now, margin)
    if row.standing is Standing.ORPHANED and (row.vault or "").lower() in unlisted:
        # Its vault's tags were not seen: the certificate may well name it. Not a key to remove on sight.
        row = replace(row, note=f"{row.note}; that vault's certificates could not be listed, so a tag may name it")
    return row


def _federated_row(app: Application, credential: FederatedCredential) -> InventoryRow:
    """A federated credential: nothing to rotate and nothing that expires; who it trusts is what matters."""
    return InventoryRow(
        standing=Standing.UNMANAGED,
        kind="federated",
        key_id=credential.credential_id,
        app_id=app.app_id,
        app_name=app.display_name,
        credential_name=credential.name,
        issuer=credential.issuer,
        subject=credential.subject,
        sign_in_status="notReported",
        note="federated credentials do not expire",
    )


def _dangling_rows(
    apps: Sequence[ListedApplication],
    references: Mapping[str, list[_Reference]],
    service_principals: Sequence[ListedServicePrincipal] = (),
    kind: Kind = "password",
) -> list[InventoryRow]:
    """The vault objects whose ``CredentialId`` names a credential of ``kind`` that no listed app or
    service principal has: vault secrets (passwords) or vault certificates (key credentials)."""
    if kind == "certificate":
        known = {c.key_id.lower() for listed in apps for c in listed.certificates}
        known |= {c.key_id.lower() for sp in service_principals for c in sp.certificates}
    else:
        known = {c.key_id.lower() for listed in apps for c in listed.application.password_credentials}
        known |= {c.key_id.lower() for sp in service_principals for c in sp.principal.password_credentials}
    noun = "certificate" if kind == "certificate" else "secret"
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
                note = f"the {noun} has no ProviderAddress tag; no visible app has this credential"
            rows.append(
                InventoryRow(
                    standing=Standing.DANGLING,
                    kind=kind,
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
    service_principals: Sequence[ListedServicePrincipal] = (),
    sign_ins: SignInReport | None = None,
    certificates: Sequence[CertificateVersion] | None = None,
    unlisted_certificates: Collection[str] = (),
) -> list[InventoryRow]:
    """Every credential of ``apps`` and of ``service_principals`` with its standing, plus the
    dangling vault secrets and certificates, soonest expiry first (federated credentials, which never
    expire, last). ``certificates``: the latest version of every vault certificate, ``None`` while
    ``ROTATION_CERTIFICATES`` is off; ``unlisted_certificates``: the vaults whose certificates could
    not be listed. Without ``sign_ins`` every row's last sign-in is ``unknown``."""
    references = _references(secrets)
    keys = None if certificates is None else _references(c.properties for c in certificates)
    hosts = vault_hosts or {}
    unlisted = {name.lower() for name in unlisted_certificates}
    unlisted |= {hosts[name] for name in unlisted if name in hosts}
    rows: list[InventoryRow] = []
    for listed in apps:
        app = listed.application
        rows.extend(
            _password_row(app, c, references, now, orphan_margin, vault_hosts) for c in app.password_credentials
        )
        rows.extend(
            _certificate_row(app, c, keys, now, orphan_margin, vault_hosts, unlisted=unlisted)
            for c in listed.certificates
        )
        rows.extend(_federated_row(app, credential) for credential in listed.federated)
    for sp in service_principals:
        principal = sp.principal
        rows.extend(
            _password_row(principal, c, references, now, orphan_margin, vault_hosts, "servicePrincipal")
            for c in principal.password_credentials
        )
        rows.extend(
            _certificate_row(principal, c, keys, now, orphan_margin, vault_hosts, "servicePrincipal", unlisted)
            for c in sp.certificates
        )
    rows.extend(_dangling_rows(apps, references, service_principals))
    if keys is not None:
        rows.extend(_dangling_rows(apps, keys, service_principals, "certificate"))
    visible = {listed.application.app_id.lower() for listed in apps}
    visible |= {sp.principal.app_id.lower() for sp in service_principals}
    rows = _mark_no_password_left(rows, now, visible)
    if sign_ins is not None:
        rows = with_sign_ins(rows, sign_ins)
    return sorted(rows, key=lambda r: _sort_key(r, now))


def with_sign_ins(rows: Iterable[InventoryRow], report: SignInReport) -> list[InventoryRow]:
    """Each row with what the report says of its keyId: its day, ``never`` (not in the report) or,
    when the report could not be read, ``unknown``. Federated credentials are not in the report."""
    marked: list[InventoryRow] = []
    for row in rows:
        if row.kind == "federated":
            marked.append(replace(row, sign_in_status="notReported", last_sign_in=None))
        elif not report.readable:
            marked.append(replace(row, sign_in_status="unknown", last_sign_in=None))
        elif report.covers(row.key_id):
            last = report.last_sign_in(row.key_id)
            marked.append(replace(row, sign_in_status="reported" if last else "never", last_sign_in=last))
        else:
            marked.append(replace(row, sign_in_status="never", last_sign_in=None))
    return marked


def _signs_in(row: InventoryRow, now: datetime) -> bool:
    """A password that an app can still sign in with: listed on the app or its service principal
    (a dangling row's credential is gone) and not expired."""
    if row.kind != "password" or row.standing is Standing.DANGLING:
        return False
    return row.end is None or row.end > now


def _mark_no_password_left(rows: list[InventoryRow], now: datetime, visible: set[str]) -> list[InventoryRow]:
    """Flag every row of a listed app (``visible``: lower-case appIds) that holds credentials, or is
    named by a vault secret, but has no password that signs in: a consumer sending a client secret
    for it cannot sign in. An app the rotator cannot see is not judged."""
    with_password = {r.app_id.lower() for r in rows if r.app_id and _signs_in(r, now)}
    return [
        replace(r, no_password_left=True)
        if r.app_id and r.app_id.lower() in visible and r.app_id.lower() not in with_password
        else r
        for r in rows
    ]


def apps_without_password(rows: Iterable[InventoryRow]) -> tuple[tuple[str, str | None], ...]:
    """``(appId, display name)`` of each app whose rows say it has no password left, by name.
    The app registration's name wins over its service principal's (they may differ)."""
    names: dict[str, str | None] = {}
    for row in rows:
        if not row.no_password_left or not row.app_id:
            continue
        key = row.app_id.lower()
        if key not in names or (row.credential_object == "application" and row.app_name):
            names[key] = row.app_name or names.get(key)
    return tuple(sorted(names.items(), key=lambda item: ((item[1] or "").lower(), item[0])))


def _sort_key(row: InventoryRow, now: datetime) -> tuple[int, float, str, str]:
    days = row.days_left(now)
    return (days is None, days if days is not None else 0.0, (row.app_name or "").lower(), row.key_id)


def within_days(rows: Iterable[InventoryRow], days: int | None, now: datetime) -> list[InventoryRow]:
    """``--days N``: what expires within N days (expired ones included); rows without an end date are out."""
    if days is None:
        return list(rows)
    return [r for r in rows if (left := r.days_left(now)) is not None and left <= days]
