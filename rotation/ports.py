"""What the reconciler needs from the outside world, as small async Protocols.

The adapters implement these over msgraph-sdk, azure-keyvault-secrets (aio), azure-identity and a
blob lease; tests drive the same adapters against the local cloud. Conventions for every port:

- "Not there" is a return value (``None``/``False``), never an exception: the reconciler treats
  an already-done step as done.
- Throttling (429, ``Directory_ConcurrencyViolation``) is retried inside the adapter within
  ``ROTATION_THROTTLE_RETRY_SECONDS`` and then raised as ``ThrottledError``.
- A missing permission of the rotator's own identity is raised as ``PermissionDeniedError``
  naming what to grant.
- No secret value appears in an exception or log line; values travel as ``Sensitive``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol

from rotation.errors import LockHeld
from rotation.model import (
    Application,
    NewPassword,
    PasswordPolicy,
    ProbeResult,
    SecretValue,
    SecretVersion,
    Sensitive,
)

__all__ = [
    "Clock",
    "Directory",
    "Lock",
    "LockHeld",
    "NewPassword",
    "PasswordPolicy",
    "ProbeResult",
    "SecretValue",
    "SystemClock",
    "TokenProbe",
    "Vault",
]


class Directory(Protocol):
    """Microsoft Graph, as far as app registrations and their passwords go."""

    async def get_application_by_app_id(self, app_id: str, tenant_id: str | None) -> Application | None:
        """The app registration with this client id, with its password credentials (no values);
        ``None`` when it does not exist or the rotator cannot see it."""
        ...

    async def add_password(self, object_id: str, display_name: str, start: datetime, end: datetime) -> NewPassword:
        """``addPassword``: the new credential and its value, which Graph returns only this once.

        Raises ``PolicyBlockedError`` when an app management policy forbids it.
        """
        ...

    async def remove_password(self, object_id: str, key_id: str) -> bool:
        """``removePassword``; ``False`` when the credential was already gone (that counts as done)."""
        ...

    async def password_policy(self, object_id: str) -> PasswordPolicy:
        """Whether app management policy blocks adding passwords to this app, and the maximum
        lifetime it allows (``None``: no limit)."""
        ...


class Vault(Protocol):
    """One Key Vault (the adapters build one per entry of ``ROTATION_VAULTS``)."""

    async def get_latest(self, name: str) -> SecretValue | None:
        """The latest version and its value; ``None`` if the secret does not exist."""
        ...

    async def get_version(self, name: str, version: str) -> SecretValue | None:
        """A specific version and its value; ``None`` if it does not exist or is disabled."""
        ...

    async def set_secret(
        self,
        name: str,
        value: Sensitive,
        *,
        tags: Mapping[str, str],
        content_type: str | None,
        not_before: datetime | None,
        expires: datetime | None,
    ) -> SecretVersion:
        """Write a new version (``PUT``); returns it without its value."""
        ...

    async def update_tags(self, name: str, version: str, tags: Mapping[str, str]) -> SecretVersion:
        """Replace the tags of one version (``PATCH``)."""
        ...

    async def disable_version(self, name: str, version: str) -> None:
        """Disable one version; disabling an already disabled version is fine."""
        ...

    def list_secrets(self) -> AsyncIterator[SecretVersion]:
        """Every secret with its latest version's attributes and tags (``version`` is ``None``)."""
        ...

    def list_versions(self, name: str) -> AsyncIterator[SecretVersion]:
        """Every version of one secret, without values, in no particular order."""
        ...


class TokenProbe(Protocol):
    """Asks Entra for a client-credentials token with a secret, to prove the secret works."""

    async def probe(self, tenant_id: str, app_id: str, secret: Sensitive) -> ProbeResult:
        """One attempt, never cached and never raising for an authentication failure: Entra's
        refusal comes back as ``ProbeResult(ok=False, code=<AADSTS code>)``."""
        ...


class Lock(Protocol):
    """Mutual exclusion per ``vault/secret`` across workers (a blob lease in Azure)."""

    def acquire(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the lock for ``key`` for the ``async with`` block; raise :class:`LockHeld` at once
        (without waiting) when another worker holds it."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)
