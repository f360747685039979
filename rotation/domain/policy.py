"""Pure decisions: is a rotation due, how long a new credential lives, when the old one goes,
which credentials are orphans, which credential an unmanaged value belongs to, whether a value is
safe to store, whether validation has proven a new secret, what a listed secret needs
(:func:`assess`) and when to look at it again (:func:`requeue_after`).

No I/O and no clock: every function takes ``now``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final, NamedTuple

from rotation.domain import aadsts
from rotation.domain.errors import GuardError, PolicyBlockedError, TagError
from rotation.domain.model import (
    PasswordCredential,
    ProbeResult,
    RotationState,
    SecretVersion,
    Sensitive,
    Tag,
    ensure_utc,
    format_utc,
    is_guid,
)
from rotation.domain.state import Backoff, ManagedSecret, SecretStatus, credential_issued
from rotation.domain.state import referenced_key_ids as referenced_key_ids

if TYPE_CHECKING:
    from rotation.settings import Settings


class Decision(NamedTuple):
    due: bool
    reason: str


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if abs(days) >= 1:
        return f"{math.floor(abs(days))} day(s)"
    return f"{math.floor(abs(delta.total_seconds()) / 3600)} hour(s)"


def _window(expires: datetime, rotate_before_days: int, issued: datetime | None) -> timedelta:
    window = timedelta(days=rotate_before_days)
    if issued is not None:
        lifetime = expires - ensure_utc(issued)
        if lifetime > timedelta(0) and window >= lifetime:
            window = lifetime / 3
    return window


def rotation_due(
    expires: datetime | None,
    now: datetime,
    rotate_before_days: int,
    forced: bool = False,
    *,
    issued: datetime | None = None,
) -> Decision:
    """Is a rotation due? Yes when forced, when the secret has no expiry, or when its expiry is
    within ``rotate_before_days``.

    ``issued`` (when the credential started) guards against a window at least as long as the
    credential's whole lifetime, as happens when a policy clamped the lifetime: the credential
    would be due again the moment it was created and rotate on every sweep, so the window shrinks
    to a third of the lifetime instead. Pass it only for credentials the rotator created; for a
    secret someone stored by hand close to its expiry, shrinking the window would delay a rotation
    that is genuinely due.
    """
    now = ensure_utc(now)
    if forced:
        return Decision(True, "rotation was requested")
    if expires is None:
        return Decision(True, "the secret has no expiry date; a rotation gives it one")
    expires = ensure_utc(expires)
    window = _window(expires, rotate_before_days, issued)
    if expires <= now:
        return Decision(True, f"expired {_days(now - expires)} ago ({format_utc(expires)})")
    remaining = expires - now
    if remaining <= window:
        return Decision(True, f"expires in {_days(remaining)} ({format_utc(expires)}), within the rotation window")
    return Decision(False, f"expires {format_utc(expires)}; due from {format_utc(expires - window)}")


def rotation_due_at(
    expires: datetime | None, rotate_before_days: int, *, issued: datetime | None = None
) -> datetime | None:
    """From when a rotation is due (the same window as :func:`rotation_due`); ``None`` for a secret
    without expiry, which is due at once."""
    if expires is None:
        return None
    expires = ensure_utc(expires)
    return expires - _window(expires, rotate_before_days, issued)


class Lifetime(NamedTuple):
    start: datetime
    end: datetime
    clamped: bool


#: How far under a policy's maximum lifetime a clamped credential ends, so that rounding or a
#: slightly later server clock does not push it over the limit.
CLAMP_MARGIN: Final = timedelta(minutes=1)


def new_credential_lifetime(
    now: datetime, validity_days: int, policy_max_lifetime: timedelta | None = None
) -> Lifetime:
    """Start and end of a new credential: ``validity_days`` from now, clamped to just under an app
    management policy's ``maxLifetime``.

    Times are whole seconds because Key Vault keeps ``exp`` in whole seconds and the version's
    ``exp`` must equal the credential's ``endDateTime``. Raises :class:`PolicyBlockedError` when the
    policy leaves no usable lifetime.
    """
    start = ensure_utc(now).replace(microsecond=0)
    wanted = timedelta(days=validity_days)
    if policy_max_lifetime is None:
        return Lifetime(start, start + wanted, False)
    allowed = policy_max_lifetime - CLAMP_MARGIN
    allowed = timedelta(seconds=math.floor(allowed.total_seconds()))
    if allowed <= timedelta(0):
        raise PolicyBlockedError(
            f"The app management policy limits new passwords to {policy_max_lifetime}, too short to rotate into."
        )
    if wanted <= allowed:
        return Lifetime(start, start + wanted, False)
    return Lifetime(start, start + allowed, True)


def retire_after(now: datetime, grace_hours: int, emergency: bool) -> datetime | None:
    """When the old credential may be removed once the new one is proven; ``None`` means at once
    (an emergency roll, where the old secret is presumed leaked, or no grace period)."""
    if emergency or grace_hours <= 0:
        return None
    return ensure_utc(now).replace(microsecond=0) + timedelta(hours=grace_hours)


#: After a rotation fails, the next unforced one waits 1 h, then 2, 4, 8, 16 h (at most a day), and
#: after the sixth failure in a row the rotator stops: ~31 h of attempts, and one alert, instead of
#: a new credential and an alert every sweep until the secret expires.
BACKOFF_FIRST: Final = timedelta(hours=1)
BACKOFF_LONGEST: Final = timedelta(hours=24)
BACKOFF_STOP_AFTER: Final = 6


def backoff_after(previous: Backoff | None, now: datetime) -> Backoff:
    """The backoff after one more failed rotation (``stopped`` once ``BACKOFF_STOP_AFTER`` failed)."""
    failures = (previous.failures if previous else 0) + 1
    if failures >= BACKOFF_STOP_AFTER:
        return Backoff(failures, None)
    wait = min(BACKOFF_LONGEST, BACKOFF_FIRST * 2 ** (failures - 1))
    return Backoff(failures, ensure_utc(now).replace(microsecond=0) + wait)


def retirement_due(retire_after: datetime | None, now: datetime) -> bool:
    """Whether the credential waiting for retirement may go now (``None`` = immediately)."""
    return retire_after is None or ensure_utc(now) >= ensure_utc(retire_after)


def orphans(
    credentials: Iterable[PasswordCredential],
    vault: str,
    secret: str,
    referenced_key_ids: Iterable[str],
    now: datetime,
    margin: timedelta,
    *,
    legacy_alias: str | None = None,
) -> list[PasswordCredential]:
    """Credentials this rotator created for *this* secret that no tag refers to any more.

    A crash between ``addPassword`` and the Key Vault write leaves such a credential. ``vault`` is
    the vault HOST; ``legacy_alias`` the alias whose old-form records still count (see
    :func:`rotation.domain.model.legacy_alias_for`). Only
    credentials whose displayName reads ``rotator:{vault host}/{secret}:*`` for exactly this vault and
    secret qualify, so a human's credential or another secret's is never returned; and only those
    that started more than ``margin`` ago, so one another worker has just created and not yet
    recorded is left alone. A credential with no start time is never an orphan.
    """
    referenced = {k.lower() for k in referenced_key_ids}
    cutoff = ensure_utc(now) - margin
    return [
        c
        for c in credentials
        if c.created_by_rotator_for(vault, secret, legacy_alias=legacy_alias)
        and c.key_id.lower() not in referenced
        and c.start is not None
        and c.start <= cutoff
    ]


#: How far a credential's endDateTime may be from the secret's exp and still be "the same".
ADOPTION_TOLERANCE: Final = timedelta(days=1)


def adoption_candidates(
    credentials: Iterable[PasswordCredential],
    value_hint: str,
    expires: datetime | None,
    *,
    vault: str | None = None,
    secret: str | None = None,
    tolerance: timedelta = ADOPTION_TOLERANCE,
) -> list[PasswordCredential]:
    """Credentials that could be the one whose value a not-yet-managed secret holds.

    A candidate's ``hint`` equals the value's first three characters and, when the secret has an
    expiry, its endDateTime lies within ``tolerance`` of it (people usually copy the expiry over,
    give or take a time zone). Without an expiry on the secret the hint alone must do. Credentials
    the rotator created are excluded unless created for this ``vault``/``secret``. Adopt only when
    exactly one candidate remains: a wrong adoption would later retire somebody else's credential,
    so ambiguity means "ask the operator to set CredentialId", never "pick one".
    """
    if len(value_hint) < 3:
        return []
    hint = value_hint[:3]
    found: list[PasswordCredential] = []
    for credential in credentials:
        created_here = vault is not None and secret is not None and credential.created_by_rotator_for(vault, secret)
        if credential.rotator_owner() is not None and not created_here:
            continue
        if credential.hint != hint:
            continue
        if expires is not None and (credential.end is None or abs(credential.end - ensure_utc(expires)) > tolerance):
            continue
        found.append(credential)
    return found


#: Entra documents client secret values as 16-64 characters (40 today).
MIN_SECRET_LENGTH: Final = 16
_BRACED_GUID_RE = re.compile(r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$")


def guard_new_value(value: Sensitive | str, key_id: str) -> None:
    """Refuse to store a value that cannot be a client secret value.

    Catches the classic mistake (the Secret ID copied instead of the Value) and truncation before
    it reaches consumers. Raises :class:`GuardError`; the message never includes the value.
    """
    text = value.reveal() if isinstance(value, Sensitive) else value
    if not text:
        raise GuardError("The secret value is empty.", "Store the secret's Value from Certificates & secrets.")
    if text != text.strip():
        raise GuardError(
            "The secret value has leading or trailing whitespace, which Entra would reject.",
            "Store the value exactly as shown, without spaces or line breaks around it.",
        )
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise GuardError(
            "The secret value contains whitespace or control characters; it was probably pasted wrongly.",
            "Copy the Value again from Certificates & secrets.",
        )
    if text.lower() == key_id.strip().lower():
        raise GuardError(
            f"The value is the credential's Secret ID ({key_id}), not its value.",
            "Copy the secret VALUE, not the Secret ID, from Certificates & secrets.",
        )
    if _BRACED_GUID_RE.match(text):
        raise GuardError(
            "The value is shaped like a GUID, which no client secret value is: it is probably a Secret ID, "
            "an object id or an application id.",
            "Copy the secret VALUE, not the Secret ID, from Certificates & secrets.",
        )
    if len(text) < MIN_SECRET_LENGTH:
        raise GuardError(
            f"The value is {len(text)} characters long; Entra client secret values have at least "
            f"{MIN_SECRET_LENGTH}. It was probably truncated.",
            "Copy the whole Value again from Certificates & secrets.",
        )


def looks_like_key_id(value: Sensitive | str, credentials: Iterable[PasswordCredential]) -> str | None:
    """The keyId of ``credentials`` that ``value`` equals, if someone stored a Secret ID as the value."""
    text = (value.reveal() if isinstance(value, Sensitive) else value).strip().strip("{}").lower()
    if not is_guid(text):
        return None
    return next((c.key_id for c in credentials if c.key_id.lower() == text), None)


# --------------------------------------------------------------------------------------------------
# Validation


#: Validation probes once a second for this long, then backs off in proportion to the wait.
PROBE_STEADY_SECONDS: Final = 10.0
PROBE_DELAY_MAX: Final = 15.0


class Verdict(StrEnum):
    CONTINUE = "continue"
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class ValidationProgress:
    """How a validation is going, folded over probe results with :meth:`after`.

    Propagation is not atomic: one success does not mean every replica has the credential, so it
    takes ``needed`` consecutive successes to pass, and any failure resets the streak. Codes that
    waiting cannot fix fail at once; anything else is retried until the deadline.
    """

    needed: int
    deadline_seconds: float
    attempts: int = 0
    streak: int = 0
    failures: int = 0
    last_code: int | None = None
    #: Seconds since the validation started, at the last probe.
    elapsed: float = 0.0
    #: The last failure was the network or an Entra outage (5xx, AADSTS90033), not an answer about the secret.
    last_transient: bool = False
    verdict: Verdict = Verdict.CONTINUE
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.verdict is not Verdict.CONTINUE

    def after(self, result: ProbeResult, elapsed_seconds: float) -> ValidationProgress:
        """The progress after one more probe, ``elapsed_seconds`` after validation started."""
        if self.finished:
            return self
        attempts = self.attempts + 1
        probed = replace(self, attempts=attempts, elapsed=elapsed_seconds)
        if result.ok:
            streak = self.streak + 1
            if streak >= self.needed:
                reason = f"{streak} consecutive successful sign-ins"
                return replace(probed, streak=streak, verdict=Verdict.PASSED, reason=reason)
            return replace(probed, streak=streak)._check_deadline(elapsed_seconds)
        failed = replace(
            probed,
            streak=0,
            failures=self.failures + 1,
            last_code=result.code,
            last_transient=result.transient or aadsts.classify(result.code) == "transient",
        )
        # The probe's own "transient" judgement (network, 5xx) wins over the code: keep trying.
        if result.code is not None and not result.transient and not aadsts.waiting_may_help(result.code):
            explanation = aadsts.explain(result.code)
            detail = explanation.summary() if explanation else f"AADSTS{result.code}"
            reason = f"sign-in failed with a code waiting cannot fix: {detail}"
            return replace(failed, verdict=Verdict.FAILED, reason=reason)
        return failed._check_deadline(elapsed_seconds)

    def next_delay(self) -> float:
        """Seconds to wait before the next probe: one probe a second (Entra's pace for one app's
        client-credential requests; a flood is answered with ``Retry-After: 60``) for the first
        :data:`PROBE_STEADY_SECONDS`, then a tenth of the time spent so far (``elapsed``, at the
        last probe), at most :data:`PROBE_DELAY_MAX`.

        Propagation usually takes 4-18 s, so the first seconds decide; after that the pause grows
        with the wait, which keeps how late the proof comes after the last replica accepted within
        a tenth of the wait (an exponential back-off can overshoot by as much as the whole wait),
        and a 180 s deadline costs about 40 requests instead of 180.
        """
        if self.streak > 0:
            return 1.0  # the next success must come from a request of its own, a second later
        return min(PROBE_DELAY_MAX, max(1.0, self.elapsed * (1.0 / PROBE_STEADY_SECONDS)))

    def _check_deadline(self, elapsed_seconds: float) -> ValidationProgress:
        if elapsed_seconds < self.deadline_seconds:
            return self
        last = f"; last error AADSTS{self.last_code}" if self.last_code is not None else ""
        needed = f"{self.needed} consecutive successes needed"
        reason = f"not proven within {self.deadline_seconds:g} s ({needed}){last}"
        return replace(self, verdict=Verdict.FAILED, reason=reason)


# --------------------------------------------------------------------------------------------------
# What a secret needs, and when to look again


def requeue_after(
    state: ManagedSecret,
    version: SecretVersion,
    rotate_before_days: int,
    now: datetime,
    *,
    validation_deadline: timedelta,
) -> timedelta:
    """How long until the recorded ``state`` of ``version`` (its latest version) next needs a
    reconcile, if no trigger comes first: like a Kubernetes controller's ``RequeueAfter``.

    The earliest of: a pending validation (``validating``: one validation deadline, the time a
    re-validation takes anyway), a pending retirement (until ``RetireAfter``) or else the rotation
    window (until :func:`rotation_due_at`; a rotation waits for a pending retirement, so that comes
    first). Never negative; zero means due now.
    """
    now = ensure_utc(now)
    zero = timedelta(0)
    candidates: list[timedelta] = []
    if state.state is RotationState.VALIDATING:
        candidates.append(validation_deadline)
    backing_off = state.backoff is not None and state.backoff.waits_at(now)
    if state.emergency_requested is not None and not backing_off:
        return zero  # an emergency under way (interrupted) is finished at once
    if state.retire_credential_id:
        # One retirement at a time: a rotation waits for it, so it cannot come first.
        candidates.append(max(zero, (state.retire_after or now) - now))
    elif state.backoff is not None and backing_off:
        # After failures the next attempt waits; once stopped, only a person (or a forced run) helps,
        # and a daily look keeps the expiry warnings coming.
        next_attempt = state.backoff.next_attempt
        candidates.append(BACKOFF_LONGEST if next_attempt is None else max(zero, next_attempt - now))
    else:
        due_at = rotation_due_at(version.expires, rotate_before_days, issued=credential_issued(version))
        candidates.append(max(zero, (due_at or now) - now))
    return min(candidates)


def _needs_work(version: SecretVersion, settings: Settings, now: datetime) -> str | None:
    # Decided from list-call data only: the tags and `exp` that `list_secrets` returns.
    if not version.managed or not version.enabled:
        return None
    try:
        managed = ManagedSecret.from_version(version)
        secret_policy = settings.policy_for(version.tags, version.name, version.vault)
    except TagError as error:
        return f"tags need attention: {'; '.join(error.problems)}"
    backing_off = managed.backoff is not None and managed.backoff.waits_at(now)
    if managed.emergency_requested is not None and not backing_off:
        return f"an emergency roll requested at {format_utc(managed.emergency_requested)} is not finished"
    if managed.state is RotationState.VALIDATING:
        return "a validation is pending"
    if managed.retire_credential_id and retirement_due(managed.retire_after, now):
        held = f" (held: {managed.retirement_held})" if managed.retirement_held else ""
        return f"credential {managed.retire_credential_id} is due for retirement{held}"
    # Only a version the rotator wrote has nbf = its credential's start; for a hand-written one the
    # version's age says nothing about the credential's lifetime, so the window is not shrunk.
    issued = credential_issued(version)
    decision = rotation_due(version.expires, now, secret_policy.rotate_before_days, issued=issued)
    if decision.due and backing_off:
        return None  # the back-off after failed rotations decides when the next attempt starts
    if decision.due:
        if managed.state is RotationState.FAILED:
            previous = f": {managed.failure_reason}" if managed.failure_reason else ""
            return f"rotation due ({decision.reason}); the previous attempt failed{previous}"
        return f"rotation due ({decision.reason})"
    return None


def assess(version: SecretVersion, now: datetime, settings: Settings) -> SecretStatus:
    """The status of a managed secret from its latest version's attributes and tags alone (what a
    list call returns: no value, no Graph call): the one place that decides what a secret needs.

    ``needs_work`` is why a reconcile is needed now, or ``None``. In order: unusable tags (so the
    error surfaces), a validation left pending, a retirement that is due, a rotation that is due
    (mentioning an earlier failure). A failed rotation alone is not work: the old credential still
    works, and the sweep cadence is the retry back-off. Disabled secrets are never work.
    ``next_look_at`` is ``now`` + :func:`requeue_after` (``None`` when disabled or the tags are
    unusable: only a person can help). Raises :class:`NotManagedError` for an unmanaged version.
    """
    now = ensure_utc(now)
    needs = _needs_work(version, settings, now)
    try:
        managed = ManagedSecret.from_version(version)
    except TagError as error:
        return SecretStatus(
            vault=version.vault,
            name=version.name,
            app_id=version.tags.get(Tag.ProviderAddress),
            enabled=version.enabled,
            expires=version.expires,
            updated=version.updated,
            state=None,
            credential_id=None,
            rotation_id=None,
            retire_credential_id=None,
            retire_after=None,
            failure_reason=None,
            needs_work=needs,
            problem="; ".join(error.problems),
        )
    due_at: datetime | None = None
    next_look: datetime | None = None
    try:
        secret_policy = settings.policy_for(version.tags, version.name, version.vault)
    except TagError:
        pass
    else:
        issued = credential_issued(version)
        due_at = rotation_due_at(version.expires, secret_policy.rotate_before_days, issued=issued)
        if version.enabled:
            deadline = timedelta(seconds=settings.validation_deadline_seconds)
            wait = requeue_after(managed, version, secret_policy.rotate_before_days, now, validation_deadline=deadline)
            next_look = now + wait
    return SecretStatus(
        vault=version.vault,
        name=version.name,
        app_id=managed.app_id,
        enabled=version.enabled,
        expires=version.expires,
        updated=version.updated,
        state=managed.state.value if managed.state else None,
        credential_id=managed.credential_id,
        rotation_id=managed.rotation_id,
        retire_credential_id=managed.retire_credential_id,
        retire_after=managed.retire_after,
        failure_reason=managed.failure_reason,
        needs_work=needs,
        problem=stopped_problem(managed, version.vault, version.name),
        rotation_due_at=due_at,
        next_look_at=next_look,
        backoff=managed.backoff,
        emergency_requested=managed.emergency_requested,
        retirement_held=managed.retirement_held,
        credential_object=managed.credential_object,
    )


def stopped_problem(managed: ManagedSecret, vault: str, secret: str) -> str | None:
    """What a person must do once the rotator has stopped retrying a failing rotation."""
    if managed.backoff is None or not managed.backoff.stopped:
        return None
    reason = f" (last: {managed.failure_reason})" if managed.failure_reason else ""
    return (
        f"rotation stopped after {managed.backoff.failures} failed attempts in a row{reason}; fix the cause, "
        f"then run `python -m rotation rotate {vault} {secret} --force` (or remove the Backoff tag)"
    )
