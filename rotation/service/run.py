"""The context of one reconcile: what it has observed (immutable), what it has done (a report that
only grows), and the ports it acts through.

Each step of :mod:`rotation.service.steps` takes the :class:`Observed` world and returns the copy that
describes it after the step's own writes; nothing else carries state from one step to the next. What
one step tells the next is explicit in its return value (:class:`Settled` for a validation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import Enum
from typing import Any, ClassVar, TypeVar

from rotation.domain.errors import LockLostError, RotationError
from rotation.domain.model import (
    Action,
    Application,
    Binding,
    Outcome,
    PasswordCredential,
    ReconcileRequest,
    SecretVersion,
    Sensitive,
)
from rotation.domain.state import ManagedSecret
from rotation.observability import event
from rotation.service.ports import Clock, Directory, HeldLock, TokenProbe, Vault
from rotation.settings import SecretPolicy, Settings

#: Which action an outcome names when a run did several: the most significant one.
SIGNIFICANCE = (
    Action.ROLLED_BACK,
    Action.ROTATED,
    Action.VALIDATED,
    Action.RETIRED,
    Action.ADOPTED,
    Action.CLEANED,
)


@dataclass(frozen=True)
class Observed:
    """The secret and its app as far as this run knows them.

    ``latest`` and ``value`` are the latest Key Vault version and its value (a rotation replaces
    them with the version it wrote); ``state`` is the rotation state as recorded (or about to be, see
    each step); ``app`` is the app with its password credentials, kept up to date with this run's own
    adds and removes so that no step needs to read it again.
    """

    latest: SecretVersion
    value: Sensitive
    state: ManagedSecret
    app: Application
    policy: SecretPolicy
    tenant_id: str
    #: The app's binding of this secret (its owners' consent); observe refuses a secret without one.
    binding: Binding
    #: The stored value is one of the app's keyIds (the AADSTS7000215 mistake): only a rotation helps.
    holds_secret_id: bool = False
    #: The CredentialId tag names a credential the app no longer has (deleted in Entra): rotate now.
    credential_gone: bool = False

    def with_state(self, state: ManagedSecret) -> Observed:
        return replace(self, state=state)

    def with_latest(self, latest: SecretVersion, value: Sensitive) -> Observed:
        return replace(self, latest=latest, value=value)

    def with_app_credentials(self, credentials: tuple[PasswordCredential, ...]) -> Observed:
        return replace(self, app=replace(self.app, password_credentials=credentials))

    def without_credential(self, key_id: str) -> Observed:
        wanted = key_id.lower()
        return self.with_app_credentials(tuple(c for c in self.app.password_credentials if c.key_id.lower() != wanted))

    def with_credential(self, credential: PasswordCredential) -> Observed:
        return self.with_app_credentials((*self.app.password_credentials, credential))


class Settled(Enum):
    """How a validation (pending or just started) ended, for the rotation step that follows."""

    NOTHING_PENDING = "nothing pending"
    PROVEN = "proven"  # the new value works and is active: no second rotation in this run
    REPLACE = "replace"  # nothing works and nothing can be restored: rotate afresh now


@dataclass
class Report:
    """What the run has done so far; it only grows, and becomes the :class:`Outcome`.

    ``state`` is the rotation state as last recorded (read, or written by this run): the outcome
    reports it even when a later step fails.
    """

    state: ManagedSecret | None = None
    actions: list[Action] = field(default_factory=list)
    created_key_id: str | None = None
    vault_version: str | None = None
    retired: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    attempts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def did(self, action: Action) -> None:
        self.actions.append(action)

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)

    def add_time(self, what: str, seconds: float) -> None:
        self.timings[what] = self.timings.get(what, 0.0) + seconds

    def outcome(
        self,
        request: ReconcileRequest,
        *,
        error: RotationError | None = None,
        requeue_after: timedelta | None = None,
    ) -> Outcome:
        action = next((a for a in SIGNIFICANCE if a in self.actions), Action.NONE)
        return Outcome(
            operation_id=request.operation_id,
            vault=request.vault,
            secret=request.secret,
            action=action,
            state=self.state.state if self.state else None,
            created_key_id=self.created_key_id,
            vault_version=self.vault_version,
            retired_key_ids=tuple(self.retired),
            removed_orphans=tuple(self.orphans),
            validation_attempts=self.attempts,
            timings=self.timings,
            warnings=tuple(self.warnings),
            error=error,
            requeue_after=requeue_after,
        )


class RunScope:
    """What every reconcile run (a secret's `Run`, a certificate's `CertificateRun`) does the same way
    with its request: its names, its log dimensions and events, and the lock check before a write.
    The runs are dataclasses that carry these fields."""

    request: ReconcileRequest
    settings: Settings
    held: HeldLock | None
    dry_run: bool
    report: Report
    #: Dimensions of the run's kind, logged after ``secret`` (the secret flow adds none).
    KIND_DIMS: ClassVar[dict[str, str]] = {}

    @property
    def name(self) -> str:
        return self.request.secret

    @property
    def host(self) -> str:
        """The vault's host: what bindings and records of intent name (never the alias)."""
        return self.settings.vault_host(self.request.vault)

    def dims(self) -> dict[str, Any]:
        return {
            "operationId": self.request.operation_id,
            "vault": self.request.vault,
            "secret": self.request.secret,
            **self.KIND_DIMS,
            "mode": self.request.mode,
        }

    def event(self, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
        event(name, level=level, **fields, **self.dims())

    def check_lock(self) -> None:
        """Called before every write: a run whose lock was lost stops before it writes again."""
        if self.held is not None and self.held.lost:
            raise LockLostError(
                f"The lock on {self.request.lock_key} was lost; stopping before the next write.",
                "Another worker may now hold it; the next reconcile continues from the recorded state.",
            )


S = TypeVar("S")


async def remove_found_orphans(
    run: RunScope,
    seen: S,
    found: Iterable[PasswordCredential],
    remove: Callable[[S, str], Awaitable[tuple[S, bool]]],
    noun: str,
) -> S:
    """Remove each orphan ``found`` (a password or a key, ``noun``) with ``remove``, and report it; a
    dry run only says what it would remove. Marks the run `CLEANED` when anything was removed."""
    for orphan in found:
        if run.dry_run:
            run.report.warn(f"would remove orphaned rotator {noun} {orphan.key_id}")
            continue
        seen, _ = await remove(seen, orphan.key_id)
        run.report.orphans.append(orphan.key_id)
        run.event("OrphanRemoved", keyId=orphan.key_id, displayName=orphan.display_name)
    if run.report.orphans:
        run.report.did(Action.CLEANED)
    return seen


@dataclass(frozen=True)
class Run(RunScope):
    """One reconcile of one secret: the request, the ports, and the report it fills."""

    request: ReconcileRequest
    vault: Vault
    directory: Directory
    probe: TokenProbe
    settings: Settings
    clock: Clock
    sleep: Callable[[float], Awaitable[None]]
    timer: Callable[[], float] = time.monotonic
    dry_run: bool = False
    held: HeldLock | None = None
    report: Report = field(default_factory=Report)

    @property
    def legacy_alias(self) -> str | None:
        return self.settings.legacy_alias(self.request.vault)

    def created_here(self, credential: PasswordCredential) -> bool:
        """Whether the rotator created ``credential`` for this vault host and secret (its record of intent)."""
        return credential.created_by_rotator_for(self.host, self.name, legacy_alias=self.legacy_alias)

    async def write_state(self, seen: Observed, version: SecretVersion, state: ManagedSecret) -> Observed:
        """Write ``state`` into ``version``'s tags (stopping first if the lock was lost) and record it:
        how a step that writes no new version records what it did."""
        assert version.version is not None
        self.check_lock()
        await self.vault.update(self.name, version.version, tags=state.to_tags(version.tags))
        return self.record(seen, state)

    def record(self, seen: Observed, state: ManagedSecret) -> Observed:
        """``seen`` with ``state``, which the caller has just written to (or decided for) Key Vault."""
        self.report.state = state
        return seen.with_state(state)

    async def remove_password(self, seen: Observed, key_id: str, *, adopted: bool = False) -> tuple[Observed, bool]:
        """``removePassword`` (``False``: it was gone already, or the removal was refused) and the world
        without the credential.

        Nothing forged can widen a deletion: the app is re-read immediately before, and the credential
        is removed only if the app still binds this secret, its record of intent is unchanged since this
        run saw it, and it is one the rotator created for this vault host and secret, or (``adopted``,
        which the caller has verified) this secret's one adopted credential.
        """
        on = seen.app.credential_object
        fresh = await self.directory.get_application(seen.state.app_id, on=on)
        current = fresh.credential(key_id)
        if current is not None:
            before = seen.app.credential(key_id)
            changed = before is not None and before.display_name != current.display_name
            bound = fresh.binding_for(self.host, self.name) is not None
            allowed = self.created_here(current) or adopted
            if changed or not bound or not allowed:
                why = (
                    "its display name changed since this run read it"
                    if changed
                    else "the app no longer binds this secret"
                    if not bound
                    else "the rotator did not create it for this vault host and secret and it is not this "
                    "secret's adopted credential"
                )
                self.report.warn(f"refused to remove credential {key_id}: {why}")
                self.event("RemovalRefused", keyId=key_id, reason=why, level=logging.WARNING)
                return seen.with_app_credentials(fresh.password_credentials), False
        self.check_lock()
        removed = await self.directory.remove_password(seen.app.object_id, key_id, app_id=seen.state.app_id, on=on)
        # The world as the fresh read showed it (a person's or another run's new credentials included).
        return seen.with_app_credentials(fresh.password_credentials).without_credential(key_id), removed
