"""What a person asks of the rotator (the HTTP operator API, the command line), checked once.

Both front doors name a vault and a secret. Before a rotation is queued (HTTP) or reconciled inline
(command line), :func:`admit_rotation` checks that the rotator could act on it at all, so the person
asking hears at once what is wrong instead of finding a failure in the worker's logs later. The
reconciler checks everything again on its own fresh read: these checks are for the caller, never
authority (a secret can change between here and the worker).

Every refusal is a :class:`RotationError` whose class carries its HTTP status and ``user_fault``;
the edges only shape it (an HTTP error body, one line on stderr).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from rotation.domain.errors import (
    CertificatesDisabledError,
    InvalidNameError,
    NotManagedError,
    SecretDisabledError,
    SecretNotFoundError,
    UnknownVaultError,
)
from rotation.domain.model import (
    SECRET_NAME_RULE,
    ManagedSecret,
    Mode,
    ReconcileRequest,
    SecretVersion,
    is_valid_secret_name,
)
from rotation.service.certificate_ports import CertificateVault
from rotation.service.certificate_sweep import status_of_certificate
from rotation.service.sweep import SecretStatus, status_of
from rotation.settings import Settings


class VersionReader(Protocol):
    """The one Key Vault read the checks need: the latest version's attributes and tags, no value."""

    async def get_properties(self, secret: str) -> SecretVersion | None: ...


def known_vault(settings: Settings, vault: str) -> str:
    """The configured vault's canonical (lower-case) name, or :class:`UnknownVaultError`."""
    key = vault.strip().lower()
    if key not in settings.vaults:
        raise UnknownVaultError(vault[:40], settings.vaults)
    return key


def valid_secret_name(name: str) -> str:
    if not is_valid_secret_name(name):
        raise InvalidNameError(f"'{name[:40]}' is not a Key Vault secret name ({SECRET_NAME_RULE}).")
    return name


async def managed_version(vaults: Mapping[str, VersionReader], vault: str, name: str) -> SecretVersion:
    """The latest version of a secret the rotator manages, from a value-free read (the version list):
    nothing a person asks for over HTTP or the command line needs the value to be checked."""
    return managed(await vaults[vault].get_properties(name), vault, name)


def managed(latest: SecretVersion | None, vault: str, name: str) -> SecretVersion:
    """``latest`` when it is a managed secret's latest version; else why not."""
    if latest is None:
        raise SecretNotFoundError(vault, name)
    if not latest.managed:
        raise NotManagedError(vault, name, "no ProviderAddress tag")
    return latest


async def admit_rotation(
    settings: Settings,
    vaults: Mapping[str, VersionReader],
    vault: str,
    secret: str,
    reason: str,
    mode: Mode,
    now: datetime,
    operation_id: str | None = None,
) -> ReconcileRequest:
    """The reconcile request for a rotation a person asked for, once it can be carried out.

    In order, cheapest first and no I/O before the names are known good: the vault is configured
    (``UnknownVault``), the name is one Key Vault accepts (``BadRequest``), the request itself is
    valid (``BadRequest``); then one value-free read: the secret exists (``SecretNotFound``), is
    managed (``NotManaged``), its tags are usable (``BadTags``) and its latest version is enabled
    (``SecretDisabled``: the reconciler could not read it either).
    """
    key = known_vault(settings, vault)
    valid_secret_name(secret)
    request = ReconcileRequest.new(key, secret, now=now, reason=reason, mode=mode, operation_id=operation_id)
    read = await vaults[key].get_properties(secret)
    if read is not None and read.backs_certificate:
        return certificate_request(settings, request)
    latest = managed(read, key, secret)
    ManagedSecret.from_version(latest)  # raises TagError for tags the reconciler would refuse
    if not latest.enabled:
        raise SecretDisabledError(
            f"The latest version of secret '{secret}' is disabled",
            "Enable it (or write a working value as a new version) and ask again.",
        )
    return request


def certificate_request(settings: Settings, request: ReconcileRequest) -> ReconcileRequest:
    """The request as one for a managed certificate: the name is a Key Vault certificate's (its secret
    says so, Key Vault marks it ``managed``), so ``rotate`` takes a certificate's name as it takes a
    secret's. The worker checks the certificate's own tags and binding."""
    if not settings.certificates:
        raise CertificatesDisabledError(request.vault, request.secret)
    return dataclasses.replace(request, kind="certificate")


async def managed_status(
    settings: Settings,
    vaults: Mapping[str, VersionReader],
    vault: str,
    secret: str,
    now: datetime,
    certificates: Mapping[str, CertificateVault] | None = None,
) -> SecretStatus:
    """The rotation state of one managed secret, or of a managed certificate by its name (never a
    value or a key), after the same name checks."""
    key = known_vault(settings, vault)
    name = valid_secret_name(secret)
    read = await vaults[key].get_properties(name)
    if read is not None and read.backs_certificate:
        if not settings.certificates:
            raise CertificatesDisabledError(key, name)
        # Only a runtime with ROTATION_CERTIFICATES has certificate clients.
        certificate = await certificates[key].get_certificate(name) if certificates else None
        if certificate is None or not certificate.managed:
            raise NotManagedError(key, name, "the certificate's latest version has no ProviderAddress tag")
        return status_of_certificate(certificate.tags, status_of(certificate.properties, settings, now))
    return status_of(managed(read, key, name), settings, now)
