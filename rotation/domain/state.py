"""The rotation state and its Key Vault tags: the one module that reads tags into state and writes
state back into tags.

The state of a managed secret lives in the tags of its latest version (see the tag table in
``docs/architecture.md``). :class:`ManagedSecret` is that state parsed and cross-checked;
:meth:`ManagedSecret.to_tags` is the only place that writes rotator tags. The helpers below read the
few tags the reconciler needs from *older* versions (which credential a version holds, whether the
rotator wrote it) and mark a version failed, so no other module spells a rotator tag.

:class:`SecretStatus` is what one list call shows of a managed secret; :func:`rotation.domain.policy.assess`
derives it (with what the secret needs and when to look again) for the sweep, the status view, the
worker and diagnosis alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from rotation.domain.errors import NotManagedError, TagError
from rotation.domain.model import (
    _ROTATION_ID_RE,
    APPLICATION,
    CREDENTIAL_OBJECTS,
    TAG_LIMIT,
    TAG_VALUE_MAX,
    TENANT_RULE,
    CredentialObject,
    Kind,
    RotationState,
    SecretVersion,
    Tag,
    _optional_utc,
    format_utc,
    is_guid,
    is_valid_tenant_id,
    parse_credential_object,
    parse_utc,
)

__all__ = [
    "TAG_LIMIT",
    "TAG_VALUE_MAX",
    "Backoff",
    "ManagedSecret",
    "RotationState",
    "SecretStatus",
    "Tag",
    "credential_issued",
    "failed_tags",
    "is_validating",
    "limit_tag_value",
    "referenced_key_ids",
    "tagged_credential_id",
    "tagged_rotation_id",
]


def limit_tag_value(text: str) -> str:
    """Fit free text (a failure reason) into one tag value, on one line."""
    flat = " ".join(text.split())
    if len(flat) <= TAG_VALUE_MAX:
        return flat
    return flat[: TAG_VALUE_MAX - 3] + "..."


def _near_miss(tags: Mapping[str, str], name: str) -> str | None:
    # Tag names are case-sensitive; a "providerAddress" tag is the most common reason a secret the
    # operator meant to manage is ignored, so name it.
    for key in tags:
        if key != name and key.strip().lower() == name.lower():
            return key
    return None


#: The most failures a ``Backoff`` tag may count (anything larger is a forged or broken tag).
BACKOFF_FAILURES_MAX = 1000


@dataclass(frozen=True)
class Backoff:
    """Rotations of this secret that failed in a row, and when the next may start.

    ``next_attempt`` is ``None`` once the rotator has stopped trying (only a forced rotation, or a
    person removing the tag, starts again). Written as ``<failures>/<next attempt UTC>`` or
    ``<failures>/stopped``; :func:`rotation.domain.policy.backoff_after` decides the values.
    """

    failures: int
    next_attempt: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "next_attempt", _optional_utc(self.next_attempt, "next_attempt"))

    @property
    def stopped(self) -> bool:
        return self.next_attempt is None

    def waits_at(self, now: datetime) -> bool:
        """Whether an unforced rotation must not start at ``now``."""
        return self.next_attempt is None or now < self.next_attempt

    def to_tag(self) -> str:
        return f"{self.failures}/{format_utc(self.next_attempt) if self.next_attempt else 'stopped'}"

    @classmethod
    def parse(cls, text: str) -> Backoff:
        """``ValueError`` for anything but the two forms above."""
        count, sep, when = text.strip().partition("/")
        if not sep or not count.isdigit() or not 1 <= int(count) <= BACKOFF_FAILURES_MAX:
            raise ValueError(text)
        return cls(int(count), None if when.strip() == "stopped" else parse_utc(when))


@dataclass(frozen=True)
class ManagedSecret:
    """The rotation state of one secret, read from its latest version's tags."""

    vault: str
    name: str
    app_id: str
    tenant_id: str | None = None
    credential_id: str | None = None
    rotation_id: str | None = None
    state: RotationState | None = None
    retire_credential_id: str | None = None
    retire_after: datetime | None = None
    failure_reason: str | None = None
    #: Rotations that failed in a row (``None``: the last one succeeded, or none failed).
    backoff: Backoff | None = None
    #: When an emergency roll was requested; set until the emergency's new version is written.
    emergency_requested: datetime | None = None
    #: Why the pending retirement waits for evidence (the sign-in report), if it does.
    retirement_held: str | None = None
    #: Which object holds the password (the ``CredentialObject`` tag; the operator's, like ``ProviderAddress``).
    credential_object: CredentialObject = APPLICATION

    def __post_init__(self) -> None:
        object.__setattr__(self, "retire_after", _optional_utc(self.retire_after, "retire_after"))
        object.__setattr__(self, "emergency_requested", _optional_utc(self.emergency_requested, "emergency_requested"))

    @classmethod
    def from_version(cls, version: SecretVersion) -> ManagedSecret:
        return cls.from_tags(version.tags, vault=version.vault, name=version.name)

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], *, vault: str, name: str) -> ManagedSecret:
        """Parse and cross-check the tags.

        Raises :class:`NotManagedError` without ``ProviderAddress`` and :class:`TagError` listing
        every malformed or contradictory tag: acting on a half-understood state could remove the
        credential consumers are using.
        """

        def get(tag: str) -> str | None:
            value = tags.get(tag)
            if value is None:
                return None
            value = value.strip()
            return value or None

        if Tag.ProviderAddress not in tags:
            miss = _near_miss(tags, Tag.ProviderAddress)
            detail = f"found a tag named '{miss}'; tag names are case-sensitive" if miss else "no ProviderAddress tag"
            raise NotManagedError(vault, name, detail)

        problems: list[str] = []
        app_id = get(Tag.ProviderAddress) or ""
        if not is_guid(app_id):
            problems.append(
                f"ProviderAddress={tags[Tag.ProviderAddress]!r} is not an Application (client) ID; "
                "copy the GUID from the app registration's Overview page"
            )

        tenant_id = get(Tag.TenantId)
        if tenant_id is not None and not is_valid_tenant_id(tenant_id):
            problems.append(f"TenantId={tenant_id!r} is not {TENANT_RULE}")

        def key_id(tag: str) -> str | None:
            value = get(tag)
            if value is not None and not is_guid(value):
                problems.append(f"{tag}={value!r} is not a credential keyId (a GUID)")
                return None
            return value.lower() if value else None

        credential_id = key_id(Tag.CredentialId)
        retire_id = key_id(Tag.RetireCredentialId)

        rotation_id = get(Tag.RotationId)
        if rotation_id is not None and not _ROTATION_ID_RE.fullmatch(rotation_id):
            problems.append(f"RotationId={rotation_id!r} is not a rotation id (1-64 letters, digits, hyphens)")

        state: RotationState | None = None
        raw_state = get(Tag.RotationState)
        if raw_state is not None:
            try:
                state = RotationState(raw_state.lower())
            except ValueError:
                allowed = ", ".join(s.value for s in RotationState)
                problems.append(f"RotationState={raw_state!r} is not one of {allowed}")

        def timestamp(tag: str) -> datetime | None:
            value = get(tag)
            if value is None:
                return None
            try:
                return parse_utc(value)
            except ValueError:
                problems.append(f"{tag}={value!r} is not a UTC timestamp like 2025-01-31T12:00:00Z")
                return None

        raw_after = get(Tag.RetireAfter)
        retire_after = timestamp(Tag.RetireAfter)

        backoff: Backoff | None = None
        raw_backoff = get(Tag.Backoff)
        if raw_backoff is not None:
            try:
                backoff = Backoff.parse(raw_backoff)
            except ValueError:
                problems.append(
                    f"Backoff={raw_backoff!r} is not '<failures>/<UTC timestamp>' or '<failures>/stopped' "
                    "(remove the tag to let the rotator try again at once)"
                )

        emergency = timestamp(Tag.Emergency)

        # A value naming neither object changes nothing: guessing one could put another object's
        # password in this secret.
        credential_object = parse_credential_object(tags.get(Tag.CredentialObject))
        if credential_object is None:
            allowed = " or ".join(CREDENTIAL_OBJECTS)
            problems.append(
                f"CredentialObject={tags[Tag.CredentialObject]!r} is not {allowed} (remove the tag for the app "
                "registration's password)"
            )

        # Cross-checks: states that cannot be acted on safely.
        if raw_after is not None and get(Tag.RetireCredentialId) is None:
            problems.append("RetireAfter is set but RetireCredentialId is not (which credential to retire?)")
        if credential_id and retire_id and credential_id == retire_id:
            problems.append("RetireCredentialId equals CredentialId: retiring it would break the current secret")
        if state is RotationState.VALIDATING and (get(Tag.CredentialId) is None or rotation_id is None):
            problems.append("RotationState=validating needs CredentialId and RotationId (what is being validated?)")
        if state is RotationState.ACTIVE and get(Tag.CredentialId) is None:
            problems.append("RotationState=active needs CredentialId (which credential is active?)")

        if problems:
            raise TagError(vault, name, problems)
        return cls(
            vault=vault,
            name=name,
            app_id=app_id.lower(),
            tenant_id=tenant_id,
            credential_id=credential_id,
            rotation_id=rotation_id,
            state=state,
            retire_credential_id=retire_id,
            retire_after=retire_after,
            failure_reason=get(Tag.FailureReason),
            backoff=backoff,
            emergency_requested=emergency,
            retirement_held=get(Tag.RetirementHeld),
            credential_object=credential_object or APPLICATION,
        )

    @property
    def referenced_key_ids(self) -> frozenset[str]:
        """keyIds this secret's tags point at; such credentials are never orphans."""
        return frozenset(k for k in (self.credential_id, self.retire_credential_id) if k)

    def to_tags(self, base: Mapping[str, str]) -> dict[str, str]:
        """The tags for a version holding this state: ``base`` (operator and foreign tags) with every
        rotator tag replaced by this object's values; unset values leave no tag behind.

        Raises :class:`TagError` when the result would exceed Key Vault's tag limit, so the caller
        finds out before it creates a credential it could not record.
        """
        tags = {k: v for k, v in base.items() if k not in Tag.ROTATOR}
        rotator: dict[str, str | None] = {
            Tag.CredentialId: self.credential_id,
            Tag.RotationId: self.rotation_id,
            Tag.RotationState: self.state.value if self.state else None,
            Tag.RetireCredentialId: self.retire_credential_id,
            Tag.RetireAfter: format_utc(self.retire_after) if self.retire_after else None,
            Tag.FailureReason: limit_tag_value(self.failure_reason) if self.failure_reason else None,
            Tag.Backoff: self.backoff.to_tag() if self.backoff else None,
            Tag.Emergency: format_utc(self.emergency_requested) if self.emergency_requested else None,
            # Never with Emergency (`Tag.EXCLUSIVE`): an emergency retires without waiting for evidence.
            Tag.RetirementHeld: (
                limit_tag_value(self.retirement_held) if self.retirement_held and not self.emergency_requested else None
            ),
        }
        tags.update({k: v for k, v in rotator.items() if v is not None})
        if len(tags) > TAG_LIMIT:
            raise TagError(
                self.vault,
                self.name,
                [
                    f"the secret would need {len(tags)} tags but Key Vault allows {TAG_LIMIT}; remove "
                    f"{len(tags) - TAG_LIMIT} tag(s) of your own from it"
                ],
            )
        return tags

    def evolve(self, **changes: Any) -> ManagedSecret:
        """A copy with some fields changed (``dataclasses.replace`` with a domain name)."""
        return replace(self, **changes)


# --------------------------------------------------------------------------------------------------
# What older versions' tags say (read without parsing the whole state: an old version's tags may
# predate a rule, and only these facts matter about it)


def tagged_credential_id(version: SecretVersion) -> str | None:
    """The keyId whose value ``version`` holds, per its ``CredentialId`` tag (lower-case)."""
    return version.tags.get(Tag.CredentialId, "").strip().lower() or None


def tagged_rotation_id(version: SecretVersion) -> str | None:
    """The rotation that wrote ``version``, per its ``RotationId`` tag."""
    return version.tags.get(Tag.RotationId, "").strip() or None


def credential_issued(version: SecretVersion) -> datetime | None:
    """When the credential ``version`` holds started, if the rotator wrote the version (its ``nbf``
    is then the credential's start); ``None`` for an operator's version, written at some unrelated
    moment, so that its age says nothing about the credential's lifetime."""
    return version.issued if tagged_rotation_id(version) else None


def is_validating(version: SecretVersion) -> bool:
    return version.tags.get(Tag.RotationState) == RotationState.VALIDATING.value


def failed_tags(version: SecretVersion) -> dict[str, str]:
    """``version``'s tags with ``RotationState=failed``: how a version that was never proven is left."""
    return {**version.tags, Tag.RotationState: RotationState.FAILED.value}


def referenced_key_ids(versions: Iterable[SecretVersion]) -> frozenset[str]:
    """keyIds named by the ``CredentialId``/``RetireCredentialId`` tags of any of ``versions``.

    The reconciler may pass every enabled version, not only the latest, when it wants a
    credential still held by an older version (being rolled back to) to count as referenced.
    """
    ids: set[str] = set()
    for version in versions:
        for tag in (Tag.CredentialId, Tag.RetireCredentialId):
            value = version.tags.get(tag, "").strip().lower()
            if value:
                ids.add(value)
    return frozenset(ids)


# --------------------------------------------------------------------------------------------------
# The status of a managed secret, as a list call shows it


@dataclass(frozen=True)
class SecretStatus:
    """A managed secret as the list call shows it: state and dates, never a value.

    Built by :func:`rotation.domain.policy.assess`. ``needs_work`` says why a reconcile is needed
    now (``None``: nothing is due); ``next_look_at`` is when the recorded state next needs a look
    (a pending validation, the end of a grace period, the rotation window), ``None`` when no
    reconcile could help (disabled, unusable tags).
    """

    vault: str
    name: str
    app_id: str | None
    enabled: bool
    expires: datetime | None
    updated: datetime | None
    state: str | None
    credential_id: str | None
    rotation_id: str | None
    retire_credential_id: str | None
    retire_after: datetime | None
    failure_reason: str | None
    needs_work: str | None
    problem: str | None = None
    rotation_due_at: datetime | None = None
    next_look_at: datetime | None = None
    backoff: Backoff | None = None
    emergency_requested: datetime | None = None
    retirement_held: str | None = None
    #: On which object the credential lives (``application`` or ``servicePrincipal``).
    credential_object: CredentialObject = APPLICATION
    #: A Key Vault secret or a managed Key Vault certificate (issue 15).
    kind: Kind = "secret"

    def days_to_expiry(self, now: datetime) -> float | None:
        return None if self.expires is None else (self.expires - now).total_seconds() / 86400

    def requeue_after(self, now: datetime) -> timedelta | None:
        """``next_look_at`` as a delay from ``now`` (never negative)."""
        if self.next_look_at is None:
            return None
        return max(timedelta(0), self.next_look_at - now)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        days = self.days_to_expiry(now)
        return {
            "vault": self.vault,
            "secret": self.name,
            "appId": self.app_id,
            "enabled": self.enabled,
            "expires": format_utc(self.expires) if self.expires else None,
            "daysToExpiry": round(days, 1) if days is not None else None,
            "lastRotated": format_utc(self.updated) if self.updated and self.rotation_id else None,
            "state": self.state,
            "credentialId": self.credential_id,
            "rotationId": self.rotation_id,
            "pendingRetirement": (
                {
                    "credentialId": self.retire_credential_id,
                    "after": format_utc(self.retire_after) if self.retire_after else None,
                }
                if self.retire_credential_id
                else None
            ),
            "failureReason": self.failure_reason,
            "needsWork": self.needs_work,
            "problem": self.problem,
            "rotationDueAt": format_utc(self.rotation_due_at) if self.rotation_due_at else None,
            "nextLookAt": format_utc(self.next_look_at) if self.next_look_at else None,
            "backoff": (
                {
                    "failures": self.backoff.failures,
                    "nextAttempt": format_utc(self.backoff.next_attempt) if self.backoff.next_attempt else None,
                    "stopped": self.backoff.stopped,
                }
                if self.backoff
                else None
            ),
            "emergencyRequested": format_utc(self.emergency_requested) if self.emergency_requested else None,
            "retirementHeld": self.retirement_held,
            "credentialObject": self.credential_object,
            "kind": self.kind,
        }
