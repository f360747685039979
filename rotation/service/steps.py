"""The steps of a reconcile, in order; each is idempotent and starts by checking whether its work is
done (like the steps of AWS's rotation Lambda template).

1. :func:`observe` reads the latest version (value, tags) and the app's credentials;
2. :func:`remove_orphans` removes this secret's rotator credentials that no tag references, and
   :func:`finish_interrupted_rollback` disables a version an interrupted rollback left enabled;
3. :func:`finish_validation` proves a ``validating`` value and activates it, or rolls it back;
4. :func:`retire` removes the old credential once its grace period is over (at once in an emergency);
5. :func:`rotate` creates a new credential when one is due, proves it signs in, and only then stores it
   as the latest version (active), retiring the old one at once in an emergency.

Every step takes the :class:`~rotation.service.run.Observed` world and returns it as it is after the
step's writes. Writes keep the order that makes a crash anywhere safe: the record of intent (the
credential's display name) before anything else, so that a crash before the value is stored leaves
only an orphan that :func:`remove_orphans` removes; ``removePassword`` before disabling the versions
that hold its value; and the tag write that completes a step last, so that until it lands the recorded
state still asks the next run to redo the step.

Nothing here takes a secret down: a version is disabled only when a fresh read of the app shows its
credential gone, never the latest version nor one newer than the run's own, and a run that finds
someone else's newer version stops (:class:`~rotation.domain.errors.SupersededError`).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from rotation.domain import evidence, policy
from rotation.domain.errors import (
    EvidenceUnavailableError,
    GuardError,
    NotBoundError,
    NotManagedError,
    OwnIdentityError,
    PasswordLifetimePolicyError,
    PasswordLimitError,
    PermissionDeniedError,
    PolicyBlockedError,
    RotationError,
    SecretNotFoundError,
    SupersededError,
    ValidationFailedError,
)
from rotation.domain.model import (
    Action,
    RotationState,
    SecretVersion,
    Sensitive,
    format_utc,
    new_rotation_id,
    rotator_display_name,
)
from rotation.domain.state import (
    Backoff,
    ManagedSecret,
    credential_issued,
    failed_tags,
    is_validating,
    tagged_credential_id,
)
from rotation.service.rollback import roll_back
from rotation.service.run import Observed, Run, Settled, remove_found_orphans

CONTENT_TYPE = "Entra ID client secret value (managed by the rotator; app {app_id})"


# --- 1. observe ---------------------------------------------------------------------------------------
async def observe(run: Run) -> Observed:
    """The latest version with its value and state, the secret's policy, and the app (read once per
    run; later steps keep the returned world up to date themselves)."""
    current = await run.vault.get(run.name)
    if current is None:
        raise SecretNotFoundError(run.request.vault, run.name)
    if not current.version.managed:
        raise NotManagedError(run.request.vault, run.name)
    if current.version.backs_certificate:
        # Writing it would fail (Key Vault refuses) and a password on the app could not match it anyway.
        raise NotManagedError(
            run.request.vault, run.name, "it is the secret of a Key Vault certificate: rotate the certificate"
        )
    state = ManagedSecret.from_version(current.version)
    run.report.state = state
    own = run.settings.own_client_id
    if own and state.app_id.lower() == own.lower():
        raise OwnIdentityError(run.request.vault, run.name, state.app_id)
    secret_policy = run.settings.policy_for(current.version.tags, run.name, run.request.vault)
    run.report.warnings.extend(secret_policy.warnings)
    tenant_id = secret_policy.require_tenant(run.request.vault, run.name)
    # `CredentialObject` picks the object whose passwords are rotated: the app registration, or its
    # service principal; the binding is read from that same object's tags, so a binding on one never
    # authorises a password on the other.
    app = await run.directory.get_application(state.app_id, on=state.credential_object)
    # The app's owners decide where its secret may live: without its binding (a tag on the app
    # registration, or on the service principal, read with it), nothing at all happens for this secret.
    binding = app.binding_for(run.host, run.name)
    if binding is None:
        raise NotBoundError(run.request.vault, run.name, state.app_id, run.host, on=state.credential_object)
    stored_key_id = policy.looks_like_key_id(current.value, app.password_credentials)
    if stored_key_id:
        run.report.warn(
            f"the secret holds the Secret ID {stored_key_id} instead of a secret value (the "
            "AADSTS7000215 mistake); a rotation replaces it with a real value"
        )
    # A credential deleted in Entra (by a person, or a script) leaves a value that cannot sign in:
    # heal it now instead of reporting it healthy until it would have expired.
    gone = (
        state.credential_id is not None
        and state.state is not RotationState.VALIDATING
        and app.credential(state.credential_id) is None
    )
    if gone:
        run.report.warn(
            f"credential {state.credential_id} named by the CredentialId tag no longer exists on app "
            f"{state.app_id}: the stored value cannot sign in; a rotation replaces it now"
        )
        run.event("CredentialMissing", keyId=state.credential_id, appId=state.app_id, level=logging.ERROR)
    return Observed(
        latest=current.version,
        value=current.value,
        state=state,
        app=app,
        policy=secret_policy,
        tenant_id=tenant_id,
        binding=binding,
        holds_secret_id=stored_key_id is not None,
        credential_gone=gone,
    )


# --- 2. orphans, and what an interrupted rollback left ---------------------------------------------
async def remove_orphans(run: Run, seen: Observed) -> Observed:
    """Remove rotator credentials of this secret that no tag references (left by a crash between
    ``addPassword`` and the Key Vault write), once they are older than the orphan margin."""
    found = policy.orphans(
        seen.app.password_credentials,
        run.host,
        run.name,
        seen.state.referenced_key_ids,
        run.clock.now(),
        timedelta(seconds=run.settings.orphan_margin_seconds),
        legacy_alias=run.legacy_alias,
    )
    return await remove_found_orphans(run, seen, found, run.remove_password, "credential")


async def finish_interrupted_rollback(run: Run, seen: Observed) -> Observed:
    """A rollback that died after restoring the old value may have left the failed version enabled;
    it names a removed credential, so disabling dead versions finds and disables it. (A failure
    recorded by the back-off is no rollback: it wrote no version.)"""
    if not seen.state.failure_reason or seen.state.backoff is not None or run.dry_run or not seen.latest.version:
        return seen
    return await disable_dead_versions(run, seen, seen.latest)


async def disable_dead_versions(
    run: Run, seen: Observed, own: SecretVersion, *, app_read_after_store: bool = False
) -> Observed:
    """Disable versions older than ``own`` (the version this run acts for, the latest) whose value no
    longer signs in, so nobody can read a dead secret.

    A version tagged with a CredentialId is dead when that credential is gone; an untagged version
    (from before the rotator managed the secret) when its value's hint matches no live credential
    (one read, once: disabled versions are skipped afterwards). Decided on fresh reads, right before
    the writes: the app's credentials now (another run or a person may have added one since this run
    read them; ``app_read_after_store``: the caller's world already holds a read made after ``own``
    was written, the re-read before a removal, which sees every credential an older version can
    hold), and Key Vault's latest version now. Never the latest version, nor one newer than
    ``own``: if ``own`` is no longer the latest, someone else wrote the secret meanwhile and the run
    stops (:class:`SupersededError`) without disabling anything.
    """
    candidates = [
        v
        for v in await run.vault.list_versions(run.name)
        if v.enabled and v.version not in (None, own.version) and not known_newer(v, own)
    ]
    if not candidates:
        return seen
    if not app_read_after_store:
        fresh = await run.directory.get_application(seen.state.app_id, on=seen.app.credential_object)
        seen = seen.with_app_credentials(fresh.password_credentials)
    credentials = seen.app.password_credentials
    live = {c.key_id.lower() for c in credentials}
    live_hints = {c.hint for c in credentials if c.hint}
    dead: list[tuple[SecretVersion, str | None]] = []
    for version in candidates:
        credential_id = tagged_credential_id(version)
        if credential_id:
            if credential_id not in live:
                dead.append((version, credential_id))
            continue
        stored = await run.vault.get(run.name, version.version)
        if stored is not None and stored.value.hint not in live_hints:
            dead.append((version, None))
    if not dead:
        return seen
    await ensure_latest(run, own)
    for version, credential_id in dead:
        # A version left `validating` by an interrupted rollback is marked failed as it goes.
        tags = failed_tags(version) if is_validating(version) else None
        run.check_lock()
        await run.vault.update(run.name, str(version.version), tags=tags, enabled=False)
        run.event("VersionDisabled", vaultVersion=version.version, keyId=credential_id)
    return seen


def known_newer(version: SecretVersion, own: SecretVersion) -> bool:
    """Whether ``version`` was created after ``own`` by the clock. Key Vault's times are whole
    seconds, so a version of the same second may be either; :func:`ensure_latest` settles it (while
    ``own`` is the latest, every other version listed before is older)."""
    return version.created is not None and own.created is not None and version.created > own.created


async def ensure_latest(run: Run, own: SecretVersion) -> None:
    """Raise :class:`SupersededError` unless ``own`` is still the latest version (Key Vault's word, a
    fresh read): a person or a concurrent run wrote the secret after this run decided what to do."""
    latest = await run.vault.get(run.name)
    if latest is None or latest.version.version != own.version:
        found = latest.version.version if latest is not None else None
        run.event("RunSuperseded", vaultVersion=own.version, latestVersion=found, level=logging.WARNING)
        raise SupersededError(run.request.vault, run.name, own.version, found)


# --- 3. a validation left pending (by a crash or another worker) ----------------------------------
async def finish_validation(run: Run, seen: Observed) -> tuple[Observed, Settled]:
    """Prove the value of a ``validating`` latest version and activate it, or roll it back."""
    if seen.state.state is not RotationState.VALIDATING:
        return seen, Settled.NOTHING_PENDING
    key_id = seen.state.credential_id
    assert key_id is not None  # the tags guarantee it for `validating`
    if run.dry_run:
        run.report.warn(f"would validate credential {key_id} (left in state validating)")
        return seen, Settled.NOTHING_PENDING
    if seen.app.credential(key_id) is None:
        seen = await roll_back(run, seen, seen.latest, f"credential {key_id} no longer exists in Entra")
        return seen, Settled.REPLACE
    return await validate_and_activate(run, seen, seen.latest, seen.value)


async def validate_and_activate(
    run: Run, seen: Observed, version: SecretVersion, value: Sensitive
) -> tuple[Observed, Settled]:
    """Prove ``value`` (the value of ``version`` as Key Vault returns it), then activate ``version``;
    roll back when it cannot be proven."""
    started = run.timer()
    progress = await validate(run, seen, value)
    run.report.add_time("validate", run.timer() - started)
    if progress.verdict is not policy.Verdict.PASSED:
        seen = await roll_back(run, seen, version, progress.reason, aadsts_code=progress.last_code)
        return seen, Settled.REPLACE
    run.report.did(Action.VALIDATED)
    run.event("ValidationPassed", keyId=seen.state.credential_id, attempts=run.report.attempts)
    return await activate(run, seen, version), Settled.PROVEN


async def validate(run: Run, seen: Observed, value: Sensitive) -> policy.ValidationProgress:
    """Ask Entra for a token with ``value`` until enough consecutive successes, or a verdict.

    Between probes it waits :meth:`ValidationProgress.next_delay` (a second, so that the next
    request may reach another replica and one app never sends more than one a second; after the
    first 10 s a tenth of the wait so far), never past the deadline.
    """
    progress = policy.ValidationProgress(
        needed=run.settings.validation_successes,
        deadline_seconds=float(run.settings.validation_deadline_seconds),
    )
    started = run.timer()
    while True:
        run.check_lock()
        left = progress.deadline_seconds - (run.timer() - started)  # bounds the attempt (a stalled Entra)
        result = await run.probe.probe(seen.tenant_id, seen.state.app_id, value, within=left)
        run.report.attempts += 1
        progress = progress.after(result, run.timer() - started)
        if progress.finished:
            return progress
        remaining = progress.deadline_seconds - (run.timer() - started)
        await run.sleep(max(0.0, min(progress.next_delay(), remaining)))


async def activate(run: Run, seen: Observed, version: SecretVersion) -> Observed:
    """A pending value is proven: mark it active, with its old credential due for retirement after
    the grace period (now, in an emergency: the :func:`retire` step that follows removes it).

    The tag write comes last: until it lands the version still says `validating`, so a crash anywhere
    before it makes the next run redo the whole step.
    """
    assert version.version is not None
    state = seen.state.evolve(
        state=RotationState.ACTIVE,
        failure_reason=None,
        backoff=None,
        emergency_requested=None,
        retire_after=retirement_time(run, seen) if seen.state.retire_credential_id else None,
    )
    seen = await run.write_state(seen, version, state)
    activated(run, state, version)
    return seen


def activated(run: Run, state: ManagedSecret, version: SecretVersion) -> None:
    run.event(
        "SecretActivated",
        keyId=state.credential_id,
        vaultVersion=version.version,
        retireCredentialId=state.retire_credential_id,
        retireAfter=state.retire_after,
    )


def is_emergency(run: Run, seen: Observed) -> bool:
    """An emergency roll asked for now, or one recorded (``Emergency`` tag) and not finished."""
    return run.request.emergency or seen.state.emergency_requested is not None


def retirement_time(run: Run, seen: Observed) -> datetime:
    """When the old credential may go once the new one is proven: after the grace period, or now (an
    emergency, or no grace period). Recorded as ``RetireAfter`` even when it is now, so that a run
    interrupted before the removal still removes it at once (the emergency survives a crash)."""
    now = run.clock.now()
    return policy.retire_after(now, seen.policy.grace_hours, is_emergency(run, seen)) or now.replace(microsecond=0)


# --- 4. retirement --------------------------------------------------------------------------------
async def retire(run: Run, seen: Observed) -> Observed:
    """Remove the old credential, disable the versions holding its value, then clear the tags
    (last, so that a crash before it leaves the retirement recorded and the next run finishes it).

    Only while the version that recorded the retirement is still the latest: a newer one (a person
    restoring the old value, say) may need the credential again, so the run stops and reports.
    """
    key_id = seen.state.retire_credential_id
    if key_id is None:
        return seen
    if not (policy.retirement_due(seen.state.retire_after, run.clock.now()) or is_emergency(run, seen)):
        return seen
    latest = seen.latest
    assert latest.version is not None
    if not is_emergency(run, seen):
        hold = await evidence_hold(run, seen, key_id)
        if hold is not None:
            return await hold_retirement(run, seen, key_id, hold)
    if run.dry_run:
        run.report.warn(f"would retire credential {key_id}")
        return seen
    await ensure_latest(run, latest)
    seen = await retire_credential(run, seen, key_id)
    seen = await disable_dead_versions(run, seen, latest, app_read_after_store=key_id in run.report.retired)
    state = seen.state.evolve(retire_credential_id=None, retire_after=None, retirement_held=None)
    return await run.write_state(seen, latest, state)


#: How long ``auto`` trusts a refusal of the report before it asks Graph again: the permission is
#: the rotator's (one for every app), and a grant reaches its cached token within hours anyway.
EVIDENCE_REFUSAL_MEMORY_SECONDS = 6 * 3600.0
#: Monotonic time until which this process takes the report as unreadable (``auto`` only).
_evidence_refused_until = 0.0


def forget_evidence_refusal() -> None:
    """Ask Graph for the report again on the next retirement (tests, after a permission change)."""
    global _evidence_refused_until
    _evidence_refused_until = 0.0


async def evidence_hold(run: Run, seen: Observed, key_id: str) -> evidence.Hold | None:
    """Whether the sign-in report keeps ``key_id`` (``ROTATION_RETIREMENT_EVIDENCE``): one Graph read.

    ``off``: never. ``auto``: when the report is readable; otherwise the grace period decides, said
    once (``EvidenceUnavailable``). ``required``: an unreadable report is an error and nothing retires.
    """
    global _evidence_refused_until
    mode = run.settings.retirement_evidence
    if mode is evidence.EvidenceMode.OFF:
        return None
    refused_recently = mode is evidence.EvidenceMode.AUTO and run.timer() < _evidence_refused_until
    report = None if refused_recently else await run.directory.credential_sign_ins(seen.state.app_id)
    if report is None:
        if mode is evidence.EvidenceMode.REQUIRED:
            raise EvidenceUnavailableError(seen.state.app_id)
        if not refused_recently:  # said once per refusal, not on every retirement
            _evidence_refused_until = run.timer() + EVIDENCE_REFUSAL_MEMORY_SECONDS
            run.event("EvidenceUnavailable", appId=seen.state.app_id, level=logging.WARNING)
        run.report.warn(
            "the sign-in report is not readable (AuditLog.Read.All, Entra ID P1/P2): the grace period decides"
        )
        return None
    old = seen.app.credential(key_id)
    return evidence.retirement_hold(
        report.get(key_id.lower()),
        key_id=key_id,
        active_since=seen.latest.created or run.clock.now(),
        now=run.clock.now(),
        quiet=timedelta(hours=run.settings.evidence_quiet_hours),
        old_expires=old.end if old is not None else None,
    )


async def hold_retirement(run: Run, seen: Observed, key_id: str, hold: evidence.Hold) -> Observed:
    """Keep ``key_id`` and say why (``RetirementHeld``: an event each time, the tag when it changes);
    the sweep looks again on its next run."""
    run.report.warn(f"retirement of credential {key_id} held: {hold.reason}")
    run.event(
        "RetirementHeld",
        keyId=key_id,
        appId=seen.state.app_id,
        lastSignIn=hold.last_sign_in,
        reason=hold.reason,
        level=logging.WARNING,
    )
    if run.dry_run or seen.state.retirement_held == hold.reason:
        return seen
    return await run.write_state(seen, seen.latest, seen.state.evolve(retirement_held=hold.reason))


async def retire_credential(run: Run, seen: Observed, key_id: str) -> Observed:
    """``removePassword``; a credential that is gone already counts as retired.

    The tags only say which credential to retire; they are no authority. A credential the rotator did
    not create for this vault host and secret, and that is not this secret's adopted credential, is
    refused (and reported), never removed.
    """
    credential = seen.app.credential(key_id)
    adopted = False
    if credential is not None and not run.created_here(credential):
        adopted = await is_adopted(run, seen, key_id)
        if not adopted:
            run.report.warn(
                f"refused to retire credential {key_id}: the rotator did not create it for "
                f"{run.host}/{run.name} and it is not this secret's adopted credential (a forged "
                "RetireCredentialId?); it is left in place"
            )
            run.event("RetirementRefused", keyId=key_id, level=logging.WARNING)
            return seen
    started = run.timer()
    seen, removed = await run.remove_password(seen, key_id, adopted=adopted)
    run.report.timings["retire"] = run.timer() - started
    run.report.retired.append(key_id)
    run.report.did(Action.RETIRED)
    run.event("CredentialRetired", keyId=key_id, alreadyGone=not removed)
    return seen


# --- 5. rotation ----------------------------------------------------------------------------------
async def rotate(run: Run, seen: Observed, settled: Settled) -> Observed:
    """Rotate when due, forced, or when the stored value cannot work (a Secret ID, a credential deleted
    in Entra, or a validation that left nothing to restore); otherwise leave the secret as it is.

    After failed rotations an unforced one waits for the back-off (``Backoff`` tag); a definitive
    failure here is recorded in it (see :func:`record_failure`).
    """
    if settled is Settled.PROVEN:
        return seen  # a pending rotation just completed: never a second one in the same run
    must_replace = settled is Settled.REPLACE
    emergency = is_emergency(run, seen)
    forced = run.request.forced or emergency or seen.holds_secret_id or seen.credential_gone or must_replace
    # The short-lifetime guard needs the credential's real start, which only a version the rotator
    # wrote records (as nbf); an operator's version was written at some unrelated moment.
    now = run.clock.now()
    decision = policy.rotation_due(
        seen.latest.expires,
        now,
        seen.policy.rotate_before_days,
        forced,
        issued=credential_issued(seen.latest),
    )
    if not must_replace:
        if not decision.due:
            return seen
        if seen.state.state is RotationState.VALIDATING:
            return seen  # only reached in a dry run: the pending validation comes first
        if seen.state.retire_credential_id and not emergency:
            # One retirement at a time: the tags name one old credential. An emergency retires it
            # first; anything else waits for its grace period to end.
            run.report.warn(
                f"rotation is due ({decision.reason}) but waits until credential "
                f"{seen.state.retire_credential_id} is retired at {seen.state.retire_after} (an emergency "
                "rotation retires it at once)"
            )
            return seen
        backoff = seen.state.backoff
        if backoff is not None and backoff.waits_at(now) and not run.request.forced:
            run.report.warn(backing_off(backoff, decision.reason))
            return seen
    if run.dry_run:
        run.report.warn(f"would rotate: {decision.reason}")
        return seen
    if emergency and seen.state.emergency_requested is None:
        seen = await record_emergency(run, seen)
    try:
        return await create_and_store(run, seen, decision.reason)
    except RotationError as error:
        # A failure that wrote a version has recorded itself there (a rollback, a pending value).
        if counts_against_backoff(error) and run.report.vault_version is None:
            await record_failure(run, seen, error)
        raise


def backing_off(backoff: Backoff, reason: str) -> str:
    if backoff.next_attempt is None:
        return (
            f"rotation is due ({reason}) but the rotator stopped after {backoff.failures} failed attempts in a "
            "row; fix the cause and run `rotate --force` (or remove the Backoff tag)"
        )
    return (
        f"rotation is due ({reason}) but waits, after {backoff.failures} failed attempt(s) in a row, until "
        f"{format_utc(backoff.next_attempt)} (`rotate --force` tries now)"
    )


async def record_emergency(run: Run, seen: Observed) -> Observed:
    """Record the emergency on the current version before anything else, so that a crash from here on
    leaves it an emergency: the next run rotates at once and retires the leaked credential at once."""
    state = seen.state.evolve(emergency_requested=run.clock.now().replace(microsecond=0))
    seen = await run.write_state(seen, seen.latest, state)
    run.event("EmergencyRecorded", vaultVersion=seen.latest.version)
    return seen


async def record_failure(run: Run, seen: Observed, error: RotationError) -> None:
    """Count a definitive rotation failure in the ``Backoff`` tag of the current version, so that
    the sweep waits before the next attempt instead of churning a credential per sweep, and stops
    after ``BACKOFF_STOP_AFTER`` failures with one alert (``RotationStopped``)."""
    previous = seen.state.backoff
    backoff = policy.backoff_after(previous, run.clock.now())
    state = seen.state.evolve(backoff=backoff, failure_reason=f"rotation failed ({error.code}): {error.message}")
    try:
        await run.write_state(seen, seen.latest, state)
    except RotationError as write_error:
        run.report.warn(f"could not record the failure for the back-off: {write_error.message}")
        return
    if backoff.stopped and not (previous is not None and previous.stopped):
        run.event(
            "RotationStopped",
            failures=backoff.failures,
            errorCode=error.code,
            error=error.message,
            remedy=policy.stopped_problem(state, run.request.vault, run.name),
            level=logging.ERROR,
        )
    else:
        run.event(
            "RotationBackoff",
            failures=backoff.failures,
            nextAttempt=backoff.next_attempt,
            errorCode=error.code,
            level=logging.WARNING,
        )


async def create_and_store(run: Run, seen: Observed, reason: str) -> Observed:
    """``addPassword`` (named for this secret and rotation), prove the new value signs in, and only
    then store it as the new latest version, active; read it back; retire the old credential when
    that is due now (an emergency, no grace period).

    Consumers read the latest version, so it never holds an unproven value: until the value is
    stored, the only trace of the rotation is the new credential, whose record of intent (display
    name) makes it an orphan for :func:`remove_orphans` if the run dies.
    """
    app = seen.app
    limit = app.password_limit
    if limit is not None and len(app.password_credentials) >= limit:
        raise PasswordLimitError(
            f"Application {app.app_id} already holds {len(app.password_credentials)} passwords, the most an app "
            "that allows personal Microsoft accounts may hold; a rotation needs room for one more.",
            "Remove a password that nothing uses (never the one this secret holds) and run again.",
        )
    retire_target = credential_to_retire(run, seen)
    now = run.clock.now()
    rotation_id = new_rotation_id(now)
    display_name = rotator_display_name(run.host, run.name, rotation_id)
    # The tags must fit before a credential exists that they could not record.
    seen.state.evolve(
        credential_id="pending",  # any value: only the number of tags matters here
        rotation_id=rotation_id,
        state=RotationState.ACTIVE,
        retire_credential_id=retire_target,
        retire_after=now if retire_target else None,
    ).to_tags(seen.latest.tags)
    run.event("RotationStarted", reason=reason, rotationId=rotation_id, retireCredentialId=retire_target)

    # Create. Record of intent: the display name ties the credential to this secret and rotation.
    started = run.timer()
    lifetime = policy.new_credential_lifetime(now, seen.policy.validity_days)
    run.check_lock()
    try:
        created = await run.directory.add_password(
            app.object_id, display_name, lifetime.start, lifetime.end, app_id=app.app_id, on=app.credential_object
        )
    except PasswordLifetimePolicyError:
        lifetime = await clamped_lifetime(run, seen, now)
        created = await run.directory.add_password(
            app.object_id, display_name, lifetime.start, lifetime.end, app_id=app.app_id, on=app.credential_object
        )
    credential, value = created
    if lifetime.clamped:
        run.report.warn(f"lifetime clamped by the app management policy to end {lifetime.end.isoformat()}")
    run.report.created_key_id = credential.key_id
    run.report.timings["create"] = run.timer() - started
    run.event("CredentialCreated", keyId=credential.key_id, hint=credential.hint, end=credential.end)
    seen = seen.with_credential(credential)

    # Guard: never store something that cannot be a secret value (the Secret-ID mistake above all).
    try:
        policy.guard_new_value(value, credential.key_id)
    except GuardError:
        await run.remove_password(seen, credential.key_id)
        raise

    # Prove, before any consumer can read it.
    started = run.timer()
    progress = await validate(run, seen, value)
    run.report.add_time("validate", run.timer() - started)
    proven = progress.verdict is policy.Verdict.PASSED
    if not proven and current_value_works(run, seen):
        with contextlib.suppress(RotationError):  # if this fails too, it is an orphan for the next run
            await run.remove_password(seen, credential.key_id)
        raise ValidationFailedError(
            f"The new credential {credential.key_id} for secret '{run.name}' was not proven "
            f"({progress.reason}) and was removed; the current value stays the latest version.",
            aadsts_code=progress.last_code,
            outage=progress.last_transient,
        )
    if proven:
        run.report.did(Action.VALIDATED)
        run.event("ValidationPassed", keyId=credential.key_id, attempts=run.report.attempts)

    # Store. Proven, it is active at once; unproven (only when the current value cannot sign in
    # either: an unproven value is no worse than a dead one) it is stored `validating`, and the next
    # run validates it again.
    state = seen.state.evolve(
        credential_id=credential.key_id,
        rotation_id=rotation_id,
        state=RotationState.ACTIVE if proven else RotationState.VALIDATING,
        retire_credential_id=retire_target,
        retire_after=retirement_time(run, seen) if retire_target and proven else None,
        failure_reason=None if proven else f"rotation {rotation_id} not proven yet: {progress.reason}",
        backoff=None,
        emergency_requested=None if proven else seen.state.emergency_requested,
    )
    started = run.timer()
    run.check_lock()
    try:
        stored = await run.vault.set(
            run.name,
            value,
            tags=state.to_tags(seen.latest.tags),
            content_type=CONTENT_TYPE.format(app_id=app.app_id),
            not_before=credential.start or lifetime.start,
            expires=credential.end or lifetime.end,
        )
    except RotationError:
        await forget_unstored(run, seen, credential.key_id)
        raise
    run.report.timings["store"] = run.timer() - started
    run.report.vault_version = stored.version
    run.report.did(Action.ROTATED)
    seen = run.record(seen, state).with_latest(stored, value)
    run.event("SecretStored", keyId=credential.key_id, vaultVersion=stored.version, state=state.state)

    # What consumers will read must be what was proven: the value as Key Vault returns it.
    readback = await run.vault.get(run.name, stored.version)
    if readback is None or not readback.value.matches(value):
        return await roll_back(run, seen, stored, "the value read back from Key Vault differs from the one written")
    if not proven:
        raise ValidationFailedError(
            f"The new credential {credential.key_id} for secret '{run.name}' was not proven ({progress.reason}). "
            "The current value could not sign in either, so the new one is stored as `validating` and the "
            "next run validates it again.",
            aadsts_code=progress.last_code,
        )
    activated(run, state, stored)
    if retire_target is None:
        # Nothing to retire, but with no grace period (or in an emergency) the old value's versions
        # go now if their credential is gone (a stored Secret ID, a deleted credential).
        if policy.retire_after(run.clock.now(), seen.policy.grace_hours, is_emergency(run, seen)) is None:
            seen = await disable_dead_versions(run, seen, stored)
        return seen
    return await retire(run, seen)


async def forget_unstored(run: Run, seen: Observed, key_id: str) -> None:
    """After a failed write of the new value: remove its credential, unless a fresh read shows the
    write landed after all (a timeout after the fact), when consumers may already read it. If even
    the read fails, the credential stays, an orphan for the next run to judge."""
    with contextlib.suppress(RotationError):
        current = await run.vault.get(run.name)
        if current is None or tagged_credential_id(current.version) != key_id.lower():
            await run.remove_password(seen, key_id)


def counts_against_backoff(error: RotationError) -> bool:
    """Definitive failures of this secret's rotation count. Not counted: a validation that ended
    without any answer from Entra (an outage, the network), and a permission the rotator lacks (the
    setup's problem, the same for every secret: once it is granted, the next sweep must rotate, not
    wait out a back-off)."""
    if error.retryable or isinstance(error, PermissionDeniedError):
        return False
    return not (isinstance(error, ValidationFailedError) and error.outage)


def current_value_works(run: Run, seen: Observed) -> bool:
    """Whether the value consumers read now can still sign in, as far as can be told without trying:
    not a Secret ID, its credential not deleted, not expired, and not a `validating` value whose
    proof failed (the only way a rotation meets one: its credential is gone and nothing could be
    restored, so a fresh rotation replaces it)."""
    expires = seen.latest.expires
    expired = expires is not None and expires <= run.clock.now()
    unproven = seen.state.state is RotationState.VALIDATING
    return not (seen.holds_secret_id or seen.credential_gone or expired or unproven)


async def clamped_lifetime(run: Run, seen: Observed, now: datetime) -> policy.Lifetime:
    """addPassword refused the lifetime: read the policy (if we may) and clamp to its maximum."""
    rules = await run.directory.password_policy(seen.app.object_id, on=seen.app.credential_object)
    if rules is None or rules.max_lifetime is None:
        raise PolicyBlockedError(
            f"An app management policy limits password lifetime for application {seen.state.app_id} below "
            f"{seen.policy.validity_days} days, and the rotator may not read the policy to clamp to it.",
            "Set the secret's ValidityPeriodDays tag below the policy's maximum, or grant the rotator "
            "Policy.Read.All so that it clamps the lifetime itself.",
        )
    if rules.blocked:
        raise PolicyBlockedError(f"An app management policy forbids adding passwords to {seen.state.app_id}.")
    return policy.new_credential_lifetime(now, seen.policy.validity_days, rules.max_lifetime)


async def is_adopted(run: Run, seen: Observed, key_id: str) -> bool:
    """Whether ``key_id`` (not created by the rotator) is this bound secret's ONE adopted credential.

    The app's binding names it when ``adopt`` identified it (the owners' word, not a Key Vault tag).
    Otherwise, and only when the binding names none, the hint-and-expiry adoption: some enabled
    version's value has the credential's hint and expiry, and no other credential of the app matches.
    """
    wanted = key_id.lower()
    if seen.binding.adopted_key_id is not None:
        return seen.binding.adopted_key_id == wanted
    credential = seen.app.credential(wanted)
    if credential is None or credential.rotator_owner() is not None:
        return False
    for version in await run.vault.list_versions(run.name):
        if not version.enabled or version.version is None:
            continue
        stored = await run.vault.get(run.name, version.version)
        if stored is None:
            continue
        candidates = policy.adoption_candidates(seen.app.password_credentials, stored.value.hint, version.expires)
        if [c.key_id.lower() for c in candidates] == [wanted]:
            return True
    return False


def _adoptable(run: Run, seen: Observed, key_id: str) -> bool:
    """The current value's own credential, as far as this run can prove it before a rotation: the one
    the binding names, else (binding naming none) the only one matching the value's hint and expiry."""
    wanted = key_id.lower()
    if seen.binding.adopted_key_id is not None:
        return seen.binding.adopted_key_id == wanted
    candidates = policy.adoption_candidates(seen.app.password_credentials, seen.value.hint, seen.latest.expires)
    return [c.key_id.lower() for c in candidates] == [wanted]


def credential_to_retire(run: Run, seen: Observed) -> str | None:
    """The credential the current value belongs to: the CredentialId tag, else the binding's adopted
    credential, else adopted by hint; only one the rotator may remove (see :func:`retire_credential`)."""
    if seen.state.credential_id:
        credential = seen.app.credential(seen.state.credential_id)
        if credential is None:
            run.report.warn(
                f"credential {seen.state.credential_id} named by the CredentialId tag no longer exists in Entra"
            )
            return None
        if not run.created_here(credential) and not _adoptable(run, seen, credential.key_id):
            run.report.warn(
                f"the CredentialId tag names credential {credential.key_id}, which the rotator did not create "
                f"for {run.host}/{run.name} and which is not this secret's adopted credential; it will not be "
                "retired (a forged tag?)"
            )
            run.event("RetirementRefused", keyId=credential.key_id, level=logging.WARNING)
            return None
        return seen.state.credential_id
    adopted = seen.binding.adopted_key_id
    if adopted is not None and seen.app.credential(adopted) is not None:
        run.report.did(Action.ADOPTED)
        run.event("CredentialAdopted", keyId=adopted)
        return adopted
    candidates = policy.adoption_candidates(
        seen.app.password_credentials,
        seen.value.hint,
        seen.latest.expires,
        vault=run.host,
        secret=run.name,
    )
    if len(candidates) == 1 and adopted is None:
        run.report.did(Action.ADOPTED)
        run.event("CredentialAdopted", keyId=candidates[0].key_id)
        return candidates[0].key_id
    run.report.warn(
        "the credential the current value belongs to could not be identified "
        f"({len(candidates)} candidates by hint and expiry); it is left in place - set the CredentialId "
        "tag to let the rotator retire it"
    )
    return None
