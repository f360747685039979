"""Rotate a managed Key Vault certificate: addKey / prove / removeKey, every step signed in Key Vault.

A managed certificate is a Key Vault certificate whose latest version carries a managed secret's tags
(``ProviderAddress``; the app binds it as ``rotator-binding:{vault host}/{certificate}``, the same rule
as a secret: a certificate and its secret share one name in a vault). Its state lives in the same
rotator tags (:class:`~rotation.domain.state.ManagedSecret`), on the latest certificate version, and
its private keys never leave Key Vault: every JWT is signed with Key Vault's ``sign``.

The steps, in order, each recognising whether its work is done (a crash anywhere converges):

1. :func:`observe`: the latest version (with its DER), the version list, the app's key credentials;
2. :func:`remove_orphans`: keys the rotator added for this certificate that no tag names (a crash
   after a new version was replaced), only while the latest version is proven;
3. :func:`record_key`: a latest version whose certificate is on the app but whose tags do not say so
   (a crash after ``addKey``, or an operator's version being adopted) gets its ``CredentialId``;
4. :func:`add_pending_key`: a version the rotator created (``RotationId``, no ``CredentialId``) whose
   certificate is not on the app yet gets ``addKey``, with a proof signed by a certificate the app
   accepts now (the current one), and its ``CredentialId`` (state ``validating``);
5. :func:`finish_validation`: ``validating`` → client-assertion sign-ins signed by the NEW version's
   key, the password rule (:class:`~rotation.domain.policy.ValidationProgress`) → ``active`` with the
   old key due after the grace period; unproven, the old key stays and the failure is counted;
6. :func:`retire`: the old key, once due (and the sign-in evidence allows), with ``removeKey`` and a
   proof signed by the new key; then the tags are cleared (last);
7. :func:`rotate`: when due (or forced, or the current key is gone): a new version from the
   certificate's own policy, tagged with its ``RotationId`` from its creation, then steps 4-6 at once.

While a new key is unproven the old key stays on the app: the app never lacks a working certificate.
When no certificate the app accepts is in Key Vault (first adoption, or every key expired), nothing
is written and :class:`~rotation.domain.errors.NoUsableCertificateError` says what a person must do once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import ClassVar

from rotation.domain import evidence, policy
from rotation.domain.assertions import client_assertion, possession_proof
from rotation.domain.certificates import CertificateVersion, KeyApplication, KeyCredential
from rotation.domain.errors import (
    CertificateNotFoundError,
    EvidenceUnavailableError,
    NotBoundError,
    NotManagedError,
    NoUsableCertificateError,
    OwnIdentityError,
    RotationError,
    SupersededError,
    UnknownVaultError,
    ValidationFailedError,
)
from rotation.domain.model import (
    Action,
    Binding,
    Outcome,
    ReconcileRequest,
    RotationState,
    Sensitive,
    Tag,
    new_rotation_id,
    rotator_display_name,
)
from rotation.domain.state import ManagedSecret, credential_issued
from rotation.service.certificate_ports import AssertionProbe, CertificateVault, KeyDirectory
from rotation.service.ports import Clock, HeldLock, SystemClock
from rotation.service.run import Report, RunScope, remove_found_orphans
from rotation.settings import SecretPolicy, Settings

#: How far the rotator's clock may be behind Key Vault's and Entra's (which accept tokens 5 minutes
#: early): a certificate issued a moment ago may start "in the future" here and still sign.
CLOCK_SKEW = timedelta(minutes=5)

__all__ = ["CLOCK_SKEW", "CertificateReconciler", "CertificateRun", "Seen", "vault_name_of"]


@dataclass(frozen=True)
class Seen:
    """The certificate and its app as far as this run knows them (each step returns the new copy)."""

    latest: CertificateVersion
    versions: tuple[CertificateVersion, ...]
    state: ManagedSecret
    app: KeyApplication
    policy: SecretPolicy
    tenant_id: str
    binding: Binding

    @property
    def latest_key(self) -> KeyCredential | None:
        """The app's key credential of the latest version's certificate, if it has it."""
        return self.app.by_thumbprint(self.latest.thumbprint)

    def with_state(self, state: ManagedSecret) -> Seen:
        return replace(self, state=state)

    def with_keys(self, keys: tuple[KeyCredential, ...]) -> Seen:
        return replace(self, app=self.app.with_keys(keys))


def vault_name_of(host: str, alias: str) -> str:
    """The vault's own name for ``az --keyvault`` (the first label of an Azure vault host), else the alias."""
    first, _, rest = host.partition(".")
    return first if rest.startswith("vault.") else alias


@dataclass(frozen=True)
class CertificateRun(RunScope):
    """One reconcile of one certificate: the request, the ports, and the report it fills."""

    request: ReconcileRequest
    vault: CertificateVault
    directory: KeyDirectory
    probe: AssertionProbe
    settings: Settings
    clock: Clock
    sleep: Callable[[float], Awaitable[None]]
    timer: Callable[[], float] = time.monotonic
    dry_run: bool = False
    held: HeldLock | None = None
    report: Report = field(default_factory=Report)
    #: The clock of the JWTs' ``nbf``/``exp``: Graph and Entra check them against real time, even where
    #: ``clock`` (what is due, what is valid) is a simulation's (the demo's days in seconds).
    token_clock: Clock = field(default_factory=SystemClock)

    # ``secret`` like the secret flow's lines (alerts and lifecycle subscribers read it), and ``kind``.
    KIND_DIMS: ClassVar[dict[str, str]] = {"kind": "certificate"}

    def no_usable(self, app_id: str, reason: str) -> NoUsableCertificateError:
        vault_name = vault_name_of(self.host, self.request.vault)
        return NoUsableCertificateError(self.request.vault, self.name, app_id, vault_name, reason)

    def is_emergency(self, seen: Seen) -> bool:
        return self.request.emergency or seen.state.emergency_requested is not None

    async def write_state(self, seen: Seen, state: ManagedSecret) -> Seen:
        """``state`` into the latest version's tags (the step's last write), and recorded."""
        version = seen.latest.version
        assert version is not None
        self.check_lock()
        updated = await self.vault.update_certificate(self.name, version, tags=state.to_tags(seen.latest.tags))
        self.report.state = state
        latest = replace(seen.latest, properties=updated.properties)
        return replace(seen, latest=latest, state=state)


@dataclass
class CertificateReconciler:
    settings: Settings
    directory: KeyDirectory
    vaults: Mapping[str, CertificateVault]
    probe: AssertionProbe
    clock: Clock
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    timer: Callable[[], float] = time.monotonic
    #: See `CertificateRun.token_clock`; unit tests pass their fake clock.
    token_clock: Clock = field(default_factory=SystemClock)

    async def reconcile(
        self, request: ReconcileRequest, *, dry_run: bool = False, held: HeldLock | None = None
    ) -> Outcome:
        """Bring one certificate to its desired state; a `RotationError` is carried by the outcome."""
        vault = self.vaults.get(request.vault.lower())
        if vault is None:
            error = UnknownVaultError(request.vault, self.vaults)
            return Outcome(request.operation_id, request.vault, request.secret, Action.SKIPPED).with_error(error)
        run = CertificateRun(
            request,
            vault,
            self.directory,
            self.probe,
            self.settings,
            self.clock,
            self.sleep,
            self.timer,
            dry_run,
            held,
            token_clock=self.token_clock,
        )
        started = self.timer()
        run.event("CertificateReconcileStarted", reason=request.reason or None, dryRun=dry_run)
        try:
            seen = await observe(run)
            seen = await remove_orphans(run, seen)
            seen = await record_key(run, seen)
            require_current(run, seen)
            seen = await add_pending_key(run, seen)
            seen, proven = await finish_validation(run, seen)
            seen = await retire(run, seen)
            if not proven:
                seen = await rotate(run, seen)
        except RotationError as error:
            run.report.timings["total"] = self.timer() - started
            run.event("ReconcileFailed", errorCode=error.code, error=error.message, level=logging.ERROR)
            return run.report.outcome(request, error=error)
        run.report.timings["total"] = self.timer() - started
        wait = policy.requeue_after(
            seen.state,
            seen.latest.properties,
            seen.policy.rotate_before_days,
            self.clock.now(),
            validation_deadline=timedelta(seconds=self.settings.validation_deadline_seconds),
        )
        outcome = run.report.outcome(request, requeue_after=wait)
        run.event(
            "ReconcileCompleted" if outcome.action is Action.NONE else "RotationCompleted",
            action=outcome.action.value,
            state=outcome.state.value if outcome.state else None,
            createdKeyId=outcome.created_key_id,
            vaultVersion=outcome.vault_version,
            retiredKeyIds=",".join(outcome.retired_key_ids) or None,
            validationAttempts=outcome.validation_attempts or None,
        )
        return outcome


# --- 1. observe -----------------------------------------------------------------------------------
async def observe(run: CertificateRun) -> Seen:
    latest = await run.vault.get_certificate(run.name)
    if latest is None:
        raise CertificateNotFoundError(run.request.vault, run.name)
    if not latest.managed:
        raise NotManagedError(run.request.vault, run.name)
    state = ManagedSecret.from_tags(latest.tags, vault=run.request.vault, name=run.name)
    run.report.state = state
    own = run.settings.own_client_id
    if own and state.app_id == own.lower():
        raise OwnIdentityError(run.request.vault, run.name, state.app_id)
    certificate_policy = run.settings.policy_for(latest.tags, run.name, run.request.vault)
    run.report.warnings.extend(certificate_policy.warnings)
    tenant_id = certificate_policy.require_tenant(run.request.vault, run.name)
    app = await run.directory.get_key_application(state.app_id)
    binding = app.binding_for(run.host, run.name)
    if binding is None:
        raise NotBoundError(run.request.vault, run.name, state.app_id, run.host)
    versions = tuple(await run.vault.list_certificate_versions(run.name))
    seen = Seen(latest, versions, state, app, certificate_policy, tenant_id, binding)
    if state.credential_id is not None and app.key(state.credential_id) is None:
        # Deleted in Entra (or never added): forget it, so that the steps below re-add this version's
        # certificate (a rotator version) or rotate (an adopted one, whose signer may survive).
        run.report.warn(f"key {state.credential_id} named by the CredentialId tag is not on app {state.app_id}")
        run.event("CredentialMissing", keyId=state.credential_id, appId=state.app_id, level=logging.ERROR)
    return seen


def signer(run: CertificateRun, seen: Seen, *, exclude: str | None = None) -> CertificateVersion | None:
    """A version of this certificate whose key the app accepts now, to sign a proof with: the latest
    such (Key Vault signs with it: enabled, not expired; the app has its certificate, valid), never the
    key ``exclude`` (the one being removed)."""
    now = run.clock.now()
    candidates = [seen.latest, *sorted(seen.versions, key=_created, reverse=True)]
    for version in candidates:
        key = seen.app.by_thumbprint(version.thumbprint)
        usable_key = key is not None and key.is_valid(now, skew=CLOCK_SKEW)
        if version.version is None or not version.usable_at(now) or key is None or not usable_key:
            continue
        if exclude is not None and key.key_id.lower() == exclude.lower():
            continue
        return version
    return None


def _created(version: CertificateVersion) -> float:
    created = version.properties.created
    return created.timestamp() if created else 0.0


async def signed_proof(run: CertificateRun, seen: Seen, by: CertificateVersion) -> Sensitive:
    """A proof of possession for the app, signed in Key Vault by the key behind ``by``."""
    assert by.thumbprint is not None and by.version is not None
    proof = possession_proof(seen.app.object_id, by.thumbprint, run.token_clock.now())
    signature = await run.vault.sign(run.name, by.version, proof.digest)
    return proof.signed(signature)


# --- 2. orphans -----------------------------------------------------------------------------------
async def remove_orphans(run: CertificateRun, seen: Seen) -> Seen:
    """Keys the rotator added for this certificate that no tag names and that are not the latest
    version's, once older than the orphan margin; only while the latest version is proven (an
    unproven rotation keeps every key that may be the working one)."""
    if seen.state.state is not RotationState.ACTIVE:
        return seen
    latest_key = seen.latest_key
    referenced = set(seen.state.referenced_key_ids) | ({latest_key.key_id.lower()} if latest_key else set())
    found = policy.orphans(
        seen.app.keys,
        run.host,
        run.name,
        referenced,
        run.clock.now(),
        timedelta(seconds=run.settings.orphan_margin_seconds),
    )
    return await remove_found_orphans(run, seen, found, lambda now, key_id: remove_key(run, now, key_id), "key")


# --- 3. a key on the app that the tags do not name -----------------------------------------------
async def record_key(run: CertificateRun, seen: Seen) -> Seen:
    """The latest version's certificate is on the app but ``CredentialId`` does not name it: a crash
    after ``addKey`` (a rotator version: validate it next) or an operator's version (adopted: active)."""
    key = seen.latest_key
    if key is None or seen.state.credential_id == key.key_id.lower():
        return seen
    if run.dry_run:
        run.report.warn(f"would record key {key.key_id} in the tags")
        return seen
    ours = seen.state.rotation_id is not None and seen.state.state is not RotationState.ACTIVE
    if not ours:
        run.report.did(Action.ADOPTED)
        run.event("CredentialAdopted", keyId=key.key_id)
    state = seen.state.evolve(
        credential_id=key.key_id.lower(),
        state=RotationState.VALIDATING if ours else RotationState.ACTIVE,
    )
    return await run.write_state(seen, state)


def require_current(run: CertificateRun, seen: Seen) -> None:
    """A latest version that is not on the app and that no rotation created (first adoption, or a
    version someone else made) cannot be taken over: Graph's ``addKey`` would need a person's say."""
    if seen.latest_key is None and seen.state.rotation_id is None:
        raise run.no_usable(seen.state.app_id, "its latest version's certificate is not on the app")


# --- 4. addKey for a version the rotator created ---------------------------------------------------
async def add_pending_key(run: CertificateRun, seen: Seen) -> Seen:
    """``addKey`` for the latest version when the rotator created it (``RotationId``) and its
    certificate is not on the app, with a proof signed by a key the app accepts now; then its
    ``CredentialId`` (``validating``), the write that completes the step."""
    rotation_id = seen.state.rotation_id
    # An active version whose key is gone is not re-added: `rotate` replaces it.
    if seen.latest_key is not None or rotation_id is None or seen.state.state is RotationState.ACTIVE:
        return seen
    if run.dry_run:
        run.report.warn(f"would add the certificate of version {seen.latest.version} to the app")
        return seen
    by = signer(run, seen)
    if by is None:
        raise run.no_usable(seen.state.app_id, "no version of it holds a key the app accepts now")
    if seen.latest.cer is None:
        raise ValueError("the latest version was read without its certificate")
    display_name = rotator_display_name(run.host, run.name, rotation_id)
    proof = await signed_proof(run, seen, by)
    started = run.timer()
    run.check_lock()
    created = await run.directory.add_key(
        seen.app.object_id, seen.latest.cer, display_name, proof, app_id=seen.state.app_id
    )
    run.report.timings["create"] = run.timer() - started
    run.report.created_key_id = created.key_id
    run.event("KeyAdded", keyId=created.key_id, thumbprint=created.thumbprint, signedBy=by.version, end=created.end)
    seen = seen.with_keys((*seen.app.keys, created))
    state = seen.state.evolve(credential_id=created.key_id.lower(), state=RotationState.VALIDATING)
    return await run.write_state(seen, state)


# --- 5. prove the new certificate -------------------------------------------------------------------
async def finish_validation(run: CertificateRun, seen: Seen) -> tuple[Seen, bool]:
    """Prove a ``validating`` version with client assertions signed by its own key; ``True`` when it
    became active in this run (then no second rotation)."""
    if seen.state.state is not RotationState.VALIDATING or seen.latest_key is None:
        return seen, False
    backoff = seen.state.backoff
    if backoff is not None and backoff.waits_at(run.clock.now()) and not run.request.forced:
        run.report.warn(f"validation of key {seen.state.credential_id} waits for the back-off")
        return seen, False
    if run.dry_run:
        run.report.warn(f"would validate key {seen.state.credential_id}")
        return seen, False
    started = run.timer()
    progress = await prove(run, seen)
    run.report.add_time("validate", run.timer() - started)
    if progress.verdict is not policy.Verdict.PASSED:
        await record_failure(run, seen, progress)
        raise ValidationFailedError(
            f"The new certificate (version {seen.latest.version}, key {seen.state.credential_id}) of '{run.name}' "
            f"was not proven ({progress.reason}); the old key stays on the app.",
            aadsts_code=progress.last_code,
            outage=progress.last_transient,
        )
    run.report.did(Action.VALIDATED)
    run.event("ValidationPassed", keyId=seen.state.credential_id, attempts=run.report.attempts)
    now = run.clock.now()
    retire_at = None
    if seen.state.retire_credential_id:
        retire_at = policy.retire_after(now, seen.policy.grace_hours, run.is_emergency(seen)) or now.replace(
            microsecond=0
        )
    state = seen.state.evolve(
        state=RotationState.ACTIVE, failure_reason=None, backoff=None, emergency_requested=None, retire_after=retire_at
    )
    seen = await run.write_state(seen, state)
    # The emergency is recorded as RetireAfter=now; `retire` must still treat it as one this run.
    run.event(
        "CertificateActivated", keyId=state.credential_id, vaultVersion=seen.latest.version, retireAfter=retire_at
    )
    return seen, True


async def prove(run: CertificateRun, seen: Seen) -> policy.ValidationProgress:
    """Client-assertion sign-ins, each with a fresh assertion (its own ``jti``) that Key Vault signs
    with the new version's key, until the consecutive-success rule passes or fails (the pace and the
    deadline of password validation: :meth:`ValidationProgress.next_delay`; the catalogue takes AADSTS700027,
    "key not found", for propagation, like 7000215 for a new password)."""
    latest = seen.latest
    assert latest.cer is not None and latest.version is not None
    progress = policy.ValidationProgress(
        needed=run.settings.validation_successes,
        deadline_seconds=float(run.settings.validation_deadline_seconds),
    )
    audience = run.probe.token_endpoint(seen.tenant_id)
    started = run.timer()
    while True:
        run.check_lock()
        draft = client_assertion(seen.state.app_id, audience, latest.cer, run.token_clock.now())
        signature = await run.vault.sign(run.name, latest.version, draft.digest)
        left = progress.deadline_seconds - (run.timer() - started)
        result = await run.probe.probe_assertion(
            seen.tenant_id, seen.state.app_id, draft.signed(signature), within=left
        )
        run.report.attempts += 1
        progress = progress.after(result, run.timer() - started)
        if progress.finished:
            return progress
        remaining = progress.deadline_seconds - (run.timer() - started)
        await run.sleep(max(0.0, min(progress.next_delay(), remaining)))


async def record_failure(run: CertificateRun, seen: Seen, progress: policy.ValidationProgress) -> None:
    """Count the failed proof in ``Backoff`` on the new version (which stays ``validating``: the next
    attempt waits, and after six the rotator stops with one ``RotationStopped``); the old key stays."""
    if progress.last_transient:
        return  # an outage says nothing about the certificate
    backoff = policy.backoff_after(seen.state.backoff, run.clock.now())
    state = seen.state.evolve(backoff=backoff, failure_reason=f"not proven: {progress.reason}")
    try:
        await run.write_state(seen, state)
    except RotationError as error:
        run.report.warn(f"could not record the failure for the back-off: {error.message}")
        return
    run.event(
        "RotationStopped" if backoff.stopped else "RotationBackoff",
        failures=backoff.failures,
        nextAttempt=backoff.next_attempt,
        level=logging.ERROR if backoff.stopped else logging.WARNING,
    )


# --- 6. retire the old key ---------------------------------------------------------------------------
async def retire(run: CertificateRun, seen: Seen) -> Seen:
    """``removeKey`` of the old key once the new version is proven and the grace period (and the
    sign-in evidence) allow; then clear the tags (last, so that a crash before repeats the step)."""
    key_id = seen.state.retire_credential_id
    if key_id is None or seen.state.state is not RotationState.ACTIVE:
        return seen
    emergency = run.is_emergency(seen)
    if not (policy.retirement_due(seen.state.retire_after, run.clock.now()) or emergency):
        return seen
    if not emergency:
        hold = await evidence_hold(run, seen, key_id)
        if hold is not None:
            run.report.warn(f"retirement of key {key_id} held: {hold.reason}")
            run.event("RetirementHeld", keyId=key_id, reason=hold.reason, lastSignIn=hold.last_sign_in)
            if run.dry_run or seen.state.retirement_held == hold.reason:
                return seen
            return await run.write_state(seen, seen.state.evolve(retirement_held=hold.reason))
    if run.dry_run:
        run.report.warn(f"would retire key {key_id}")
        return seen
    await ensure_latest(run, seen)
    old = seen.app.key(key_id)
    current = {k.lower() for k in (seen.state.credential_id, seen.latest_key.key_id if seen.latest_key else None) if k}
    if key_id.lower() in current:
        # Never the key consumers sign in with now, whatever a tag says.
        run.report.warn(f"refused to retire key {key_id}: it is the current version's key")
        run.event("RetirementRefused", keyId=key_id, level=logging.WARNING)
    elif old is not None and not may_remove(run, seen, old):
        run.report.warn(
            f"refused to retire key {key_id}: the rotator did not add it for {run.host}/{run.name}, the binding "
            "does not name it and it is no version of this certificate (a forged RetireCredentialId?)"
        )
        run.event("RetirementRefused", keyId=key_id, level=logging.WARNING)
    else:
        started = run.timer()
        seen, removed = await remove_key(run, seen, key_id)
        run.report.timings["retire"] = run.timer() - started
        run.report.retired.append(key_id)
        run.report.did(Action.RETIRED)
        run.event("CredentialRetired", keyId=key_id, alreadyGone=not removed)
        seen = await disable_retired_versions(run, seen, old)
    state = seen.state.evolve(retire_credential_id=None, retire_after=None, retirement_held=None)
    return await run.write_state(seen, state)


def may_remove(run: CertificateRun, seen: Seen, key: KeyCredential) -> bool:
    """Only a key the rotator added for this vault host and certificate (its record of intent), the
    one the app's binding names, or the certificate of one of this certificate's own versions (an
    adopted one: whoever could import it into this certificate holds its private key anyway)."""
    if key.created_by_rotator_for(run.host, run.name):
        return True
    if seen.binding.adopted_key_id is not None and seen.binding.adopted_key_id == key.key_id.lower():
        return True
    return key.thumbprint is not None and any(v.thumbprint == key.thumbprint for v in seen.versions)


async def remove_key(run: CertificateRun, seen: Seen, key_id: str) -> tuple[Seen, bool]:
    """``removeKey`` after a fresh read of the app (still bound, the key unchanged), with a proof
    signed by a key the app accepts that is not the one going."""
    fresh = await run.directory.get_key_application(seen.state.app_id)
    seen = seen.with_keys(fresh.keys)
    if fresh.binding_for(run.host, run.name) is None:
        raise NotBoundError(run.request.vault, run.name, seen.state.app_id, run.host)
    if fresh.key(key_id) is None:
        return seen, False
    by = signer(run, seen, exclude=key_id)
    if by is None:
        raise run.no_usable(seen.state.app_id, f"no key but {key_id} can sign the removal")
    proof = await signed_proof(run, seen, by)
    run.check_lock()
    removed = await run.directory.remove_key(seen.app.object_id, key_id, proof, app_id=seen.state.app_id)
    wanted = key_id.lower()
    return seen.with_keys(tuple(k for k in seen.app.keys if k.key_id.lower() != wanted)), removed


async def disable_retired_versions(run: CertificateRun, seen: Seen, old: KeyCredential | None) -> Seen:
    """Disable the older versions whose certificate was the retired key: nothing signs in with them
    any more. Never the latest version."""
    if old is None or old.thumbprint is None:
        return seen
    for version in seen.versions:
        if (
            version.version in (None, seen.latest.version)
            or not version.enabled
            or version.thumbprint != old.thumbprint
        ):
            continue
        run.check_lock()
        await run.vault.update_certificate(run.name, str(version.version), enabled=False)
        run.event("VersionDisabled", vaultVersion=version.version, keyId=old.key_id)
    return seen


async def ensure_latest(run: CertificateRun, seen: Seen) -> None:
    """Stop (:class:`SupersededError`) when someone created a newer version meanwhile."""
    latest = await run.vault.get_certificate(run.name)
    if latest is None or latest.version != seen.latest.version:
        found = latest.version if latest is not None else None
        run.event("RunSuperseded", vaultVersion=seen.latest.version, latestVersion=found, level=logging.WARNING)
        raise SupersededError(run.request.vault, run.name, seen.latest.version, found)


async def evidence_hold(run: CertificateRun, seen: Seen, key_id: str) -> evidence.Hold | None:
    """The sign-in report's word on the old key (``ROTATION_RETIREMENT_EVIDENCE``), as for passwords."""
    mode = run.settings.retirement_evidence
    if mode is evidence.EvidenceMode.OFF:
        return None
    report = await run.directory.credential_sign_ins(seen.state.app_id)
    if report is None:
        if mode is evidence.EvidenceMode.REQUIRED:
            raise EvidenceUnavailableError(seen.state.app_id)
        run.report.warn("the sign-in report is not readable: the grace period decides")
        return None
    old = seen.app.key(key_id)
    return evidence.retirement_hold(
        report.get(key_id.lower()),
        key_id=key_id,
        active_since=seen.latest.properties.created or run.clock.now(),
        now=run.clock.now(),
        quiet=timedelta(hours=run.settings.evidence_quiet_hours),
        old_expires=old.end if old is not None else None,
    )


# --- 7. rotate --------------------------------------------------------------------------------------
async def rotate(run: CertificateRun, seen: Seen) -> Seen:
    """A new version when due (or forced, an emergency, or the current key gone), then steps 4-6."""
    current = seen.app.key(seen.state.credential_id) if seen.state.credential_id else None
    if seen.state.state is not RotationState.ACTIVE:
        return seen  # a rotation under way (or unproven) comes first; the back-off paces its retries
    gone = seen.state.credential_id is not None and current is None
    emergency = run.is_emergency(seen)
    now = run.clock.now()
    forced = run.request.forced or emergency or gone
    decision = policy.rotation_due(
        seen.latest.expires,
        now,
        seen.policy.rotate_before_days,
        forced,
        issued=credential_issued(seen.latest.properties),
    )
    if not decision.due:
        return seen
    if seen.state.retire_credential_id and not emergency:
        run.report.warn(f"rotation is due ({decision.reason}) but waits for key {seen.state.retire_credential_id}")
        return seen
    backoff = seen.state.backoff
    if backoff is not None and backoff.waits_at(now) and not run.request.forced:
        run.report.warn(f"rotation is due ({decision.reason}) but waits for the back-off")
        return seen
    # Before any write: a new version is useless unless some key the app accepts can sign its addKey.
    if signer(run, seen) is None:
        reason = (
            "its current version's certificate is not on the app"
            if current is None and not gone
            else "every key of it that the app had has expired or was removed"
        )
        raise run.no_usable(seen.state.app_id, reason)
    if run.dry_run:
        run.report.warn(f"would rotate: {decision.reason}")
        return seen
    if seen.state.retire_credential_id and emergency:
        seen = await retire(run, seen)  # one old key at a time: the pending one goes first
    rotation_id = new_rotation_id(now)
    retire_target = current.key_id.lower() if current is not None else None
    state = seen.state.evolve(
        credential_id=None,
        rotation_id=rotation_id,
        state=None,
        retire_credential_id=retire_target,
        retire_after=None,
        failure_reason=None,
        backoff=None,
        emergency_requested=now.replace(microsecond=0) if emergency else None,
        retirement_held=None,
    )
    run.event("RotationStarted", reason=decision.reason, rotationId=rotation_id, retireCredentialId=retire_target)
    run.check_lock()
    started = run.timer()
    # The RotationId is in the tags from the version's creation: a crash from here on is recognisable.
    created = await run.vault.create_version(run.name, tags=state.to_tags(seen.latest.tags))
    run.report.timings["store"] = run.timer() - started
    run.report.vault_version = created.version
    run.report.did(Action.ROTATED)
    run.report.state = state
    run.event("CertificateVersionCreated", vaultVersion=created.version, thumbprint=created.thumbprint)
    if created.tags.get(Tag.RotationId) != rotation_id:
        # The create waited for someone else's pending version: theirs to finish; the next run looks.
        raise SupersededError(run.request.vault, run.name, seen.latest.version, created.version)
    seen = replace(seen, latest=created, versions=(created, *seen.versions), state=state)
    seen = await add_pending_key(run, seen)
    seen, _ = await finish_validation(run, seen)
    return await retire(run, seen)
