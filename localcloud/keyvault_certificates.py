"""Azure Key Vault certificates in the local cloud, issued by the `Self` issuer.

Driven by the unmodified `azure-keyvault-certificates` clients: `begin_create_certificate` posts a
policy to `/certificates/{name}/create` (202, the pending operation, always `inProgress` at first)
and polls `/pending` until it is `completed`; then the certificate, its key (`/keys/{name}`,
`managed: true`) and its secret (`/secrets/{name}`, the PKCS#12 or PEM with `kid` and
`managed: true`) exist with one shared version id, as in Key Vault. Certificates, keys and secrets
share one name space per vault.

The X.509 certificate is real: an RSA key of the policy's size, self-signed with SHA-256, valid from
issuance for `validity_months` calendar months, with the policy's subject, SANs, key usage and
EKUs. An issuance completes on the first read after its creation, or `certificate_issuance_seconds`
later (admin `PUT /vaults/{name}/certificate-issuance`), on the world's clock. Not modelled: other
issuers than `Self` and `Unknown` (a CSR that waits for a merge), import, merge, backup/restore,
contacts, issuers, and the policy's lifetime actions (Key Vault would auto-renew at 80 % of the
lifetime by default; here nothing renews unless asked).

Routing, authentication, RBAC and paging are `keyvault.py`'s; every operation runs under
`world.lock`.
"""

from __future__ import annotations

import base64
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud.certificate_policy import (
    DEFAULT_VALIDITY_MONTHS,
    PKCS12,
    SELF_ISSUER,
    UNKNOWN_ISSUER,
    certificate_request,
    key_operations,
    normalise_policy,
    secret_value,
    self_signed,
)
from localcloud.keyvault import (
    INVALID_PROPERTY,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    NEAR_EXPIRY,
    NOT_FOUND_TAIL,
    ObjectRoute,
    _Call,
    _error,
    _json,
    _page,
    _recovery_level,
    purged,
    requested_version,
)
from localcloud.keyvault_keys import add_key_version, b64url, key_id, object_route
from localcloud.state import (
    CertificateOperationRecord,
    CertificateRecord,
    CertificateVersionRecord,
    DeletedCertificateRecord,
    SecretRecord,
    SecretVersionRecord,
    VaultRecord,
    World,
    to_epoch,
)

EVENT_NEW_VERSION = "Microsoft.KeyVault.CertificateNewVersionCreated"
EVENT_NEAR_EXPIRY = "Microsoft.KeyVault.CertificateNearExpiry"
EVENT_EXPIRED = "Microsoft.KeyVault.CertificateExpired"


# --- issuance --------------------------------------------------------------------------------------
def _complete(world: World, vault: VaultRecord, certificate: CertificateRecord) -> None:
    """Issue the pending certificate: one version id for the certificate, its key and its secret."""
    operation = certificate.pending
    assert operation is not None
    now = world.clock.now()
    policy = certificate.policy
    cert = self_signed(operation.private_key, certificate, now)
    der = cert.public_bytes(serialization.Encoding.DER)
    version = uuid.uuid4().hex
    not_before, expires = cert.not_valid_before_utc, cert.not_valid_after_utc
    exportable = bool(policy["key_props"]["exportable"])
    content_type = policy["secret_props"]["contentType"]
    record = CertificateVersionRecord(
        version=version,
        der=der,
        enabled=operation.enabled,
        created=now,
        updated=now,
        not_before=not_before,
        expires=expires,
        tags=dict(operation.tags) if operation.tags is not None else None,
        content_type=content_type,
    )
    certificate.versions.append(record)
    add_key_version(
        vault,
        certificate.name,
        operation.private_key,
        version=version,
        key_ops=key_operations(policy["x509_props"]["key_usage"]),
        now=now,
        not_before=not_before,
        expires=expires,
        exportable=exportable,
        managed=True,
        enabled=operation.enabled,
    )
    secret = vault.secrets.get(certificate.name.lower())
    if secret is None:
        secret = SecretRecord(name=certificate.name)
        vault.secrets[certificate.name.lower()] = secret
    secret.versions.append(
        SecretVersionRecord(
            version=version,
            value=secret_value(operation.private_key, cert, content_type, exportable),
            content_type=content_type,
            tags=None,
            enabled=operation.enabled,
            created=now,
            updated=now,
            not_before=not_before,
            expires=expires,
            certificate_key_id=key_id(vault, certificate.name, version),
        )
    )
    operation.status = "completed"
    # Only the certificate's event: whether Key Vault also announces the new secret and key versions
    # behind it (SecretNewVersionCreated, KeyNewVersionCreated) is not documented, so none is sent.
    world.emit_event(_event(vault, certificate, record, EVENT_NEW_VERSION, now))


def complete_due(world: World, vault: VaultRecord, certificate: CertificateRecord) -> None:
    """Complete a `Self` issuance whose time has come (the caller holds `world.lock`)."""
    operation = certificate.pending
    if (
        operation is not None
        and operation.status == "inProgress"
        and operation.issuer == SELF_ISSUER
        and world.clock.now() >= operation.ready_at
    ):
        _complete(world, vault, certificate)


def start_issuance(
    world: World,
    vault: VaultRecord,
    name: str,
    policy: dict[str, Any],
    *,
    enabled: bool = True,
    tags: dict[str, str] | None = None,
) -> CertificateRecord | str:
    """Begin a new version of certificate `name` from `policy` (normalised); or the conflict text. The
    caller holds `world.lock`.

    The operation is `inProgress` when created, as the service answers it, even when the vault issues
    without delay: the next read of the certificate completes it then. (The sync SDK's poller relies
    on that: a first answer that is already `completed` leaves its result empty.)"""
    key = name.lower()
    if key in vault.deleted_certificates:
        return (
            f"Certificate {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the certificate can only be recovered or purged."
        )
    certificate = vault.certificates.get(key)
    if certificate is None and (key in vault.secrets or key in vault.keys or key in vault.deleted):
        # Unverified wording: a secret or key of that name exists, and they share the name space.
        return f"A secret or key named {name} exists already in this vault; a certificate cannot take its name."
    if certificate is not None and certificate.pending is not None and certificate.pending.status == "inProgress":
        return f"Certificate {name} has a pending operation; delete it or wait for it to complete."
    now = world.clock.now()
    if certificate is None:
        certificate = CertificateRecord(name=name, policy=policy, policy_created=now, policy_updated=now)
        vault.certificates[key] = certificate
    else:
        certificate.policy, certificate.policy_updated = policy, now
    private_key: rsa.RSAPrivateKey | None = None
    if policy["key_props"]["reuse_key"] and certificate.versions:
        latest_key = vault.keys[key].latest
        private_key = latest_key.private_key
    if private_key is None:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=policy["key_props"]["key_size"])
    certificate.pending = CertificateOperationRecord(
        request_id=uuid.uuid4().hex,
        issuer=policy["issuer"]["name"],
        csr=certificate_request(private_key, certificate),
        private_key=private_key,
        created=now,
        ready_at=now + timedelta(seconds=vault.certificate_issuance_seconds),
        enabled=enabled,
        tags=dict(tags) if tags is not None else None,
    )
    return certificate


# --- events ----------------------------------------------------------------------------------------
def _event(
    vault: VaultRecord,
    certificate: CertificateRecord,
    version: CertificateVersionRecord,
    event_type: str,
    now: datetime,
) -> dict[str, Any]:
    """One event in the Event Grid schema, shaped like the secrets' (ObjectType `Certificate`)."""
    return {
        "id": str(uuid.uuid4()),
        "topic": vault.resource_id(""),
        "subject": certificate.name,
        "eventType": event_type,
        "eventTime": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "Id": _version_id(vault, certificate, version),
            "VaultName": vault.name,
            "ObjectType": "Certificate",
            "ObjectName": certificate.name,
            "Version": version.version,
            "NBF": to_epoch(version.not_before),
            "EXP": to_epoch(version.expires),
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def emit_due_events(world: World) -> None:
    """Complete due issuances, emit CertificateNearExpiry / CertificateExpired for the current version
    as the clock passes them (like the secrets' events: once per version, 30 days before), and purge
    deleted certificates whose retention is over. The caller holds `world.lock`."""
    now = world.clock.now()
    for vault in world.vaults.values():
        for certificate in vault.certificates.values():
            complete_due(world, vault, certificate)
            current = certificate.latest
            if current is None or not current.enabled:
                continue
            if not current.near_expiry_emitted and now + NEAR_EXPIRY >= current.expires:
                current.near_expiry_emitted = True
                world.emit_event(_event(vault, certificate, current, EVENT_NEAR_EXPIRY, now))
            if not current.expired_emitted and now >= current.expires:
                current.expired_emitted = True
                world.emit_event(_event(vault, certificate, current, EVENT_EXPIRED, now))
        for key in [k for k, d in vault.deleted_certificates.items() if d.scheduled_purge <= now]:
            del vault.deleted_certificates[key]


# --- wire shapes -----------------------------------------------------------------------------------
def _certificate_id(vault: VaultRecord, certificate: CertificateRecord) -> str:
    return f"{vault.url}/certificates/{certificate.name}"


def _version_id(vault: VaultRecord, certificate: CertificateRecord, version: CertificateVersionRecord) -> str:
    return f"{_certificate_id(vault, certificate)}/{version.version}"


def _attributes(vault: VaultRecord, version: CertificateVersionRecord) -> dict[str, Any]:
    return {
        "enabled": version.enabled,
        "nbf": to_epoch(version.not_before),
        "exp": to_epoch(version.expires),
        "created": to_epoch(version.created),
        "updated": to_epoch(version.updated),
        "recoveryLevel": _recovery_level(vault),
        "recoverableDays": vault.recoverable_days,
    }


def policy_body(vault: VaultRecord, certificate: CertificateRecord) -> dict[str, Any]:
    policy = certificate.policy
    return {
        "id": f"{_certificate_id(vault, certificate)}/policy",
        "key_props": dict(policy["key_props"]),
        "secret_props": dict(policy["secret_props"]),
        "x509_props": {k: (list(v) if isinstance(v, list) else v) for k, v in policy["x509_props"].items()},
        "lifetime_actions": [dict(a) for a in policy["lifetime_actions"]],
        "issuer": dict(policy["issuer"]),
        "attributes": {
            "enabled": True,
            "created": to_epoch(certificate.policy_created),
            "updated": to_epoch(certificate.policy_updated),
        },
    }


def _bundle(
    vault: VaultRecord, certificate: CertificateRecord, version: CertificateVersionRecord, *, with_policy: bool
) -> dict[str, Any]:
    """A CertificateBundle: ids of the certificate and of the key and secret behind it, the SHA-1
    thumbprint (`x5t`, base64url), the DER certificate (`cer`, base64), attributes from the X.509
    validity, this version's tags and, for the latest, the policy."""
    body: dict[str, Any] = {
        "id": _version_id(vault, certificate, version),
        "kid": key_id(vault, certificate.name, version.version),
        "sid": f"{vault.url}/secrets/{certificate.name}/{version.version}",
        "x5t": b64url(version.thumbprint),
        "cer": base64.b64encode(version.der).decode("ascii"),
        "contentType": version.content_type,
        "attributes": _attributes(vault, version),
    }
    if version.tags is not None:
        body["tags"] = dict(version.tags)
    if with_policy:
        body["policy"] = policy_body(vault, certificate)
    return body


def _item(
    vault: VaultRecord, certificate: CertificateRecord, version: CertificateVersionRecord, *, versioned: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": _version_id(vault, certificate, version) if versioned else _certificate_id(vault, certificate),
        "x5t": b64url(version.thumbprint),
        "attributes": _attributes(vault, version),
    }
    if version.tags is not None:
        item["tags"] = dict(version.tags)
    return item


def _operation_body(vault: VaultRecord, certificate: CertificateRecord) -> dict[str, Any]:
    operation = certificate.pending
    assert operation is not None
    body: dict[str, Any] = {
        "id": f"{_certificate_id(vault, certificate)}/pending",
        "issuer": {"name": operation.issuer},
        "csr": base64.b64encode(operation.csr).decode("ascii"),
        "cancellation_requested": operation.cancellation_requested,
        "status": operation.status,
        "status_details": None,
        "target": _certificate_id(vault, certificate),
        "request_id": operation.request_id,
    }
    if operation.status == "inProgress":
        body["status_details"] = (
            "Pending certificate created. Please Perform Merge to complete the request."
            if operation.issuer == UNKNOWN_ISSUER
            else "Pending certificate created. Certificate request is in progress. This may take some time "
            "based on the issuer provider. Please check again later."
        )
    return body


def _deleted_fields(vault: VaultRecord, deleted: DeletedCertificateRecord) -> dict[str, Any]:
    return {
        "recoveryId": f"{vault.url}/deletedcertificates/{deleted.certificate.name}",
        "deletedDate": to_epoch(deleted.deleted),
        "scheduledPurgeDate": to_epoch(deleted.scheduled_purge),
    }


# --- errors ----------------------------------------------------------------------------------------
def _not_found(request: web.Request, name: str, version: str | None = None) -> web.Response:
    label = f"{name}/{version}" if version else name
    tail = NOT_FOUND_TAIL.replace("this secret", "this certificate")
    return _error(request, 404, "CertificateNotFound", f"A certificate with (name/id) {label}{tail}")


def _pending_not_found(request: web.Request, name: str) -> web.Response:
    return _error(request, 404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")


def _deleted_not_found(request: web.Request, name: str) -> web.Response:
    return _error(request, 404, "CertificateNotFound", f"Deleted Certificate not found: {name}")


def _bad_parameter(request: web.Request, message: str) -> web.Response:
    return _error(request, 400, "BadParameter", message)


def _conflict(request: web.Request, message: str) -> web.Response:
    inner = "ObjectIsDeletedButRecoverable" if "deleted but recoverable" in message else None
    return _error(request, 409, "Conflict", message, inner)


# --- operations (each runs under world.lock) -------------------------------------------------------
def _live(call: _Call) -> CertificateRecord | None:
    assert call.name is not None
    certificate = call.vault.certificates.get(call.name.lower())
    if certificate is not None:
        complete_due(call.world, call.vault, certificate)
    return certificate


def _tags_and_enabled(body: dict[str, Any]) -> tuple[dict[str, str] | None, bool | None] | str:
    tags = body.get("tags")
    if tags is not None:
        if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
            return INVALID_PROPERTY
        for key, value in tags.items():
            if not (isinstance(value, str) and 0 < len(key) <= MAX_TAG_LENGTH and len(value) <= MAX_TAG_LENGTH):
                return INVALID_PROPERTY
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        return INVALID_PROPERTY
    enabled = attributes.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        return INVALID_PROPERTY
    return tags, enabled


def _create(call: _Call, body: dict[str, Any]) -> web.Response:
    assert call.name is not None
    vault, request = call.vault, call.request
    existing = vault.certificates.get(call.name.lower())
    policy = normalise_policy(body.get("policy") or {}, existing.policy if existing else None)
    if isinstance(policy, str):
        return _bad_parameter(request, policy)
    if "subject" not in policy["x509_props"] and not (policy["x509_props"].get("sans") or {}):
        # Key Vault needs a subject or a SAN to issue (unverified wording).
        return _bad_parameter(request, "The certificate policy needs a subject or subject alternative names.")
    parsed = _tags_and_enabled(body)
    if isinstance(parsed, str):
        return _bad_parameter(request, parsed)
    tags, enabled = parsed
    started = start_issuance(call.world, vault, call.name, policy, enabled=enabled is not False, tags=tags)
    if isinstance(started, str):
        return _conflict(request, started)
    return _json(request, _operation_body(vault, started), status=202)


def _get(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    certificate = _live(call)
    if certificate is None:
        return _not_found(call.request, call.name)
    version = requested_version(call, certificate)  # None too for one that was never issued
    if version is None:
        return _not_found(call.request, call.name, call.version)
    # Only the certificate (its latest version) carries the policy; a named version does not.
    return _json(call.request, _bundle(call.vault, certificate, version, with_policy=not call.version))


def _update(call: _Call, body: dict[str, Any]) -> web.Response:
    """Tags and `enabled` of one version (tags are per version, like secrets'); disabling a version
    disables the key and secret versions behind it too. A policy in the body replaces the policy."""
    assert call.name is not None
    parsed = _tags_and_enabled(body)
    if isinstance(parsed, str):
        return _bad_parameter(call.request, parsed)
    tags, enabled = parsed
    certificate = _live(call)
    if certificate is None or certificate.latest is None:
        return _not_found(call.request, call.name)
    version = requested_version(call, certificate)
    if version is None:
        return _not_found(call.request, call.name, call.version)
    if body.get("policy") is not None:
        policy = normalise_policy(body["policy"], certificate.policy)
        if isinstance(policy, str):
            return _bad_parameter(call.request, policy)
        certificate.policy, certificate.policy_updated = policy, call.world.clock.now()
    now = call.world.clock.now()
    if "tags" in body:
        version.tags = dict(tags) if tags is not None else None
    if enabled is not None:
        version.enabled = enabled
        key = call.vault.keys.get(call.name.lower())
        secret = call.vault.secrets.get(call.name.lower())
        for record in (key.find(version.version) if key else None, secret.find(version.version) if secret else None):
            if record is not None:
                record.enabled, record.updated = enabled, now
    version.updated = now
    with_policy = not call.version or version is certificate.latest
    return _json(call.request, _bundle(call.vault, certificate, version, with_policy=with_policy))


def _get_policy(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    certificate = _live(call)
    if certificate is None:
        return _not_found(call.request, call.name)
    return _json(call.request, policy_body(call.vault, certificate))


def _update_policy(call: _Call, body: dict[str, Any]) -> web.Response:
    assert call.name is not None
    certificate = _live(call)
    if certificate is None:
        return _not_found(call.request, call.name)
    policy = normalise_policy(body, certificate.policy)
    if isinstance(policy, str):
        return _bad_parameter(call.request, policy)
    certificate.policy, certificate.policy_updated = policy, call.world.clock.now()
    return _json(call.request, policy_body(call.vault, certificate))


def _with_pending(call: _Call) -> tuple[CertificateRecord, CertificateOperationRecord] | web.Response:
    """The certificate the path names and its pending operation; the service's 404 when there is none."""
    assert call.name is not None
    certificate = _live(call)
    if certificate is None or certificate.pending is None:
        return _pending_not_found(call.request, call.name)
    return certificate, certificate.pending


def _get_pending(call: _Call, body: None) -> web.Response:
    found = _with_pending(call)
    if isinstance(found, web.Response):
        return found
    return _json(call.request, _operation_body(call.vault, found[0]))


def _cancel_pending(call: _Call, body: dict[str, Any]) -> web.Response:
    found = _with_pending(call)
    if isinstance(found, web.Response):
        return found
    certificate, pending = found
    if body.get("cancellation_requested") is True and pending.status == "inProgress":
        pending.cancellation_requested = True
        pending.status = "cancelled"
    return _json(call.request, _operation_body(call.vault, certificate))


def _delete_pending(call: _Call, body: None) -> web.Response:
    found = _with_pending(call)
    if isinstance(found, web.Response):
        return found
    certificate, _ = found
    answer = _json(call.request, _operation_body(call.vault, certificate))
    certificate.pending = None
    if not certificate.versions:  # a certificate that was never issued goes with its operation
        del call.vault.certificates[certificate.name.lower()]
    return answer


def _delete(call: _Call, body: None) -> web.Response:
    """Soft delete: the certificate, with the secret and key behind it, moves to deletedcertificates."""
    assert call.name is not None
    vault, key = call.vault, call.name.lower()
    certificate = _live(call)
    if certificate is None or certificate.latest is None:
        return _not_found(call.request, call.name)
    now = call.world.clock.now()
    deleted = DeletedCertificateRecord(
        certificate=certificate,
        secret=vault.secrets.pop(key, None),
        key=vault.keys.pop(key, None),
        deleted=now,
        scheduled_purge=now + timedelta(days=vault.recoverable_days),
    )
    del vault.certificates[key]
    vault.deleted_certificates[key] = deleted
    return _json(call.request, _deleted_bundle(vault, deleted))


def _deleted_bundle(vault: VaultRecord, deleted: DeletedCertificateRecord) -> dict[str, Any]:
    latest = deleted.certificate.latest
    assert latest is not None
    return {**_deleted_fields(vault, deleted), **_bundle(vault, deleted.certificate, latest, with_policy=True)}


def _get_deleted(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    deleted = call.vault.deleted_certificates.get(call.name.lower())
    if deleted is None:
        return _deleted_not_found(call.request, call.name)
    return _json(call.request, _deleted_bundle(call.vault, deleted))


def _recover(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    vault, key = call.vault, call.name.lower()
    deleted = vault.deleted_certificates.pop(key, None)
    if deleted is None:
        return _deleted_not_found(call.request, call.name)
    vault.certificates[key] = deleted.certificate
    if deleted.secret is not None:
        vault.secrets[key] = deleted.secret
    if deleted.key is not None:
        vault.keys[key] = deleted.key
    latest = deleted.certificate.latest
    assert latest is not None
    return _json(call.request, _bundle(vault, deleted.certificate, latest, with_policy=True))


def _purge(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    if call.vault.deleted_certificates.pop(call.name.lower(), None) is None:
        return _deleted_not_found(call.request, call.name)
    return purged(call.request)


def _list_certificates(call: _Call, body: None) -> web.Response:
    vault = call.vault
    entries = [
        (key, _item(vault, c, c.latest, versioned=False))
        for key, c in vault.certificates.items()
        if c.latest is not None
    ]
    return _page(call, "/certificates", entries)


def _list_versions(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    certificate = _live(call)
    entries: list[tuple[str, dict[str, Any]]] = []
    if certificate is not None:
        entries = [(v.version, _item(call.vault, certificate, v, versioned=True)) for v in certificate.versions]
    return _page(call, f"/certificates/{call.name}/versions", entries)


def _list_deleted(call: _Call, body: None) -> web.Response:
    vault = call.vault
    entries = [
        (key, {**_deleted_fields(vault, d), **_item(vault, d.certificate, latest, versioned=False)})
        for key, d in vault.deleted_certificates.items()
        if (latest := d.certificate.latest) is not None
    ]
    return _page(call, "/deletedcertificates", entries)


# --- routing -----------------------------------------------------------------------------------------
_route = functools.partial(object_route, "certificates")


def resolve(method: str, segments: list[str]) -> ObjectRoute | None:
    """The certificates operation of a request, or None when the path is not one of them.

    Data actions: reads are `certificates/read`; the pending operation's cancel and delete are
    `certificates/update/action` (an assumption: the docs name no separate action for them)."""
    if segments[:1] not in (["certificates"], ["deletedcertificates"]):
        return None
    if len(segments) == 2 and segments[1] == "":
        segments = segments[:1]
    read, update = "certificates/read", "certificates/update/action"
    match method, segments:
        case "GET", ["certificates"]:
            return _route(read, _list_certificates)
        case "GET", ["deletedcertificates"]:
            return _route(read, _list_deleted)
        case "GET", ["deletedcertificates", name] | ["deletedcertificates", name, ""]:
            return _route(read, _get_deleted, name)
        case "POST", ["deletedcertificates", name, "recover"]:
            return _route("certificates/recover/action", _recover, name)
        case "DELETE", ["deletedcertificates", name] | ["deletedcertificates", name, ""]:
            return _route("certificates/purge/action", _purge, name)
        case "POST", ["certificates", name, "create"]:
            return _route("certificates/create/action", _create, name, reads_body=True)
        case "GET", ["certificates", name, "versions"]:
            return _route(read, _list_versions, name)
        case "GET", ["certificates", name, "policy"]:
            return _route(read, _get_policy, name)
        case (("PATCH" | "PUT"), ["certificates", name, "policy"]):
            return _route(update, _update_policy, name, reads_body=True)
        case "GET", ["certificates", name, "pending"]:
            return _route(read, _get_pending, name)
        case "PATCH", ["certificates", name, "pending"]:
            return _route(update, _cancel_pending, name, reads_body=True)
        case "DELETE", ["certificates", name, "pending"]:
            return _route(update, _delete_pending, name)
        case "GET", ["certificates", name] | ["certificates", name, ""]:
            return _route(read, _get, name)
        case "GET", ["certificates", name, version]:
            return _route(read, _get, name, version)
        case "PATCH", ["certificates", name] | ["certificates", name, ""]:
            return _route(update, _update, name, reads_body=True)
        case "PATCH", ["certificates", name, version]:
            return _route(update, _update, name, version, reads_body=True)
        case "DELETE", ["certificates", name] | ["certificates", name, ""]:
            return _route("certificates/delete", _delete, name)
    return None


# --- for the admin API and the LocalCloud facade -------------------------------------------------
@dataclass(frozen=True)
class IssuedCertificate:
    """One version of a certificate as a test or the demo needs it: never the private key."""

    name: str
    version: str
    thumbprint: str  # SHA-1 of the DER certificate, upper-case hex (Graph's customKeyIdentifier)
    x5t: str  # the same, base64url (Key Vault's `x5t`)
    not_before: datetime
    expires: datetime
    enabled: bool
    tags: dict[str, str] | None
    der: bytes

    def to_admin(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "thumbprint": self.thumbprint,
            "x5t": self.x5t,
            "notBefore": to_epoch(self.not_before),
            "expires": to_epoch(self.expires),
            "enabled": self.enabled,
            "tags": dict(self.tags) if self.tags is not None else None,
            "cer": base64.b64encode(self.der).decode("ascii"),
        }


def describe(certificate: CertificateRecord, version: CertificateVersionRecord) -> IssuedCertificate:
    return IssuedCertificate(
        name=certificate.name,
        version=version.version,
        thumbprint=version.thumbprint.hex().upper(),
        x5t=b64url(version.thumbprint),
        not_before=version.not_before,
        expires=version.expires,
        enabled=version.enabled,
        tags=dict(version.tags) if version.tags is not None else None,
        der=version.der,
    )


def issue_now(
    world: World,
    vault: VaultRecord,
    name: str,
    *,
    subject: str | None = None,
    validity_months: int = DEFAULT_VALIDITY_MONTHS,
    tags: dict[str, str] | None = None,
    key_size: int = 2048,
    content_type: str = PKCS12,
    exportable: bool = True,
) -> IssuedCertificate | str:
    """Issue a new version at once (whatever the vault's issuance delay), from the existing policy
    with these fields over it; or the error text. The caller holds `world.lock`."""
    existing = vault.certificates.get(name.lower())
    raw = {
        "key_props": {"key_size": key_size, "exportable": exportable, "kty": "RSA"},
        "secret_props": {"contentType": content_type},
        "x509_props": {"subject": subject or f"CN={name}", "validity_months": validity_months},
        "issuer": {"name": SELF_ISSUER},
    }
    policy = normalise_policy(raw, existing.policy if existing else None)
    if isinstance(policy, str):
        return policy
    started = start_issuance(world, vault, name, policy, tags=tags)
    if isinstance(started, str):
        return started
    if started.pending is not None and started.pending.status == "inProgress":
        _complete(world, vault, started)
    latest = started.latest
    assert latest is not None
    return describe(started, latest)


def certificate_state(vault: VaultRecord) -> dict[str, Any]:
    """What the admin `GET /state` adds to a vault: certificates (policy, versions, pending status)
    and keys (versions, managed), metadata only: never a private key or a secret value."""

    def versions(certificate: CertificateRecord) -> list[dict[str, Any]]:
        return [{**describe(certificate, v).to_admin(), "contentType": v.content_type} for v in certificate.versions]

    return {
        "certificateIssuanceSeconds": vault.certificate_issuance_seconds,
        "certificates": [
            {
                "name": c.name,
                "policy": policy_body(vault, c),
                "pending": c.pending.status if c.pending is not None else None,
                "versions": versions(c),
            }
            for _, c in sorted(vault.certificates.items())
        ],
        "deletedCertificates": [
            {"name": d.certificate.name, "deletedDate": to_epoch(d.deleted), "versions": versions(d.certificate)}
            for _, d in sorted(vault.deleted_certificates.items())
        ],
        "keys": [
            {
                "name": k.name,
                "versions": [
                    {"version": v.version, "enabled": v.enabled, "managed": v.managed, "keyOps": list(v.key_ops)}
                    for v in k.versions
                ],
            }
            for _, k in sorted(vault.keys.items())
        ],
    }


def certificate_versions(vault: VaultRecord, name: str) -> list[IssuedCertificate] | None:
    """Every issued version, oldest first; None when the vault has no such certificate."""
    certificate = vault.certificates.get(name.lower())
    if certificate is None:
        return None
    return [describe(certificate, v) for v in certificate.versions]
