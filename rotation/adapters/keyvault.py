"""Key Vault secrets through the aio `SecretClient`, one client per vault.

Values cross this boundary only as `Sensitive`; what comes back to the reconciler is attributes and
tags (`SecretVersion`). Failures are translated once, here: 404 → "absent", 403 → a
`PermissionDeniedError` naming the Key Vault role, 429/5xx/transport → retried (see `retrying`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.keyvault.secrets import SecretProperties
from azure.keyvault.secrets.aio import SecretClient

from rotation.adapters.keyvault_calls import SERVICE as SERVICE  # re-exported: callers name the gate by it
from rotation.adapters.keyvault_calls import call_vault, common_refusal, vault_pages
from rotation.adapters.retrying import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
)
from rotation.domain.errors import (
    KeyVaultError,
    NoValueError,
    PermissionDeniedError,
    SecretDisabledError,
    SecretSoftDeletedError,
)
from rotation.domain.listing import DeletedSecretInfo
from rotation.domain.model import SecretValue, SecretVersion, Sensitive
from rotation.settings import is_loopback

T = TypeVar("T")

OFFICER = "the 'Key Vault Secrets Officer' role on vault '{vault}' (scope: the vault)"


class KeyVaultSecrets:
    """The `Vault` and `SecretRecords` ports for one vault (`VaultPort`)."""

    def __init__(
        self,
        name: str,
        url: str,
        credential: AsyncTokenCredential,
        *,
        retry_budget_seconds: float = 120.0,
    ) -> None:
        self.name = name
        self.url = url
        self._budget = retry_budget_seconds
        self._client = SecretClient(
            url,
            credential,
            # The SDK refuses a challenge whose resource is not a parent domain of the vault host;
            # a loopback vault can never satisfy that, a real one always does.
            verify_challenge_resource=not is_loopback(url),
            # Retries happen in `with_retries`, where they are counted and capped; not twice.
            retry_total=0,
            # Not azure-core's 300 s: a hung request fails in time for `with_retries` to retry it.
            connection_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> KeyVaultSecrets:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- reads -----------------------------------------------------------------------------------
    async def get(self, secret: str, version: str | None = None) -> SecretValue | None:
        """The latest (or the given) version with its value; None when the secret does not exist."""

        async def call() -> SecretValue | None:
            try:
                bundle = await self._client.get_secret(secret, version)
            except ResourceNotFoundError:
                return None
            if bundle.value is None:
                raise NoValueError(f"Key Vault returned no value for secret '{secret}'.")
            return SecretValue(self._version(bundle.properties), Sensitive(bundle.value))

        return await self._call(call, f"read secret '{secret}'", action="get", secret=secret)

    async def list_secrets(self) -> list[SecretVersion]:
        """Every secret's latest attributes and tags: one list call per 25 secrets, no values."""
        return [version async for page in self.secret_pages() for version in page]

    async def secret_pages(self) -> AsyncIterator[list[SecretVersion]]:
        """One list call's page at a time (``nextLink`` as the continuation token), each page retried
        on its own: a transient failure at page 300 resumes there instead of listing from the start."""
        pages = vault_pages(
            lambda after: self._client.list_properties_of_secrets().by_page(continuation_token=after),
            self._version,
            lambda call: self._call(call, "list secrets", action="list"),
        )
        async for page in pages:
            yield page

    async def list_versions(self, secret: str) -> list[SecretVersion]:
        async def call() -> list[SecretVersion]:
            return await self._collect(self._client.list_properties_of_secret_versions(secret))

        return await self._call(call, f"list versions of '{secret}'", action="list", secret=secret)

    # --- writes ----------------------------------------------------------------------------------
    async def set(
        self,
        secret: str,
        value: Sensitive,
        *,
        tags: Mapping[str, str],
        content_type: str | None,
        not_before: datetime | None,
        expires: datetime | None,
    ) -> SecretVersion:
        async def call() -> SecretVersion:
            bundle = await self._client.set_secret(
                secret,
                value.reveal(),
                tags=dict(tags),
                content_type=content_type,
                not_before=not_before,
                expires_on=expires,
            )
            return self._version(bundle.properties)

        return await self._call(call, f"write a new version of '{secret}'", action="set", secret=secret)

    async def update(
        self,
        secret: str,
        version: str,
        *,
        tags: Mapping[str, str] | None = None,
        enabled: bool | None = None,
    ) -> SecretVersion:
        """Change a version's tags and/or enabled flag (never its value)."""

        async def call() -> SecretVersion:
            properties = await self._client.update_secret_properties(
                secret, version, tags=dict(tags) if tags is not None else None, enabled=enabled
            )
            return self._version(properties)

        return await self._call(call, f"update version {version} of '{secret}'", action="set", secret=secret)

    # --- plumbing --------------------------------------------------------------------------------
    async def _collect(self, pager: AsyncIterable[SecretProperties]) -> list[SecretVersion]:
        return [self._version(item) async for item in pager]

    def _version(self, properties: SecretProperties) -> SecretVersion:
        return SecretVersion(
            vault=self.name,
            name=properties.name or "",
            version=properties.version,
            enabled=bool(properties.enabled),
            created=properties.created_on,
            updated=properties.updated_on,
            not_before=properties.not_before,
            expires=properties.expires_on,
            content_type=properties.content_type,
            tags=dict(properties.tags or {}),
            backs_certificate=bool(properties.managed),
        )

    async def _call(
        self, operation: Callable[[], Awaitable[T]], what: str, *, action: str, secret: str | None = None
    ) -> T:
        return await call_vault(
            operation,
            what,
            translate=lambda exc: self._translate(exc, what, action, secret),
            budget_seconds=self._budget,
            gate_key=self.gate_key,
        )

    @property
    def gate_key(self) -> str:
        """Key Vault's limits are per vault: one vault's 429 paces the calls to that vault only."""
        return f"{SERVICE} {self.name}"

    def _translate(self, exc: HttpResponseError, what: str, action: str, secret: str | None) -> Exception:
        common = common_refusal(exc, self.name, what)
        if common is not None:
            return common
        status = exc.status_code or 0
        code = exc.error.code if exc.error is not None else None
        text = str(exc.message or "")
        if status == 403 and "disabled" in text.lower():
            return SecretDisabledError(
                f"The version of secret '{secret}' that the rotator needs is disabled in vault '{self.name}'.",
                "Enable it (or write a working value as a new version) and run again.",
            )
        if status == 403:
            return PermissionDeniedError(SERVICE, OFFICER.format(vault=self.name), action=what)
        if status == 409 and "deleted" in text.lower():
            return SecretSoftDeletedError(
                f"Secret '{secret}' in vault '{self.name}' is deleted but recoverable; its name cannot be reused.",
                f"Recover it (az keyvault secret recover --vault-name {self.name} --name {secret}) or purge it.",
            )
        host = urlsplit(self.url).hostname
        return KeyVaultError(
            f"Key Vault '{self.name}' ({host}) refused to {what}: HTTP {status} {code or ''}".rstrip() + ".",
            "Check the request and the vault's configuration.",
        )

    # --- the `SecretRecords` port: value-free reads for `diagnose` and the status routes ---------
    async def get_deleted(self, secret: str) -> DeletedSecretInfo | None:
        """The soft-deleted secret's dates, or None when no deleted secret has this name.

        A soft-deleted secret reads as "not found" everywhere else, so this is the only way to tell
        "deleted, recoverable" (recover or purge) from "never existed" (create it).
        """

        async def call() -> DeletedSecretInfo | None:
            try:
                deleted = await self._client.get_deleted_secret(secret)
            except ResourceNotFoundError:
                return None
            return DeletedSecretInfo(
                vault=self.name,
                name=deleted.name or secret,
                deleted=deleted.deleted_date,
                scheduled_purge=deleted.scheduled_purge_date,
                recovery_id=deleted.recovery_id,
            )

        return await self._call(call, f"read deleted secret '{secret}'", action="list", secret=secret)

    async def get_properties(self, secret: str) -> SecretVersion | None:
        """The latest version's attributes and tags without its value, even when it is disabled.

        Key Vault has no value-free read of one secret and answers a disabled latest version with 403,
        so this lists the versions (no values) and takes the newest; None when there are none.
        """
        versions = await self.list_versions(secret)
        if not versions:
            return None
        return max(versions, key=_creation_order)


def _creation_order(version: SecretVersion) -> tuple[float, float]:
    created = version.created.timestamp() if version.created else 0.0
    updated = version.updated.timestamp() if version.updated else 0.0
    return created, updated
