"""The rotation state machine: one idempotent step at a time, from observed state.

`Reconciler.reconcile(request)` reads the secret's latest version and the app's credentials, then, in
order: removes this secret's orphaned rotator credentials, finishes a pending validation (or rolls it
back), retires an old credential whose time has come, and rotates when due or forced. Every step first
checks whether its work is done already, so a crash at any point, a duplicate request or a second
worker converges to the same end state. The working secret is never lost: the old credential stays
valid until the new value has been proven, and a definitive failure restores the last working value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_never
from tenacity.wait import wait_random_exponential

from rotation.domain import policy
from rotation.domain.errors import (
    GuardError,
    LockLostError,
    NotManagedError,
    PasswordLifetimePolicyError,
    PasswordLimitError,
    PolicyBlockedError,
    RotationError,
    SecretNotFoundError,
    UnknownVaultError,
    ValidationFailedError,
)
from rotation.domain.model import (
    Action,
    Application,
    ManagedSecret,
    Outcome,
    PasswordCredential,
    ProbeResult,
    ReconcileRequest,
    RotationState,
    SecretValue,
    SecretVersion,
    Sensitive,
    Tag,
    new_rotation_id,
    rotator_display_name,
)
from rotation.observability import event
from rotation.service.ports import Clock, Directory, HeldLock, TokenProbe, Vault
from rotation.settings import SecretPolicy, Settings

CONTENT_TYPE = "Entra ID client secret value (managed by the rotator; app {app_id})"


@dataclass
class _Run:
    """What one reconcile has observed and done so far (mutable; becomes an `Outcome`)."""

    request: ReconcileRequest
    vault: Vault
    dry_run: bool
    held: HeldLock | None
    current: SecretValue | None = None
    managed: ManagedSecret | None = None
    policy: SecretPolicy | None = None
    tenant_id: str = ""
    app: Application | None = None
    actions: list[Action] = field(default_factory=list)
    created_key_id: str | None = None
    vault_version: str | None = None
    retired: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    attempts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    validated_now: bool = False
    force_rotation: bool = False  # the recorded state cannot be repaired, only replaced
    holds_secret_id: bool = False  # the stored value is one of the app's keyIds (seen at load)

    @property
    def name(self) -> str:
        return self.request.secret

    @property
    def latest(self) -> SecretVersion:
        assert self.current is not None
        return self.current.version

    @property
    def state(self) -> ManagedSecret:
        assert self.managed is not None
        return self.managed

    @property
    def application(self) -> Application:
        assert self.app is not None
        return self.app

    def dims(self) -> dict[str, Any]:
        return {
            "operationId": self.request.operation_id,
            "vault": self.request.vault,
            "secret": self.request.secret,
            "mode": self.request.mode,
        }


@dataclass
class Reconciler:
    settings: Settings
    directory: Directory
    vaults: Mapping[str, Vault]
    probe: TokenProbe
    clock: Clock
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    # ------------------------------------------------------------------------------------------
    async def reconcile(
        self, request: ReconcileRequest, *, dry_run: bool = False, held: HeldLock | None = None
    ) -> Outcome:
        """Bring one secret to its desired state. Never raises for a `RotationError`: the outcome
        carries it (code and message), and the caller decides whether to retry."""
        vault = self.vaults.get(request.vault.lower())
        started = time.monotonic()
        if vault is None:
            error = UnknownVaultError(request.vault, self.vaults)
            return Outcome(request.operation_id, request.vault, request.secret, Action.SKIPPED).with_error(error)
        run = _Run(request=request, vault=vault, dry_run=dry_run, held=held)
        event("ReconcileStarted", reason=request.reason or None, dryRun=dry_run, **run.dims())
        try:
            await self._load(run)
            await self._remove_orphans(run)
            if run.state.failure_reason and not dry_run and run.latest.version:
                # A rollback that died after restoring the old value may have left the failed version
                # enabled; it names a removed credential, so this finds and disables it.
                await self._disable_dead_versions(run, run.latest.version)
            if run.state.state is RotationState.VALIDATING:
                await self._finish_validation(run)
            if run.state.retire_credential_id and (
                policy.retirement_due(run.state.retire_after, self.clock.now()) or request.emergency
            ):
                await self._retire(run)
            await self._rotate_if_due(run)
        except RotationError as error:
            run.timings["total"] = time.monotonic() - started
            outcome = self._outcome(run).with_error(error)
            event("ReconcileFailed", errorCode=error.code, error=error.message, **run.dims(), level=logging.ERROR)
            return outcome
        run.timings["total"] = time.monotonic() - started
        outcome = self._outcome(run)
        event(
            "ReconcileCompleted" if outcome.action is Action.NONE else "RotationCompleted",
            action=outcome.action.value,
            state=outcome.state.value if outcome.state else None,
            createdKeyId=outcome.created_key_id,
            vaultVersion=outcome.vault_version,
            retiredKeyIds=",".join(outcome.retired_key_ids) or None,
            removedOrphans=",".join(outcome.removed_orphans) or None,
            validationAttempts=outcome.validation_attempts or None,
            seconds=round(run.timings["total"], 3),
            **run.dims(),
        )
        return outcome

    def _outcome(self, run: _Run) -> Outcome:
        significance = [
            Action.ROLLED_BACK,
            Action.ROTATED,
            Action.VALIDATED,
            Action.RETIRED,
            Action.ADOPTED,
            Action.CLEANED,
        ]
        action = next((a for a in significance if a in run.actions), Action.NONE)
        return Outcome(
            operation_id=run.request.operation_id,
            vault=run.request.vault,
            secret=run.request.secret,
            action=action,
            state=run.managed.state if run.managed else None,
            created_key_id=run.created_key_id,
            vault_version=run.vault_version,
            retired_key_ids=tuple(run.retired),
            removed_orphans=tuple(run.orphans),
            validation_attempts=run.attempts,
            timings=run.timings,
            warnings=tuple(run.warnings),
        )

    # --- 1. observe -----------------------------------------------------------------------------
    async def _load(self, run: _Run) -> None:
        current = await run.vault.get(run.name)
        if current is None:
            raise SecretNotFoundError(run.request.vault, run.name)
        if not current.version.managed:
            raise NotManagedError(run.request.vault, run.name)
        run.current = current
        run.managed = ManagedSecret.from_version(current.version)
        run.policy = self.settings.policy_for(current.version.tags, run.name, run.request.vault)
        run.warnings.extend(run.policy.warnings)
        run.tenant_id = run.policy.require_tenant(run.request.vault, run.name)
        # The app is read once per run; later steps keep `run.app` up to date themselves.
        run.app = await self.directory.get_application(run.state.app_id)
        stored_key_id = policy.looks_like_key_id(current.value, run.application.password_credentials)
        run.holds_secret_id = stored_key_id is not None
        if stored_key_id:
            run.warnings.append(
                f"the secret holds the Secret ID {stored_key_id} instead of a secret value (the "
                "AADSTS7000215 mistake); a rotation replaces it with a real value"
            )

    def _check_lock(self, run: _Run) -> None:
        if run.held is not None and run.held.lost:
            raise LockLostError(
                f"The lock on {run.request.lock_key} was lost; stopping before the next write.",
                "Another worker may now hold it; the next reconcile continues from the recorded state.",
            )

    def _forget_credential(self, run: _Run, key_id: str) -> None:
        app = run.application
        remaining = tuple(c for c in app.password_credentials if c.key_id.lower() != key_id.lower())
        run.app = Application(
            app.object_id,
            app.app_id,
            app.display_name,
            app.sign_in_audience,
            remaining,
            app.key_credentials_count,
        )

    async def _remove_password(self, run: _Run, key_id: str) -> bool:
        self._check_lock(run)
        removed = await self.directory.remove_password(run.application.object_id, key_id, app_id=run.state.app_id)
        self._forget_credential(run, key_id)
        return removed

    # --- 2. orphans -----------------------------------------------------------------------------
    async def _remove_orphans(self, run: _Run) -> None:
        found = policy.orphans(
            run.application.password_credentials,
            run.request.vault,
            run.name,
            run.state.referenced_key_ids,
            self.clock.now(),
            timedelta(seconds=self.settings.orphan_margin_seconds),
        )
        for credential in found:
            if run.dry_run:
                run.warnings.append(f"would remove orphaned rotator credential {credential.key_id}")
                continue
            await self._remove_password(run, credential.key_id)
            run.orphans.append(credential.key_id)
            event("OrphanRemoved", keyId=credential.key_id, displayName=credential.display_name, **run.dims())
        if run.orphans:
            run.actions.append(Action.CLEANED)

    # --- 3. a validation left pending (by a crash or another worker) ----------------------------
    async def _finish_validation(self, run: _Run) -> None:
        key_id = run.state.credential_id
        assert key_id is not None  # the tags guarantee it for `validating`
        if run.dry_run:
            run.warnings.append(f"would validate credential {key_id} (left in state validating)")
            return
        if run.application.credential(key_id) is None:
            await self._roll_back(run, run.latest, f"credential {key_id} no longer exists in Entra")
            return
        await self._validate_and_activate(run, run.latest, run.current.value if run.current else Sensitive(""))

    async def _validate_and_activate(self, run: _Run, version: SecretVersion, value: Sensitive) -> None:
        started = time.monotonic()
        passed, reason, code = await self._validate(run, value)
        run.timings["validate"] = run.timings.get("validate", 0.0) + time.monotonic() - started
        if not passed:
            await self._roll_back(run, version, reason, aadsts_code=code)
            return
        run.validated_now = True
        run.actions.append(Action.VALIDATED)
        event("ValidationPassed", keyId=run.state.credential_id, attempts=run.attempts, **run.dims())
        await self._activate(run, version)

    async def _validate(self, run: _Run, value: Sensitive) -> tuple[bool, str, int | None]:
        """Ask Entra for a token with `value` until enough consecutive successes, or a verdict."""
        progress = policy.ValidationProgress(
            needed=self.settings.validation_successes,
            deadline_seconds=float(self.settings.validation_deadline_seconds),
        )
        started = time.monotonic()
        backoff = wait_random_exponential(multiplier=1, max=15)

        async def attempt() -> policy.ValidationProgress:
            nonlocal progress
            self._check_lock(run)
            result: ProbeResult = await self.probe.probe(run.tenant_id, run.state.app_id, value)
            run.attempts += 1
            progress = progress.after(result, time.monotonic() - started)
            return progress

        def wait(state: RetryCallState) -> float:
            # After a success, a short pause lets the next request reach another replica; after a
            # failure, exponential back-off with jitter. Never sleep past the deadline.
            delay = 1.0 if progress.streak else float(backoff(state))
            remaining = self.settings.validation_deadline_seconds - (time.monotonic() - started)
            return max(0.0, min(delay, remaining))

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda p: p.verdict is policy.Verdict.CONTINUE),
            wait=wait,
            stop=stop_never,  # the deadline lives in ValidationProgress
            sleep=self.sleep,
            reraise=True,
        )
        final: policy.ValidationProgress = await retrying(attempt)
        return final.verdict is policy.Verdict.PASSED, final.reason, final.last_code

    async def _activate(self, run: _Run, version: SecretVersion) -> None:
        """The new value is proven: mark it active; retire the old credential now or after the grace.

        The tag write comes last: until it lands the version still says `validating` (or names the
        credential to retire), so a crash anywhere before it makes the next run redo the whole step.
        """
        assert run.policy is not None and version.version is not None
        retire_at = policy.retire_after(self.clock.now(), run.policy.grace_hours, run.request.emergency)
        state = run.state.evolve(state=RotationState.ACTIVE, failure_reason=None)
        if retire_at is None:
            if state.retire_credential_id:
                await self._retire_credential(run, state.retire_credential_id)
            state = state.evolve(retire_credential_id=None, retire_after=None)
            await self._disable_dead_versions(run, version.version)
        elif state.retire_credential_id:
            state = state.evolve(retire_after=retire_at)
        self._check_lock(run)
        await run.vault.update(run.name, version.version, tags=state.to_tags(version.tags))
        run.managed = state
        event(
            "SecretActivated",
            keyId=state.credential_id,
            vaultVersion=version.version,
            retireCredentialId=state.retire_credential_id,
            retireAfter=state.retire_after,
            **run.dims(),
        )

    # --- 4. retirement --------------------------------------------------------------------------
    async def _retire(self, run: _Run) -> None:
        """Remove the old credential, disable the versions holding its value, then clear the tags
        (last, so that a crash before it leaves the retirement recorded and the next run finishes it)."""
        key_id = run.state.retire_credential_id
        assert key_id is not None and run.latest.version is not None
        if run.dry_run:
            run.warnings.append(f"would retire credential {key_id}")
            return
        await self._retire_credential(run, key_id)
        await self._disable_dead_versions(run, run.latest.version)
        state = run.state.evolve(retire_credential_id=None, retire_after=None)
        self._check_lock(run)
        await run.vault.update(run.name, run.latest.version, tags=state.to_tags(run.latest.tags))
        run.managed = state

    async def _retire_credential(self, run: _Run, key_id: str) -> None:
        started = time.monotonic()
        removed = await self._remove_password(run, key_id)
        run.timings["retire"] = time.monotonic() - started
        run.retired.append(key_id)
        run.actions.append(Action.RETIRED)
        event("CredentialRetired", keyId=key_id, alreadyGone=not removed, **run.dims())

    async def _disable_dead_versions(self, run: _Run, keep_version: str) -> None:
        """Disable older versions whose value no longer signs in, so nobody can read a dead secret.

        A version tagged with a CredentialId is dead when that credential is gone. An untagged version
        (from before the rotator managed the secret) is dead when its value's hint matches no live
        credential; that costs one read, once, since disabled versions are skipped afterwards.
        """
        live = {c.key_id.lower() for c in run.application.password_credentials}
        live_hints = {c.hint for c in run.application.password_credentials if c.hint}
        for version in await run.vault.list_versions(run.name):
            if not version.enabled or version.version in (None, keep_version):
                continue
            credential_id = version.tags.get(Tag.CredentialId, "").strip().lower()
            if credential_id:
                dead = credential_id not in live
            else:
                stored = await run.vault.get(run.name, version.version)
                dead = stored is not None and stored.value.hint not in live_hints
            if dead:
                # A version left `validating` by an interrupted rollback is marked failed as it goes.
                tags = None
                if version.tags.get(Tag.RotationState) == RotationState.VALIDATING.value:
                    tags = {**version.tags, Tag.RotationState: RotationState.FAILED.value}
                self._check_lock(run)
                await run.vault.update(run.name, str(version.version), tags=tags, enabled=False)
                event("VersionDisabled", vaultVersion=version.version, keyId=credential_id or None, **run.dims())

    # --- 5. rotation ----------------------------------------------------------------------------
    async def _rotate_if_due(self, run: _Run) -> None:
        assert run.policy is not None
        now = self.clock.now()
        forced = (run.request.forced and not run.validated_now) or run.holds_secret_id or run.force_rotation
        # The short-lifetime guard needs the credential's real start, which only a version the rotator
        # wrote records (as nbf); an operator's version was written at some unrelated moment.
        issued = run.latest.not_before if run.latest.tags.get(Tag.RotationId) else None
        decision = policy.rotation_due(run.latest.expires, now, run.policy.rotate_before_days, forced, issued=issued)
        if not run.force_rotation:
            if not decision.due or Action.ROLLED_BACK in run.actions or run.validated_now:
                return
            if run.state.state is RotationState.VALIDATING:
                return  # only reached in a dry run: the pending validation comes first
            if run.state.retire_credential_id and not run.request.emergency:
                # One retirement at a time: the tags name one old credential. An emergency retires it
                # first; anything else waits for its grace period to end.
                run.warnings.append(
                    f"rotation is due ({decision.reason}) but waits until credential "
                    f"{run.state.retire_credential_id} is retired at {run.state.retire_after} (an emergency "
                    "rotation retires it at once)"
                )
                return
        if run.dry_run:
            run.warnings.append(f"would rotate: {decision.reason}")
            return
        await self._rotate(run, decision.reason)

    async def _rotate(self, run: _Run, reason: str) -> None:
        assert run.policy is not None
        app = run.application
        limit = app.password_limit
        if limit is not None and len(app.password_credentials) >= limit:
            raise PasswordLimitError(
                f"Application {app.app_id} already holds {len(app.password_credentials)} passwords, the most an app "
                "that allows personal Microsoft accounts may hold; a rotation needs room for one more.",
                "Remove a password that nothing uses (never the one this secret holds) and run again.",
            )
        retire_target = self._credential_to_retire(run)
        now = self.clock.now()
        rotation_id = new_rotation_id(now)
        display_name = rotator_display_name(run.request.vault, run.name, rotation_id)
        event(
            "RotationStarted",
            reason=reason,
            rotationId=rotation_id,
            retireCredentialId=retire_target,
            **run.dims(),
        )

        # Create. Record of intent: the display name ties the credential to this secret and rotation.
        started = time.monotonic()
        lifetime = policy.new_credential_lifetime(now, run.policy.validity_days)
        self._check_lock(run)
        try:
            created = await self.directory.add_password(
                app.object_id, display_name, lifetime.start, lifetime.end, app_id=app.app_id
            )
        except PasswordLifetimePolicyError:
            lifetime = await self._clamped_lifetime(run, now)
            created = await self.directory.add_password(
                app.object_id, display_name, lifetime.start, lifetime.end, app_id=app.app_id
            )
        credential, value = created
        if lifetime.clamped:
            run.warnings.append(f"lifetime clamped by the app management policy to end {lifetime.end.isoformat()}")
        run.created_key_id = credential.key_id
        run.timings["create"] = time.monotonic() - started
        event(
            "CredentialCreated",
            keyId=credential.key_id,
            hint=credential.hint,
            end=credential.end,
            **run.dims(),
        )

        # Guard: never store something that cannot be a secret value (the Secret-ID mistake above all).
        try:
            policy.guard_new_value(value, credential.key_id)
        except GuardError:
            await self._remove_password(run, credential.key_id)
            raise

        # Store, with the state that says what to do next if we crash from here on.
        state = run.state.evolve(
            credential_id=credential.key_id,
            rotation_id=rotation_id,
            state=RotationState.VALIDATING,
            retire_credential_id=retire_target,
            retire_after=None,
            failure_reason=None,
        )
        started = time.monotonic()
        try:
            self._check_lock(run)
            stored = await run.vault.set(
                run.name,
                value,
                tags=state.to_tags(run.latest.tags),
                content_type=CONTENT_TYPE.format(app_id=app.app_id),
                not_before=credential.start or lifetime.start,
                expires=credential.end or lifetime.end,
            )
        except RotationError:
            # Unrecorded, the credential would wait out the orphan margin (and use one of at most two
            # passwords on some apps). If the write did land after all, the next run finds a
            # `validating` version whose credential is gone and restores the previous value.
            with contextlib.suppress(RotationError):
                await self._remove_password(run, credential.key_id)
            raise
        run.timings["store"] = time.monotonic() - started
        run.managed = state
        run.vault_version = stored.version
        run.actions.append(Action.ROTATED)
        self._remember_credential(run, credential)
        event("SecretStored", keyId=credential.key_id, vaultVersion=stored.version, **run.dims())

        # Validate what consumers will read: the value as Key Vault returns it for this version.
        readback = await run.vault.get(run.name, stored.version)
        if readback is None or not readback.value.matches(value):
            await self._roll_back(run, stored, "the value read back from Key Vault differs from the one written")
            return
        await self._validate_and_activate(run, stored, readback.value)

    def _remember_credential(self, run: _Run, credential: PasswordCredential) -> None:
        app = run.application
        run.app = Application(
            app.object_id,
            app.app_id,
            app.display_name,
            app.sign_in_audience,
            (*app.password_credentials, credential),
            app.key_credentials_count,
        )

    async def _clamped_lifetime(self, run: _Run, now: datetime) -> policy.Lifetime:
        """addPassword refused the lifetime: read the policy (if we may) and clamp to its maximum."""
        assert run.policy is not None
        rules = await self.directory.password_policy(run.application.object_id)
        if rules is None or rules.max_lifetime is None:
            raise PolicyBlockedError(
                f"An app management policy limits password lifetime for application {run.state.app_id} below "
                f"{run.policy.validity_days} days, and the rotator may not read the policy to clamp to it.",
                "Set the secret's ValidityPeriodDays tag below the policy's maximum, or grant the rotator "
                "Policy.Read.All so that it clamps the lifetime itself.",
            )
        if rules.blocked:
            raise PolicyBlockedError(f"An app management policy forbids adding passwords to {run.state.app_id}.")
        return policy.new_credential_lifetime(now, run.policy.validity_days, rules.max_lifetime)

    def _credential_to_retire(self, run: _Run) -> str | None:
        """The credential the current value belongs to: the CredentialId tag, else adopted by hint."""
        if run.state.credential_id:
            if run.application.credential(run.state.credential_id) is None:
                run.warnings.append(
                    f"credential {run.state.credential_id} named by the CredentialId tag no longer exists in Entra"
                )
                return None
            return run.state.credential_id
        assert run.current is not None
        candidates = policy.adoption_candidates(
            run.application.password_credentials,
            run.current.value.hint,
            run.latest.expires,
            vault=run.request.vault,
            secret=run.name,
        )
        if len(candidates) == 1:
            run.actions.append(Action.ADOPTED)
            event("CredentialAdopted", keyId=candidates[0].key_id, **run.dims())
            return candidates[0].key_id
        run.warnings.append(
            "the credential the current value belongs to could not be identified "
            f"({len(candidates)} candidates by hint and expiry); it is left in place - set the CredentialId "
            "tag to let the rotator retire it"
        )
        return None

    # --- rollback -------------------------------------------------------------------------------
    async def _roll_back(
        self, run: _Run, failed: SecretVersion, reason: str, *, aadsts_code: int | None = None
    ) -> None:
        """Remove the new credential, restore the last working value as the latest version, disable
        the failed version and record why (without any value)."""
        failed_key = run.state.credential_id
        event("RotationRollingBack", keyId=failed_key, reason=reason, **run.dims(), level=logging.WARNING)
        # Find what to restore before touching anything: with nothing to restore, removing the new
        # credential would leave no working value at all.
        previous = await self._last_working_version(run, failed, exclude=failed_key)
        if previous is None:
            await self._keep_failed(run, failed, reason, aadsts_code)
            return
        if failed_key:
            await self._remove_password(run, failed_key)
        # The restored value belongs to the credential this rotation meant to retire (or to the one its
        # own version was tagged with); with neither known, it carries no state at all.
        restored_key = previous.version.tags.get(Tag.CredentialId, "").strip().lower() or run.state.retire_credential_id
        restored_state = run.state.evolve(
            credential_id=restored_key or None,
            rotation_id=previous.version.tags.get(Tag.RotationId) or None,
            state=RotationState.ACTIVE if restored_key else None,
            retire_credential_id=None,
            retire_after=None,
            failure_reason=f"rotation {run.state.rotation_id} rolled back: {reason}",
        )
        self._check_lock(run)
        written = await run.vault.set(
            run.name,
            previous.value,
            tags=restored_state.to_tags(failed.tags),
            content_type=previous.version.content_type,
            not_before=previous.version.not_before,
            expires=previous.version.expires,
        )
        run.managed = restored_state
        run.vault_version = written.version
        if failed.version is not None and failed.enabled:
            failed_tags = dict(failed.tags)
            failed_tags[Tag.RotationState] = RotationState.FAILED.value
            self._check_lock(run)
            await run.vault.update(run.name, failed.version, tags=failed_tags, enabled=False)
        run.actions.append(Action.ROLLED_BACK)
        raise ValidationFailedError(
            f"The new credential {failed_key} for secret '{run.name}' was not proven ({reason}) and was "
            "rolled back; the previous value is the latest version again.",
            aadsts_code=aadsts_code,
        )

    async def _keep_failed(self, run: _Run, failed: SecretVersion, reason: str, aadsts_code: int | None) -> None:
        """No earlier version holds a working value (its credential is gone, or it never was one).

        If the new credential still exists it stays, still `validating`, and the next run validates it
        again: a slow Entra is no reason to destroy the only candidate. If it is gone too, nothing
        here can work, so a fresh rotation starts at once.
        """
        assert failed.version is not None
        failed_key = run.state.credential_id
        note = f"rotation {run.state.rotation_id} not proven: {reason}; no earlier working version to restore"
        if failed_key and run.application.credential(failed_key) is not None:
            state = run.state.evolve(failure_reason=note)
            self._check_lock(run)
            await run.vault.update(run.name, failed.version, tags=state.to_tags(failed.tags))
            run.managed = state
            raise ValidationFailedError(
                f"The new credential {failed_key} for secret '{run.name}' was not proven ({reason}). No earlier "
                "version holds a working value, so it stays in place and the next run validates it again.",
                aadsts_code=aadsts_code,
            )
        run.warnings.append(f"{note}; its credential is gone too, so a fresh rotation replaces it")
        run.force_rotation = True
        run.managed = run.state.evolve(retire_credential_id=None, retire_after=None, failure_reason=note)

    async def _last_working_version(
        self, run: _Run, failed: SecretVersion, *, exclude: str | None
    ) -> SecretValue | None:
        """The newest enabled version before the failed one whose value can still sign in, as far as
        can be told without signing in: its credential exists (tagged) or its hint matches a live one
        (untagged), and it is a plausible secret value (never a Secret ID)."""
        credentials = [c for c in run.application.password_credentials if c.key_id.lower() != (exclude or "").lower()]
        live = {c.key_id.lower() for c in credentials}
        live_hints = {c.hint for c in credentials if c.hint}
        versions = [
            v
            for v in await run.vault.list_versions(run.name)
            if v.enabled
            and v.version
            and v.version != failed.version
            and (failed.created is None or v.created is None or v.created <= failed.created)
        ]
        versions.sort(key=lambda v: v.created or datetime.min.replace(tzinfo=UTC), reverse=True)
        for version in versions:
            credential_id = version.tags.get(Tag.CredentialId, "").strip().lower()
            if credential_id and credential_id not in live:
                continue
            assert version.version is not None
            found = await run.vault.get(run.name, version.version)
            if found is None or (not credential_id and found.value.hint not in live_hints):
                continue
            try:
                policy.guard_new_value(found.value, credential_id or "")
            except GuardError:
                continue  # e.g. a Secret ID stored by mistake: restoring it would restore the outage
            return found
        return None
