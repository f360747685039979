"""What the rotator needs from the outside world, as small async Protocols.

Two kinds, kept apart so that each caller depends on no more than it uses:

- the reconciler's ports, `Directory`, `Vault`, `TokenProbe` and `Lock`: everything a rotation
  does; the unit tests' in-memory fakes implement exactly these;
- the read-only extras that only the tools (`diagnose`, `inventory`, the expiry notices) and the
  function app's status routes call, `ApplicationCatalog` and `SecretRecords`, plus `Closable` for whoever owns
  the clients. `GraphPort`, `VaultPort` and `ReleasableLock` are the unions the wiring
  (`rotation.runtime`) hands out, so no caller needs an adapter's concrete type.

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

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from rotation.domain.errors import LockHeld
from rotation.domain.listing import (
    ApplicationOwner,
    DeletedSecretInfo,
    FederatedCredential,
    ListedApplication,
    ListedServicePrincipal,
)
from rotation.domain.model import (
    APPLICATION,
    Application,
    CredentialObject,
    NewPassword,
    PasswordPolicy,
    ProbeResult,
    SecretValue,
    SecretVersion,
    Sensitive,
)
from rotation.domain.sign_in_report import SignInReport

__all__ = [
    "ApplicationCatalog",
    "Clock",
    "Closable",
    "Directory",
    "GraphPort",
    "HeldLock",
    "InProcessLock",
    "Lock",
    "LockHeld",
    "NewPassword",
    "PasswordPolicy",
    "ProbeResult",
    "ReleasableLock",
    "SecretRecords",
    "SecretValue",
    "SystemClock",
    "TokenProbe",
    "Vault",
    "VaultPort",
]


class Directory(Protocol):
    """Microsoft Graph, as far as app registrations, their service principals and their passwords go
    (`GraphDirectory`).

    ``on`` names the object that holds the passwords: ``application`` (the default: the app
    registration) or ``servicePrincipal`` (the app's service principal; ``object_id`` is then the
    service principal's id, as the `Application` read with ``on="servicePrincipal"`` carries it).
    """

    async def get_application(self, app_id: str, *, on: CredentialObject = APPLICATION) -> Application:
        """The app (or its service principal) with its password credentials (no values) and tags;
        raises when it is not found."""
        ...

    async def add_password(
        self,
        object_id: str,
        display_name: str,
        start: datetime,
        end: datetime,
        *,
        app_id: str = "",
        on: CredentialObject = APPLICATION,
    ) -> NewPassword:
        """``addPassword``: the new credential and its value, which is never seen again."""
        ...

    async def remove_password(
        self, object_id: str, key_id: str, *, app_id: str = "", on: CredentialObject = APPLICATION
    ) -> bool:
        """``removePassword``; ``False`` when the credential was already gone."""
        ...

    async def password_policy(
        self, object_id: str, created: datetime | None = None, *, on: CredentialObject = APPLICATION
    ) -> PasswordPolicy | None:
        """The app management policy's password rules, or ``None`` when the rotator may not read it."""
        ...

    async def credential_sign_ins(self, app_id: str) -> dict[str, datetime | None] | None:
        """The last sign-in (day-granular, at least a day late) of each of the app's credentials that
        the report lists, by lower-case keyId (Graph's beta ``appCredentialSignInActivities``);
        ``None`` when Graph will not show the report (no ``AuditLog.Read.All``, or no P1/P2 licence)."""
        ...

    async def set_application_tags(
        self, object_id: str, tags: Sequence[str], *, app_id: str = "", on: CredentialObject = APPLICATION
    ) -> None:
        """Replace the app's (or its service principal's) ``tags`` (``PATCH /applications/{id}``,
        ``PATCH /servicePrincipals/{id}``): how ``adopt`` writes a binding, with the caller's own
        credential. ``PermissionDeniedError`` when the caller is neither an owner of that object nor an
        admin. The reconciler never calls it."""
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

    def secret_pages(self) -> AsyncIterator[list[SecretVersion]]:
        """The same, one list call's page at a time: a sweep of many secrets holds one page, not all
        of them, and a failure mid-way is retried from that page, not from the first."""
        ...

    async def list_versions(self, secret: str) -> list[SecretVersion]:
        """Every version's attributes and tags."""
        ...


class TokenProbe(Protocol):
    """Asks Entra for a client-credentials token with a secret, to prove the secret works."""

    async def probe(
        self, tenant_id: str, app_id: str, secret: Sensitive, *, within: float | None = None
    ) -> ProbeResult:
        """One attempt, never cached and never raising for an authentication failure: Entra's
        refusal comes back as ``ProbeResult(ok=False, code=<AADSTS code>)``. ``within`` (seconds:
        what is left of the caller's deadline) bounds the attempt; one that runs out is a transient
        failure."""
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


# --------------------------------------------------------------------------------------------------
# Read-only extras: the tools and the function app's status routes, never the reconciler. Separate
# Protocols (not more methods on `Directory`/`Vault`) so that the reconciler's fakes stay small.


class ApplicationCatalog(Protocol):
    """Microsoft Graph reads beyond one app by appId (`GraphDirectory`)."""

    async def list_applications(
        self,
        *,
        page_size: int = 100,
        on_page: Callable[[int], None] | None = None,
        expand_federated: bool = False,
    ) -> list[ListedApplication]:
        """Every application the rotator can read (what "every" means is Graph's decision: the owned
        ones with ``Application.ReadWrite.OwnedBy``), following ``@odata.nextLink``; ``on_page`` is
        told each page's size. ``expand_federated`` reads each app's federated identity credentials
        in the same pages (``$expand``; Graph then pages by 100)."""
        ...

    async def find_application_by_object_id(self, object_id: str) -> Application | None:
        """The app whose *object* id this is, or ``None``: tells "ProviderAddress holds the Object
        ID" apart from "no such app" after a lookup by appId found nothing."""
        ...

    async def list_owners(self, object_id: str) -> tuple[ApplicationOwner, ...] | None:
        """The owners of the app with this *object* id (``GET /applications/{id}/owners``, one
        request per page of 100, following ``@odata.nextLink``); ``None`` when Graph will not show
        them (403, or the app is gone)."""
        ...

    # The inventory's extra reads (issues 13 and 15): credentials beyond the app's passwords and
    # certificates, and what the sign-in report says of each.
    async def list_service_principals(
        self, *, page_size: int = 100, include_without: bool = False
    ) -> list[ListedServicePrincipal]:
        """Every service principal that holds passwords or certificates of its own
        (``GET /servicePrincipals``, paged; the others are dropped as they are read, unless
        ``include_without``: the sweep's check for a service principal's deleted last password)."""
        ...

    async def list_federated_credentials(self, object_id: str) -> tuple[FederatedCredential, ...] | None:
        """The federated identity credentials of the app with this *object* id (one request: an
        app holds at most 20); ``None`` when Graph will not show them (403, or the app is gone).
        The inventory's fallback when Graph refuses ``$expand`` on the listing."""
        ...

    async def sign_in_report(self) -> SignInReport:
        """Graph's credential sign-in activity report for the whole tenant (one listing, paged),
        or why it cannot be read (no AuditLog.Read.All, no P1/P2 licence, a national cloud)."""
        ...


class SecretRecords(Protocol):
    """Value-free reads of one vault's secret that `Vault` has no need for (`KeyVaultSecrets`)."""

    async def get_properties(self, secret: str) -> SecretVersion | None:
        """The latest version's attributes and tags without its value, even when it is disabled;
        ``None`` when the secret has no versions."""
        ...

    async def get_deleted(self, secret: str) -> DeletedSecretInfo | None:
        """The soft-deleted secret of that name, or ``None`` when there is none."""
        ...


class Closable(Protocol):
    """A client that holds connections until closed; the wiring closes what it opened."""

    async def close(self) -> None: ...


class GraphPort(Directory, ApplicationCatalog, Closable, Protocol):
    """Microsoft Graph as the wiring hands it out: the reconciler's `Directory` plus the reads."""


class VaultPort(Vault, SecretRecords, Closable, Protocol):
    """One Key Vault as the wiring hands it out: the reconciler's `Vault` plus the reads."""


class ReleasableLock(Lock, Closable, Protocol):
    """A `Lock` over a storage client that the worker closes after its reconcile."""


# --------------------------------------------------------------------------------------------------


class RequestQueue(Protocol):
    """The queue of reconcile requests (``rotation-requests``), for a worker that re-enqueues one."""

    async def send(self, message: str, *, visibility_timeout: int) -> None:
        """Put ``message`` on the queue, invisible for ``visibility_timeout`` seconds."""
        ...

    async def close(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class InProcessLock:
    """Non-blocking per-key locks within one process: the command line's `Lock`, where one process
    is the only worker. Like `SystemClock` it is the trivial implementation, so it lives with its port."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[HeldLock]:
        if key in self._held:
            raise LockHeld(key)
        self._held.add(key)
        try:
            yield HeldLock(key)
        finally:
            self._held.discard(key)
