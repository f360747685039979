"""Plain data of managed certificates: a Key Vault certificate version, an app's key credentials.

A managed certificate is a Key Vault *certificate* whose latest version carries the same operator
tags as a managed secret (``ProviderAddress`` above all) and whose rotation state lives in the same
rotator tags (:mod:`rotation.domain.state`): ``CredentialId`` is the keyId of the version's key
credential on the app. Its private key never leaves Key Vault; the rotator only asks Key Vault to
sign with it. Nothing here holds a private key, and a certificate's public DER is not secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from rotation.domain.model import Application, Binding, PasswordCredential, SecretVersion, ensure_utc

#: What Graph's ``keyCredential.type``/``usage`` are for a certificate an app signs in with.
KEY_TYPE: Final = "AsymmetricX509Cert"
KEY_USAGE: Final = "Verify"


def normal_thumbprint(value: str | bytes | None) -> str | None:
    """A SHA-1 thumbprint as upper-case hex, from hex text or the raw 20 bytes (Graph's
    ``customKeyIdentifier``, Key Vault's ``x5t``); ``None`` for anything else."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex().upper() if len(value) == 20 else None
    text = value.strip().replace(":", "")
    if len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.upper()
    return None


@dataclass(frozen=True)
class KeyCredential(PasswordCredential):
    """One certificate (key credential) of an app registration, as Graph lists it.

    A :class:`PasswordCredential` with a thumbprint, so that the record-of-intent rules
    (``rotator_owner``, ``created_by_rotator_for``) and the orphan rule apply unchanged.
    ``thumbprint`` is the certificate's SHA-1 thumbprint (Graph's ``customKeyIdentifier``).
    """

    thumbprint: str | None = None

    def is_valid(self, now: datetime, *, skew: timedelta = timedelta(0)) -> bool:
        """Whether Entra accepts an assertion signed with this key at ``now`` (started, not expired);
        ``skew``: how far ahead of ``now`` a start may be (a certificate Key Vault issued a moment ago,
        dated by Key Vault's clock)."""
        at = ensure_utc(now)
        started = self.start is None or self.start <= at + skew
        return started and not self.is_expired(at)


@dataclass(frozen=True)
class KeyApplication:
    """An app registration with its key credentials (the binding rules of :class:`Application`)."""

    app: Application
    keys: tuple[KeyCredential, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))

    @property
    def object_id(self) -> str:
        return self.app.object_id

    @property
    def app_id(self) -> str:
        return self.app.app_id

    def binding_for(self, host: str, certificate: str) -> Binding | None:
        return self.app.binding_for(host, certificate)

    def key(self, key_id: str) -> KeyCredential | None:
        wanted = key_id.lower()
        return next((k for k in self.keys if k.key_id.lower() == wanted), None)

    def by_thumbprint(self, thumbprint: str | None) -> KeyCredential | None:
        """The key credential of the certificate with this thumbprint, if the app has it."""
        wanted = normal_thumbprint(thumbprint)
        if wanted is None:
            return None
        return next((k for k in self.keys if k.thumbprint == wanted), None)

    def with_keys(self, keys: tuple[KeyCredential, ...]) -> KeyApplication:
        return KeyApplication(self.app, keys)


@dataclass(frozen=True)
class CertificateVersion:
    """One version of a Key Vault certificate: its attributes and tags (as a :class:`SecretVersion`,
    so the due, state and status rules of secrets read it unchanged), its SHA-1 thumbprint and, from
    a read of one version, its public DER (``cer``)."""

    properties: SecretVersion
    thumbprint: str | None = None
    cer: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "thumbprint", normal_thumbprint(self.thumbprint))

    @property
    def name(self) -> str:
        return self.properties.name

    @property
    def version(self) -> str | None:
        return self.properties.version

    @property
    def enabled(self) -> bool:
        return self.properties.enabled

    @property
    def expires(self) -> datetime | None:
        return self.properties.expires

    @property
    def managed(self) -> bool:
        return self.properties.managed

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.properties.tags)

    def usable_at(self, now: datetime) -> bool:
        """Whether Key Vault will sign with this version's key at ``now`` (enabled, not expired)."""
        expires = self.expires
        return self.enabled and (expires is None or expires > ensure_utc(now))
