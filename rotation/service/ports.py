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

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from rotation.domain.errors import LockHeld
from rotation.domain.model import (
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
    "HeldLock",
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
    """Microsoft Graph, as far as app registrations and their passwords go (`GraphDirectory`)."""

    async def get_application(self, app_id: str) -> Application:
        """The app with its password credentials (no values); raises when it is not found."""
        ...

    async def add_password(
        self, object_id: str, display_name: str, start: datetime, end: datetime, *, app_id: str = ""
    ) -> NewPassword:
        """``addPassword``: the new credential and its value, which is never seen again."""
        ...

    async def remove_password(self, object_id: str, key_id: str, *, app_id: str = "") -> bool:
        """``removePassword``; ``False`` when the credential was already gone."""
        ...

    async def password_policy(self, object_id: str, created: datetime | None = None) -> PasswordPolicy | None:
        """The app management policy's password rules, or ``None`` when the rotator may not read it."""
        ...


class Vault(Protocol):
    """One Key Vault's secrets (`KeyVaultSecrets`). Values only ever travel as ``Sensitive``."""

    name: str

    async def get(self, secret: str, version: str | None = None) -> SecretValue | None:
        """The latest (or given) version with its value; ``None`` when the secret does not exist."""
        ...

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
        """Write a new version."""
        ...

    async def update(
        self, secret: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> SecretVersion:
        """Change a version's tags and/or enabled flag (never its value)."""
        ...

    async def list_secrets(self) -> list[SecretVersion]:
        """Every secret's latest attributes and tags (one list call per 25 secrets)."""
        ...

    async def list_versions(self, secret: str) -> list[SecretVersion]:
        """Every version's attributes and tags."""
        ...


class TokenProbe(Protocol):
    """Asks Entra for a client-credentials token with a secret, to prove the secret works."""

    async def probe(self, tenant_id: str, app_id: str, secret: Sensitive) -> ProbeResult:
        """One attempt, never cached and never raising for an authentication failure: Entra's
        refusal comes back as ``ProbeResult(ok=False, code=<AADSTS code>)``."""
        ...


@dataclass
class HeldLock:
    """A lock being held. ``lost`` turns true if it could not be kept (a lease renewal failed); the
    reconciler checks it before every write and stops."""

    key: str
    lost: bool = False
    renewals: int = 0


class Lock(Protocol):
    """Mutual exclusion per ``vault/secret`` across workers (a blob lease in Azure)."""

    def hold(self, key: str) -> AbstractAsyncContextManager[HeldLock]:
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
