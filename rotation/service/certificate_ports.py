"""What a certificate rotation needs from the outside world, as small async Protocols.

The same conventions as :mod:`rotation.service.ports`: "not there" is a return value, throttling
is retried inside the adapter, a missing permission is a ``PermissionDeniedError`` naming what to
grant, and nothing secret (a signed JWT) appears in an exception or a log line.

- `CertificateVault`: one Key Vault's certificates, and signing with the key behind a version
  (Key Vault Certificates Officer + Key Vault Crypto User on the vault);
- `KeyDirectory`: Graph's key credentials of an app, ``addKey`` and ``removeKey`` (each with a proof
  of possession the caller had Key Vault sign);
- `AssertionProbe`: one client-assertion sign-in, to prove a new certificate works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Protocol

from rotation.domain.certificates import CertificateVersion, KeyApplication, KeyCredential
from rotation.domain.model import ProbeResult, Sensitive
from rotation.service.ports import Closable

__all__ = ["AssertionProbe", "CertificateVault", "CertificateVaultPort", "KeyDirectory"]


class CertificateVault(Protocol):
    """One Key Vault's certificates (`KeyVaultCertificates`)."""

    name: str

    async def get_certificate(self, certificate: str, version: str | None = None) -> CertificateVersion | None:
        """The latest (or given) version with its DER; ``None`` when there is no such certificate."""
        ...

    async def list_certificate_versions(self, certificate: str) -> list[CertificateVersion]:
        """Every version's attributes, tags and thumbprint (no DER)."""
        ...

    def certificate_pages(self) -> AsyncIterator[list[CertificateVersion]]:
        """Every certificate's latest attributes and tags, one list call's page at a time."""
        ...

    async def create_version(self, certificate: str, *, tags: Mapping[str, str]) -> CertificateVersion:
        """A new version from the certificate's own policy, carrying ``tags`` from its creation; waits
        for Key Vault's pending operation and returns the completed version (with its DER)."""
        ...

    async def update_certificate(
        self, certificate: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> CertificateVersion:
        """Change a version's tags and/or enabled flag."""
        ...

    async def sign(self, certificate: str, version: str, digest: bytes) -> bytes:
        """RS256 over ``digest`` (a SHA-256) with the key behind that certificate version."""
        ...


class KeyDirectory(Protocol):
    """Microsoft Graph, as far as an app's key credentials go (`GraphKeys`)."""

    async def get_key_application(self, app_id: str) -> KeyApplication:
        """The app (binding tags included) with its key credentials; raises when it is not found."""
        ...

    async def add_key(
        self, object_id: str, der: bytes, display_name: str, proof: Sensitive, *, app_id: str = ""
    ) -> KeyCredential:
        """``addKey``: the certificate with this DER as a new key credential (Graph takes its start
        and end from the certificate)."""
        ...

    async def remove_key(self, object_id: str, key_id: str, proof: Sensitive, *, app_id: str = "") -> bool:
        """``removeKey``; ``False`` when the key was already gone."""
        ...

    async def credential_sign_ins(self, app_id: str) -> dict[str, datetime | None] | None:
        """The sign-in report by keyId, as `Directory.credential_sign_ins` (it lists certificates too)."""
        ...


class AssertionProbe(Protocol):
    """Asks Entra for a client-credentials token with a signed client assertion."""

    def token_endpoint(self, tenant_id: str) -> str:
        """The ``aud`` a client assertion for ``tenant_id`` must name."""
        ...

    async def probe_assertion(
        self, tenant_id: str, app_id: str, assertion: Sensitive, *, within: float | None = None
    ) -> ProbeResult:
        """One attempt, never cached and never raising for an authentication failure (like
        `TokenProbe.probe`)."""
        ...


class CertificateVaultPort(CertificateVault, Closable, Protocol):
    """One vault's certificates as the wiring hands them out: the port plus ``close``."""
