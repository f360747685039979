"""Rollback: a new value that could not be proven never stays the latest version.

`roll_back` finds the last working value before touching anything, removes the new credential,
writes the working value back as the latest version (with the state that says so and why the rotation
failed, never a value), and disables the failed version (marked ``failed``). The order makes every
crash safe: until the restore lands, the latest version still says ``validating`` and the next run
rolls back again; the failed version is disabled last, and a run that finds a ``FailureReason``
finishes that too (`steps.finish_interrupted_rollback`).

With nothing to restore, removing the new credential would leave no working value at all, so it
stays (still ``validating``) while it exists, or, once it is gone too, a fresh rotation replaces it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from rotation.domain import policy
from rotation.domain.errors import GuardError, ValidationFailedError
from rotation.domain.model import Action, RotationState, SecretValue, SecretVersion
from rotation.domain.state import failed_tags, tagged_credential_id, tagged_rotation_id
from rotation.service.run import Observed, Run


async def roll_back(
    run: Run, seen: Observed, failed: SecretVersion, reason: str, *, aadsts_code: int | None = None
) -> Observed:
    """Remove the new credential, restore the last working value as the latest version, disable
    the failed version and record why (without any value); then raise :class:`ValidationFailedError`.

    Returns (instead of raising) only when nothing can be restored and the new credential is gone
    too: the returned world says so, and the caller rotates afresh.
    """
    failed_key = seen.state.credential_id
    run.event("RotationRollingBack", keyId=failed_key, reason=reason, level=logging.WARNING)
    # Find what to restore before touching anything: with nothing to restore, removing the new
    # credential would leave no working value at all.
    previous = await last_working_version(run, seen, failed, exclude=failed_key)
    if previous is None:
        return await _keep_failed(run, seen, failed, reason, aadsts_code)
    if failed_key:
        seen, _ = await run.remove_password(seen, failed_key)
    # The restored value belongs to the credential this rotation meant to retire (or to the one its
    # own version was tagged with); with neither known, it carries no state at all.
    restored_key = tagged_credential_id(previous.version) or seen.state.retire_credential_id
    restored_state = seen.state.evolve(
        credential_id=restored_key or None,
        rotation_id=tagged_rotation_id(previous.version),
        state=RotationState.ACTIVE if restored_key else None,
        retire_credential_id=None,
        retire_after=None,
        failure_reason=f"rotation {seen.state.rotation_id} rolled back: {reason}",
    )
    run.check_lock()
    written = await run.vault.set(
        run.name,
        previous.value,
        tags=restored_state.to_tags(failed.tags),
        content_type=previous.version.content_type,
        not_before=previous.version.not_before,
        expires=previous.version.expires,
    )
    seen = run.record(seen, restored_state)
    run.report.vault_version = written.version
    if failed.version is not None and failed.enabled:
        run.check_lock()
        await run.vault.update(run.name, failed.version, tags=failed_tags(failed), enabled=False)
    run.report.did(Action.ROLLED_BACK)
    raise ValidationFailedError(
        f"The new credential {failed_key} for secret '{run.name}' was not proven ({reason}) and was "
        "rolled back; the previous value is the latest version again.",
        aadsts_code=aadsts_code,
    )


async def _keep_failed(
    run: Run, seen: Observed, failed: SecretVersion, reason: str, aadsts_code: int | None
) -> Observed:
    """No earlier version holds a working value (its credential is gone, or it never was one).

    If the new credential still exists it stays, still `validating`, and the next run validates it
    again: a slow Entra is no reason to destroy the only candidate. If it is gone too, nothing
    here can work, so a fresh rotation starts at once.
    """
    assert failed.version is not None
    failed_key = seen.state.credential_id
    note = f"rotation {seen.state.rotation_id} not proven: {reason}; no earlier working version to restore"
    if failed_key and seen.app.credential(failed_key) is not None:
        state = seen.state.evolve(failure_reason=note)
        run.check_lock()
        await run.vault.update(run.name, failed.version, tags=state.to_tags(failed.tags))
        run.record(seen, state)
        raise ValidationFailedError(
            f"The new credential {failed_key} for secret '{run.name}' was not proven ({reason}). No earlier "
            "version holds a working value, so it stays in place and the next run validates it again.",
            aadsts_code=aadsts_code,
        )
    run.report.warn(f"{note}; its credential is gone too, so a fresh rotation replaces it")
    return run.record(seen, seen.state.evolve(retire_credential_id=None, retire_after=None, failure_reason=note))


async def last_working_version(
    run: Run, seen: Observed, failed: SecretVersion, *, exclude: str | None
) -> SecretValue | None:
    """The newest enabled version before the failed one whose value can still sign in, as far as
    can be told without signing in: its credential exists (tagged) or its hint matches a live one
    (untagged), and it is a plausible secret value (never a Secret ID)."""
    credentials = [c for c in seen.app.password_credentials if c.key_id.lower() != (exclude or "").lower()]
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
        credential_id = tagged_credential_id(version)
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
