"""Adoption: put an existing Key Vault secret under management (`python -m rotation adopt`).

Adoption first BINDS the secret to its app: it adds the tag ``rotator-binding:{vault host}/{secret}``
(``#{keyId}`` when it identified the credential the value belongs to) to the application's ``tags``
(``--service-principal``: to the app's service principal's ``tags``, and ``CredentialObject`` to the secret),
with the caller's own credential, so only an owner of the app or an admin can do it (Graph answers 403
to anyone else, and then nothing at all is written). Without that binding the rotator does nothing
for the secret, whatever its Key Vault tags say.

The secret already holds a working value of some credential of the app; adoption writes the operator
tags (`ProviderAddress`, optionally `TenantId`, `ValidityPeriodDays`, `GracePeriodHours`) and, when
exactly one credential matches the value's hint and the version's expiry, the `CredentialId` that lets
the first rotation retire it. It writes with the caller's own credential and never creates or removes
a credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rotation.domain import policy
from rotation.domain.errors import (
    AlreadyManagedError,
    BadRequestError,
    BindingDeniedError,
    CertificateNotFoundError,
    OwnIdentityError,
    PermissionDeniedError,
    SecretNotFoundError,
    bind_command,
)
from rotation.domain.model import (
    APPLICATION,
    SERVICE_PRINCIPAL,
    Application,
    Binding,
    CredentialObject,
    ManagedSecret,
    RotationState,
    Tag,
    binding_tag,
    parse_binding,
)
from rotation.service.certificate_ports import CertificateVault
from rotation.service.ports import Directory, Vault
from rotation.settings import SecretPolicy, Settings


@dataclass(frozen=True)
class AdoptionRequest:
    """What the operator asked for: the secret, its app and optional policy overrides."""

    vault: str
    secret: str
    app_id: str
    tenant: str | None = None
    validity_days: int | None = None
    grace_hours: int | None = None
    #: The password lives on the app's service principal (``CredentialObject=servicePrincipal``): the
    #: binding is written on the service principal, with the caller's credential (an owner of it).
    service_principal: bool = False

    @property
    def credential_object(self) -> CredentialObject:
        return SERVICE_PRINCIPAL if self.service_principal else APPLICATION


@dataclass(frozen=True)
class Adoption:
    """What adoption wrote (no value), for the command line's text and ``--json``."""

    vault: str
    secret: str
    app_id: str
    credential_id: str | None
    version: str
    warnings: tuple[str, ...] = ()
    binding: str = ""
    credential_object: CredentialObject = APPLICATION

    def to_dict(self) -> dict[str, Any]:
        return {
            "vault": self.vault,
            "secret": self.secret,
            "appId": self.app_id,
            "credentialId": self.credential_id,
            "version": self.version,
            "binding": self.binding,
            "credentialObject": self.credential_object,
            "warnings": list(self.warnings),
        }


async def adopt_secret(settings: Settings, directory: Directory, vault: Vault, request: AdoptionRequest) -> Adoption:
    """Write the management tags on the latest version; identify its credential by hint and expiry.

    Everything is read and checked before the one write, so a refusal changes nothing.
    """
    vault_name, secret, app_id = request.vault, request.secret, request.app_id
    current = await vault.get(secret)
    if current is None:
        raise SecretNotFoundError(vault_name, secret)
    existing = current.version.tags.get(Tag.ProviderAddress)
    if existing and existing.strip().lower() != app_id.lower():
        raise AlreadyManagedError(
            f"Secret '{secret}' is already managed for app {existing}.",
            "Remove its ProviderAddress tag first if it really belongs to another app.",
        )
    app = await directory.get_application(app_id, on=request.credential_object)
    warnings: list[str] = []
    stored_key_id = policy.looks_like_key_id(current.value, app.password_credentials)
    credential_id: str | None = None
    if stored_key_id:
        warnings.append(
            f"the secret holds the Secret ID {stored_key_id}, not a value: consumers fail with AADSTS7000215 "
            "until the next rotation (run `rotate --emergency`)"
        )
    else:
        candidates = policy.adoption_candidates(
            app.password_credentials, current.value.hint, current.version.expires, vault=vault_name, secret=secret
        )
        if len(candidates) == 1:
            credential_id = candidates[0].key_id
        else:
            warnings.append(
                f"{len(candidates)} credentials match the value's hint and expiry; set the CredentialId tag by "
                "hand so the rotator can retire the right one"
            )
    final_tags, settings_policy = management_tags(settings, current.version.tags, app, request, credential_id)
    assert current.version.version is not None
    host = settings.vault_host(vault_name)
    # The binding first: if the caller may not write it, nothing at all is written.
    tag = await bind_secret(directory, app, host, secret, credential_id, vault_alias=vault_name)
    await vault.update(secret, current.version.version, tags=final_tags)
    return Adoption(
        vault=vault_name,
        secret=secret,
        app_id=app.app_id,
        credential_id=credential_id,
        version=current.version.version,
        warnings=(*warnings, *settings_policy.warnings),
        binding=tag,
        credential_object=request.credential_object,
    )


def management_tags(
    settings: Settings,
    existing: Mapping[str, str],
    app: Application,
    request: AdoptionRequest,
    credential_id: str | None,
) -> tuple[dict[str, str], SecretPolicy]:
    """The tags adoption writes on a secret's (or a certificate's) latest version: the operator's
    choices over what is there, the rotator's own tags reset; refused (``TagError``, ``OwnIdentity``,
    a tenant outside the allowed ones) before anything is written."""
    vault_name, secret = request.vault, request.secret
    tags = {k: v for k, v in existing.items() if k not in Tag.ROTATOR}
    tags[Tag.ProviderAddress] = app.app_id
    if request.tenant:
        tags[Tag.TenantId] = request.tenant
    if request.validity_days is not None:
        tags[Tag.ValidityPeriodDays] = str(request.validity_days)
    if request.grace_hours is not None:
        tags[Tag.GracePeriodHours] = str(request.grace_hours)
    # The object is the operator's choice, like the app: written for a service principal, removed
    # otherwise (the credential identified above is on the object asked for).
    if request.service_principal:
        tags[Tag.CredentialObject] = SERVICE_PRINCIPAL
    else:
        tags.pop(Tag.CredentialObject, None)
    state = ManagedSecret(
        vault=vault_name,
        name=secret,
        app_id=app.app_id,
        credential_id=credential_id,
        state=RotationState.ACTIVE if credential_id else None,
        credential_object=request.credential_object,
    )
    final_tags = state.to_tags(tags)
    # Refuse tags the reconciler would refuse (raises TagError) before writing anything.
    ManagedSecret.from_tags(final_tags, vault=vault_name, name=secret)
    settings_policy = settings.policy_for(final_tags, secret, vault_name)
    settings_policy.require_tenant(vault_name, secret)
    own = settings.own_client_id
    if own and app.app_id.lower() == own.lower():
        raise OwnIdentityError(vault_name, secret, app.app_id)
    return final_tags, settings_policy


async def adopt_certificate(
    settings: Settings, directory: Directory, certificates: CertificateVault, request: AdoptionRequest
) -> Adoption:
    """Put a Key Vault certificate under management: the binding on the app, then the management tags
    on its latest version, its ``CredentialId`` being the app's key credential with the version's
    thumbprint. A certificate not on the app yet is adopted too, with the one thing a person must do."""
    vault_name, name = request.vault, request.secret
    if request.service_principal:
        raise BadRequestError(
            ["a certificate is rotated on the app registration only: adopt it without --service-principal"]
        )
    current = await certificates.get_certificate(name)
    if current is None or current.version is None:
        raise CertificateNotFoundError(vault_name, name)
    existing = current.properties.tags.get(Tag.ProviderAddress)
    if existing and existing.strip().lower() != request.app_id.lower():
        raise AlreadyManagedError(
            f"Certificate '{name}' is already managed for app {existing}.",
            "Remove its ProviderAddress tag first if it really belongs to another app.",
        )
    app = await directory.get_application(request.app_id)
    on_app = [k for k in app.key_credentials if current.thumbprint and k.thumbprint == current.thumbprint]
    credential_id = on_app[0].key_id.lower() if on_app else None
    warnings: list[str] = []
    if credential_id is None:
        warnings.append(
            f"the certificate's latest version is not on the app: add it once (az ad app credential reset --id "
            f"{app.app_id} --cert {name} --keyvault {vault_name} --append), the rotator cannot (addKey needs a "
            "proof signed by a certificate the app already has)"
        )
    final_tags, settings_policy = management_tags(settings, current.properties.tags, app, request, credential_id)
    host = settings.vault_host(vault_name)
    # The binding first: if the caller may not write it, nothing at all is written.
    tag = await bind_secret(directory, app, host, name, credential_id, vault_alias=vault_name)
    await certificates.update_certificate(name, current.version, tags=final_tags)
    return Adoption(
        vault=vault_name,
        secret=name,
        app_id=app.app_id,
        credential_id=credential_id,
        version=current.version,
        warnings=(*warnings, *settings_policy.warnings),
        binding=tag,
        credential_object=APPLICATION,
    )


def bound_tags(existing: tuple[str, ...] | list[str], binding: Binding) -> list[str]:
    """``existing`` tags with ``binding`` added; an earlier binding of the same secret is replaced, every
    other tag kept (Graph replaces the whole collection on PATCH, so the list must be complete)."""
    kept = [
        t
        for t in existing
        if (b := parse_binding(t, on=binding.on)) is None or (b.host, b.secret) != (binding.host, binding.secret)
    ]
    return [*kept, binding.tag]


def by_hand_command(app_id: str, tags: list[str], on: CredentialObject = APPLICATION) -> str:
    """The `az` way: the whole list, the binding included (Graph replaces the collection, and
    azure-cli refuses `--add tags` on an app without tags before it sends anything)."""
    noun = "sp" if on == SERVICE_PRINCIPAL else "app"
    return f"az ad {noun} update --id {app_id} --set tags='{json.dumps(tags)}'"


async def bind_secret(
    directory: Directory,
    app: Application,
    host: str,
    secret: str,
    adopted_key_id: str | None = None,
    *,
    vault_alias: str = "VAULT",
) -> str:
    """Write the binding of ``secret`` (of the vault at ``host``) on ``app``, keeping its other tags
    (on the service principal's tags when ``app`` was read as the service principal).

    Runs with the caller's credential (``adopt`` from an operator's shell, never the function app);
    raises :class:`BindingDeniedError` when Graph refuses (the caller is neither an owner nor an admin).
    """
    tag = binding_tag(host, secret, adopted_key_id, on=app.credential_object)
    binding = parse_binding(tag, on=app.credential_object)
    assert binding is not None
    tags = bound_tags(app.tags, binding)
    if list(app.tags) == tags:
        return tag  # bound already: no write
    on = app.credential_object
    try:
        await directory.set_application_tags(app.object_id, tags, app_id=app.app_id, on=on)
    except PermissionDeniedError as exc:
        command = bind_command(vault_alias, secret, app.app_id, service_principal=on == SERVICE_PRINCIPAL)
        raise BindingDeniedError(
            app.app_id, command, by_hand_command(app.app_id, tags, on), service_principal=on == SERVICE_PRINCIPAL
        ) from exc
    return tag
