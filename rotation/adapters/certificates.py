"""Key Vault certificates through the aio `CertificateClient`, and signing through the aio
`CryptographyClient` of the key behind a certificate version: the `CertificateVault` port.

The private key never leaves Key Vault: a version's key is ``keys/{name}/{version}`` (Key Vault
creates the key and the secret of a certificate under its name and version), and ``sign`` asks Key
Vault for RS256 over a SHA-256 digest. Failures are translated once, here, like `keyvault.py`'s:
404 → "absent", 403 → `PermissionDeniedError` naming the role, 429/5xx/transport → retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import CertificateOperation, CertificateProperties, KeyVaultCertificate
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.keys.crypto.aio import CryptographyClient

from rotation.adapters.keyvault_calls import SERVICE, call_vault, common_refusal, vault_pages
from rotation.adapters.retrying import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
)
from rotation.domain.certificates import CertificateVersion, normal_thumbprint
from rotation.domain.errors import KeyVaultError, PermissionDeniedError
from rotation.domain.model import SecretVersion
from rotation.settings import is_loopback

T = TypeVar("T")

CERTIFICATES_OFFICER = "the 'Key Vault Certificates Officer' role on vault '{vault}' (scope: the vault)"
CRYPTO_USER = "the 'Key Vault Crypto User' role on vault '{vault}' (scope: the vault)"
#: How often the create poller asks whether the new version is issued. A Self-issued certificate
#: is ready in seconds; azure-keyvault-certificates' default is 5 s.
CREATE_POLL_SECONDS = 1
#: How long a create waits for an operation already pending on the certificate.
PENDING_WAIT_SECONDS = 60


class KeyVaultCertificates:
    """The `CertificateVault` port for one vault."""

    def __init__(
        self, name: str, url: str, credential: AsyncTokenCredential, *, retry_budget_seconds: float = 120.0
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self._credential = credential
        self._budget = retry_budget_seconds
        self._client = CertificateClient(self.url, credential, **self._client_options())
        # One CryptographyClient per key version for the adapter's life (one invocation): the client
        # reads its key once, on first use, to learn what it may do locally, so a new client per
        # signature (every validation attempt signs a fresh assertion) would read it every time.
        self._signers: dict[str, CryptographyClient] = {}

    def _client_options(self) -> dict[str, object]:
        return {
            # The SDK refuses a challenge whose resource is not a parent domain of a loopback host.
            "verify_challenge_resource": not is_loopback(self.url),
            "retry_total": 0,  # retries happen in `with_retries`, counted and capped
            "connection_timeout": CONNECT_TIMEOUT_SECONDS,
            "read_timeout": READ_TIMEOUT_SECONDS,
        }

    async def close(self) -> None:
        for signer in self._signers.values():
            await signer.close()
        self._signers.clear()
        await self._client.close()

    # --- reads -----------------------------------------------------------------------------------
    async def get_certificate(self, certificate: str, version: str | None = None) -> CertificateVersion | None:
        async def call() -> CertificateVersion | None:
            try:
                if version is None:
                    found = await self._client.get_certificate(certificate)
                else:
                    found = await self._client.get_certificate_version(certificate, version)
            except ResourceNotFoundError:
                return None
            return self._certificate(found)

        return await self._call(call, f"read certificate '{certificate}'", CERTIFICATES_OFFICER)

    async def list_certificate_versions(self, certificate: str) -> list[CertificateVersion]:
        async def call() -> list[CertificateVersion]:
            pager = self._client.list_properties_of_certificate_versions(certificate)
            return [self._version(item) async for item in pager]

        return await self._call(call, f"list versions of certificate '{certificate}'", CERTIFICATES_OFFICER)

    async def certificate_pages(self) -> AsyncIterator[list[CertificateVersion]]:
        """One list call's page at a time (``nextLink`` as the continuation token), each retried alone."""
        pages = vault_pages(
            lambda after: self._client.list_properties_of_certificates().by_page(continuation_token=after),
            self._version,
            lambda call: self._call(call, "list certificates", CERTIFICATES_OFFICER),
        )
        async for page in pages:
            yield page

    # --- writes ----------------------------------------------------------------------------------
    async def create_version(self, certificate: str, *, tags: Mapping[str, str]) -> CertificateVersion:
        """A new version from the certificate's own policy (read first: the SDK sends it with the
        request), tagged from its creation; the poller waits for Key Vault's pending operation."""

        async def call() -> CertificateVersion:
            policy = await self._client.get_certificate_policy(certificate)
            try:
                created: KeyVaultCertificate | CertificateOperation = await self._client.create_certificate(
                    certificate, policy, tags=dict(tags), _polling_interval=CREATE_POLL_SECONDS
                )
            except HttpResponseError as exc:
                if exc.status_code != 409 or "pending" not in str(exc.message or "").lower():
                    raise
                # A create already under way: this call's own, retried after its answer was lost (the
                # caller compares the RotationId it finds), or someone else's. Wait for it, never a second.
                created = await self._finish_pending(certificate)
            if not isinstance(created, KeyVaultCertificate):
                raise KeyVaultError(
                    f"Key Vault did not issue the new version of certificate '{certificate}' "
                    f"(operation status: {getattr(created, 'status', None)!r}).",
                    "Check the certificate's policy and issuer in the vault; a Self issuer completes at once.",
                )
            return self._certificate(created)

        # Retried after a lost answer: Key Vault then refuses a second create while the first is pending
        # (409), and the call waits for that one instead. A version created after the caller gave up
        # carries this rotation's RotationId, and the next run adds its key.
        return await self._call(call, f"create a version of certificate '{certificate}'", CERTIFICATES_OFFICER)

    async def _finish_pending(self, certificate: str) -> KeyVaultCertificate | CertificateOperation:
        """Wait (at most :data:`PENDING_WAIT_SECONDS`) for the pending operation; its certificate."""
        waited = 0.0
        while True:
            operation = await self._client.get_certificate_operation(certificate)
            if operation.status != "inProgress" or waited >= PENDING_WAIT_SECONDS:
                break
            await asyncio.sleep(CREATE_POLL_SECONDS)
            waited += CREATE_POLL_SECONDS
        if operation.status != "completed":
            return operation
        return await self._client.get_certificate(certificate)

    async def update_certificate(
        self, certificate: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> CertificateVersion:
        async def call() -> CertificateVersion:
            updated = await self._client.update_certificate_properties(
                certificate, version, tags=dict(tags) if tags is not None else None, enabled=enabled
            )
            return self._certificate(updated)

        what = f"update version {version} of certificate '{certificate}'"
        return await self._call(call, what, CERTIFICATES_OFFICER)

    async def sign(self, certificate: str, version: str, digest: bytes) -> bytes:
        """RS256 in Key Vault with ``keys/{certificate}/{version}``; the digest is not secret, the
        signature becomes part of a credential (the caller wraps it)."""

        async def call() -> bytes:
            key_id = f"{self.url}/keys/{certificate}/{version}"
            crypto = self._signers.get(key_id)
            if crypto is None:
                crypto = self._signers[key_id] = CryptographyClient(key_id, self._credential, **self._client_options())
            result = await crypto.sign(SignatureAlgorithm.rs256, digest)
            return bytes(result.signature)

        return await self._call(call, f"sign with the key of certificate '{certificate}'", CRYPTO_USER)

    # --- plumbing --------------------------------------------------------------------------------
    def _certificate(self, certificate: KeyVaultCertificate) -> CertificateVersion:
        version = self._version(certificate.properties)
        cer = bytes(certificate.cer) if certificate.cer else None
        return CertificateVersion(version.properties, version.thumbprint, cer)

    def _version(self, properties: CertificateProperties | None) -> CertificateVersion:
        if properties is None:
            raise KeyVaultError("Key Vault answered a certificate without its properties.")
        attributes = SecretVersion(
            vault=self.name,
            name=properties.name or "",
            version=properties.version,
            enabled=bool(properties.enabled),
            created=properties.created_on,
            updated=properties.updated_on,
            not_before=properties.not_before,
            expires=properties.expires_on,
            tags=dict(properties.tags or {}),
        )
        return CertificateVersion(attributes, normal_thumbprint(properties.x509_thumbprint))

    @property
    def gate_key(self) -> str:
        return f"{SERVICE} {self.name}"

    async def _call(self, operation: Callable[[], Awaitable[T]], what: str, role: str) -> T:
        return await call_vault(
            operation,
            what,
            translate=lambda exc: self._translate(exc, what, role),
            budget_seconds=self._budget,
            gate_key=self.gate_key,
        )

    def _translate(self, exc: HttpResponseError, what: str, role: str) -> Exception:
        common = common_refusal(exc, self.name, what)
        if common is not None:
            return common
        status = exc.status_code or 0
        code = exc.error.code if exc.error is not None else None
        if status == 403:
            return PermissionDeniedError(SERVICE, role.format(vault=self.name), action=what)
        return KeyVaultError(
            f"Key Vault '{self.name}' refused to {what}: HTTP {status} {code or ''}".rstrip() + ".",
            "Check the certificate, its policy and the vault's configuration.",
        )
