"""Every branch of the reconciler, as one table, through the in-memory fakes of `tests.fakes`.

Each case arranges a world (an app with a human's credential whose value sits in a managed secret,
plus whatever the case needs), runs one reconcile, and checks the outcome, the order of every write
to Entra and Key Vault, and what the reconcile asks for next (`requeue_after`). The fakes' clock
also serves the pauses between probes, so back-off takes no time. The integration tests run the
same reconciler over the real SDKs against the local cloud; these pin down the branches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from rotation.domain.errors import KeyVaultError, PasswordLifetimePolicyError, PermissionDeniedError
from rotation.domain.model import (
    Action,
    Mode,
    Outcome,
    PasswordPolicy,
    ReconcileRequest,
    RotationState,
    Tag,
    binding_tag,
    format_utc,
    is_guid,
    rotator_display_name,
)
from rotation.service.ports import HeldLock
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings
from tests.fakes import FakeClock, FakeDirectory, FakeTokenProbe, FakeVault, new_secret_value

from .samples import NOW, TENANT_ID

VAULT = "kv-unit"
HOST = "kv-unit.vault.azure.net"  # what ROTATION_VAULTS=kv-unit means; bindings name the host
SECRET = "db"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
DEFAULT_ENV = {
    "ROTATION_VAULTS": VAULT,
    "ROTATION_TENANT_ID": TENANT_ID,
    "ROTATION_GRACE_HOURS": "24",
    "ROTATION_VALIDATION_SUCCESSES": "1",
    "ROTATION_VALIDATION_DEADLINE_SECONDS": "60",
}
# After a rotation at NOW: the 90-day credential is due again 30 days before it ends.
NEXT_ROTATION = 60 * DAY


@dataclass
class World:
    """The fakes, the seeded secret, and every write in order."""

    clock: FakeClock
    directory: FakeDirectory
    vault: FakeVault
    probe: FakeTokenProbe
    writes: list[tuple[str, ...]]
    env: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    app_id: str = ""
    key_id: str = ""  # the credential whose value the secret holds
    value: str = ""
    version: str = ""
    human_key_id: str = ""  # a human's credential on the same app: never touched
    held: HeldLock | None = None
    extra: dict[str, str] = field(default_factory=dict)  # ids a case wants to check later

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def reconciler(self) -> Reconciler:
        return Reconciler(
            self.settings,
            self.directory,
            {VAULT: self.vault},
            self.probe,
            self.clock,
            self.clock.sleep,
            self.clock.monotonic,
        )

    async def reconcile(
        self, mode: Mode = "normal", *, dry_run: bool = False, secret: str = SECRET, vault: str = VAULT
    ) -> Outcome:
        request = ReconcileRequest.new(vault, secret, now=self.clock.now(), reason="unit test", mode=mode)
        return await self.reconciler().reconcile(request, dry_run=dry_run, held=self.held)

    def tags(self) -> dict[str, str]:
        return dict(self.vault.latest(SECRET).tags)

    def ops(self) -> list[str]:
        return [w[0] for w in self.writes]


def make_world() -> World:
    clock = FakeClock(NOW)
    writes: list[tuple[str, ...]] = []
    directory = FakeDirectory(clock, writes=writes)
    return World(clock, directory, FakeVault(VAULT, clock, writes=writes), FakeTokenProbe(directory, clock), writes)


def seed(
    w: World,
    *,
    expires_in: timedelta | None = 10 * DAY,
    tags: dict[str, str] | None = None,
    tag_credential: bool = True,
    audience: str | None = None,
    stored: Callable[[World], str] | None = None,
    history: Callable[[World], None] | None = None,
) -> None:
    """An app with the secret's credential and a human's unrelated one; the secret's older versions
    (``history``) and then its latest version holding the credential's value."""
    w.app_id = w.directory.add_app(sign_in_audience=audience)
    end = NOW + (expires_in if expires_in is not None else 60 * DAY)
    credential, w.value = w.directory.add_credential(w.app_id, end=end, start=NOW - 80 * DAY)
    w.key_id = credential.key_id
    human, _ = w.directory.add_credential(w.app_id, value="hum" + new_secret_value()[3:], display_name="CI (a human's)")
    w.human_key_id = human.key_id
    # Bound the way `adopt` binds: the app's owners name this secret (and the adopted credential).
    w.directory.set_tags(w.app_id, ["team:payments", binding_tag(HOST, SECRET, w.key_id if tag_credential else None)])
    if history is not None:
        history(w)
    all_tags = {Tag.ProviderAddress: w.app_id}
    if tag_credential:
        all_tags[Tag.CredentialId] = w.key_id
    all_tags.update(tags or {})
    w.version = w.vault.put(
        SECRET,
        stored(w) if stored else w.value,
        all_tags,
        expires=None if expires_in is None else NOW + expires_in,
        created=NOW - 80 * DAY,
    )


def pending(w: World, *, credential_exists: bool = True, earlier_works: bool = True) -> None:
    """A rotation that crashed after storing its value: the latest version says `validating`."""
    seed(w, expires_in=10 * DAY)
    if not earlier_works:
        w.directory.remove_password_now(w.app_id, w.key_id)
    new, new_value = w.directory.add_credential(
        w.app_id,
        display_name=rotator_display_name(VAULT, SECRET, "r1"),
        start=NOW - 2 * HOUR,
        end=NOW + 88 * DAY,
    )
    w.extra["new"] = new.key_id
    if not credential_exists:
        w.directory.remove_password_now(w.app_id, new.key_id)
    tags = {
        Tag.ProviderAddress: w.app_id,
        Tag.CredentialId: new.key_id,
        Tag.RotationId: "r1",
        Tag.RotationState: "validating",
        Tag.RetireCredentialId: w.key_id,
    }
    w.extra["pending"] = w.vault.put(
        SECRET, new_value, tags, not_before=NOW - 2 * HOUR, expires=NOW + 88 * DAY, created=NOW - 2 * HOUR
    )


def rotated_earlier(after: timedelta) -> Callable[[World], Awaitable[None]]:
    """A normal rotation (grace 24 h), then `after` passes."""

    async def arrange(world: World) -> None:
        seed(world)
        first = await world.reconcile()
        assert first.ok and first.action is Action.ROTATED, first.to_dict()
        world.extra["rotated"] = str(first.vault_version)
        world.clock.advance(after)

    return arrange


# --------------------------------------------------------------------------------------------------
# The table

Arrange = Callable[[World], Awaitable[None]]
Check = Callable[[World, Outcome], None]


def sync(arrange: Callable[[World], object]) -> Arrange:
    async def run(world: World) -> None:
        arrange(world)

    return run


@dataclass(frozen=True)
class Case:
    id: str
    arrange: Arrange
    action: Action
    writes: tuple[str, ...]
    error: str | None = None
    state: RotationState | None = None
    requeue_after: timedelta | None = None
    warning: str | None = None
    mode: Mode = "normal"
    dry_run: bool = False
    secret: str = SECRET
    vault: str = VAULT
    check: Check | None = None


# --- checks ------------------------------------------------------------------------------------------


def rotated_with_grace(w: World, o: Outcome) -> None:
    tags = w.tags()
    assert o.created_key_id and tags[Tag.CredentialId] == o.created_key_id
    assert tags[Tag.RotationState] == "active" and tags[Tag.RetireCredentialId] == w.key_id
    assert tags[Tag.RetireAfter] == format_utc(NOW + DAY)
    assert w.key_id in w.directory.key_ids(w.app_id)  # the old credential waits out the grace period
    assert w.vault.value(SECRET) == w.directory.value_of(w.app_id, o.created_key_id)
    assert w.vault.latest(SECRET).expires == NOW + 90 * DAY and o.vault_version == w.vault.latest(SECRET).version
    assert [w_[1] for w_ in w.writes[:1]] == [o.created_key_id]


def retired_at_once(w: World, o: Outcome) -> None:
    assert o.retired_key_ids == (w.key_id,) and w.key_id not in w.directory.key_ids(w.app_id)
    tags = w.tags()
    assert Tag.RetireCredentialId not in tags and Tag.RetireAfter not in tags
    assert not next(v for v in w.vault.versions(SECRET) if v.version == w.version).enabled


def retired_after_grace(w: World, o: Outcome) -> None:
    assert o.retired_key_ids == (w.key_id,) and w.key_id not in w.directory.key_ids(w.app_id)
    assert w.writes[0] == ("removePassword", w.key_id.lower())
    assert w.writes[1] == ("disable", SECRET, w.version)  # the version holding the retired value
    assert w.writes[2] == ("tag", SECRET, w.extra["rotated"])  # the retirement is cleared last
    assert Tag.RetireCredentialId not in w.tags()


def rolled_back(w: World, o: Outcome) -> None:
    assert o.error_code == "ValidationFailed" and not o.retryable
    assert w.vault.value(SECRET) == w.value  # the working value is the latest version again
    tags = w.tags()
    assert tags[Tag.CredentialId] == w.key_id and tags[Tag.RotationState] == "active"
    assert "rolled back" in tags[Tag.FailureReason]
    failed = [v for v in w.vault.versions(SECRET) if v.tags.get(Tag.RotationState) == "failed"]
    assert len(failed) == 1 and not failed[0].enabled
    assert set(w.directory.key_ids(w.app_id)) == {w.key_id, w.human_key_id}


def kept_failed(w: World, o: Outcome) -> None:
    assert o.error_code == "ValidationFailed"
    assert w.extra["new"] in w.directory.key_ids(w.app_id)  # the only candidate stays
    tags = w.tags()
    assert tags[Tag.RotationState] == "validating" and tags[Tag.FailureReason].startswith("rotation r1 not proven")
    assert w.vault.latest(SECRET).version == w.extra["pending"]


def validated(w: World, o: Outcome) -> None:
    tags = w.tags()
    assert w.vault.latest(SECRET).version == w.extra["pending"] and tags[Tag.RotationState] == "active"
    assert tags[Tag.RetireAfter] == format_utc(NOW + DAY) and o.created_key_id is None


def replaced_the_credential(w: World, o: Outcome) -> None:
    assert o.created_key_id is not None and w.tags()[Tag.CredentialId] == o.created_key_id
    assert Tag.RetireCredentialId not in w.tags()


def nothing_created(w: World, o: Outcome) -> None:
    assert o.created_key_id is None or o.created_key_id not in w.directory.key_ids(w.app_id)
    assert set(w.directory.key_ids(w.app_id)) == {w.key_id, w.human_key_id}
    assert w.vault.latest(SECRET).version == w.version


def clamped(w: World, o: Outcome) -> None:
    assert w.vault.latest(SECRET).expires == NOW + 30 * DAY - timedelta(minutes=1)


def adopted_the_only_candidate(w: World, o: Outcome) -> None:
    assert w.tags()[Tag.RetireCredentialId] == w.key_id


def adopted_nothing(w: World, o: Outcome) -> None:
    assert Tag.RetireCredentialId not in w.tags() and w.key_id in w.directory.key_ids(w.app_id)


def disabled_dead_versions(w: World, o: Outcome) -> None:
    enabled = {v.version: v.enabled for v in w.vault.versions(SECRET)}
    assert not enabled[w.extra["untagged-dead"]] and not enabled[w.extra["tagged-dead"]]
    assert enabled[w.extra["untagged-live"]]  # its value still signs in: a human's credential
    assert not enabled[w.version] and enabled[w.vault.latest(SECRET).version or ""]
    assert w.writes[-1][0] == "tag"  # activation is recorded last


def finished_the_rollback(w: World, o: Outcome) -> None:
    failed = next(v for v in w.vault.versions(SECRET) if v.version == w.extra["tagged-dead"])
    assert not failed.enabled and failed.tags[Tag.RotationState] == "failed"


def orphans_removed_by_margin(w: World, o: Outcome) -> None:
    assert o.removed_orphans == (w.extra["old-orphan"],)
    live = w.directory.key_ids(w.app_id)
    assert w.extra["fresh-orphan"] in live and w.extra["other-secret"] in live


def would_rotate(o: Outcome) -> None:
    assert o.warnings[-1] == "would rotate: rotation was requested"


def left_for_the_orphan_sweep(w: World, o: Outcome) -> None:
    assert o.retryable and o.created_key_id in w.directory.key_ids(w.app_id)  # named for this secret
    assert w.vault.latest(SECRET).version == w.version


def backed_off(delays: list[float], attempts: int) -> Check:
    def check(w: World, o: Outcome) -> None:
        assert w.clock.sleeps == delays and o.validation_attempts == attempts

    return check


def gave_up_at_the_deadline(w: World, o: Outcome) -> None:
    assert sum(w.clock.sleeps) == 60 and w.clock.sleeps[:10] == [1.0] * 10
    assert max(w.clock.sleeps) <= 6.0  # a tenth of the wait, not an exponential
    assert o.error is not None and getattr(o.error, "aadsts_code", None) == 7000215
    never_stored(w, o)


def never_stored(w: World, o: Outcome) -> None:
    """An unproven value never reaches Key Vault: the working value stays the latest version, the new
    credential is gone, and the failure is counted for the back-off."""
    assert o.error_code == "ValidationFailed" and not o.retryable
    assert [v.version for v in w.vault.versions(SECRET)] == [w.version]
    assert w.vault.value(SECRET) == w.value
    assert set(w.directory.key_ids(w.app_id)) == {w.key_id, w.human_key_id}
    backoff_counted(w, o, 1)


def backoff_counted(w: World, o: Outcome, failures: int) -> None:
    tags = w.tags()
    assert tags[Tag.Backoff] == f"{failures}/{format_utc(w.clock.now().replace(microsecond=0) + HOUR)}"
    assert tags[Tag.FailureReason].startswith(f"rotation failed ({o.error_code})")
    assert tags[Tag.CredentialId] == w.key_id  # the state of the working value is kept


# --- arrangements --------------------------------------------------------------------------------------


def add_orphans(w: World) -> None:
    seed(w, expires_in=80 * DAY)
    name = rotator_display_name(VAULT, SECRET, "r0")
    old, _ = w.directory.add_credential(w.app_id, display_name=name, start=NOW - 2 * HOUR)
    fresh, _ = w.directory.add_credential(w.app_id, display_name=name, start=NOW - 10 * timedelta(minutes=1))
    other, _ = w.directory.add_credential(
        w.app_id, display_name=rotator_display_name(VAULT, "other", "r9"), start=NOW - DAY
    )
    w.extra.update({"old-orphan": old.key_id, "fresh-orphan": fresh.key_id, "other-secret": other.key_id})


def old_versions(w: World) -> None:
    w.extra["untagged-dead"] = w.vault.put(SECRET, "qqq" + new_secret_value()[3:], created=NOW - 300 * DAY)
    w.extra["tagged-dead"] = w.vault.put(
        SECRET,
        new_secret_value(),
        {Tag.ProviderAddress: w.app_id, Tag.CredentialId: "dddddddd-0000-0000-0000-000000000004"},
        created=NOW - 200 * DAY,
    )
    w.extra["untagged-live"] = w.vault.put(SECRET, "hum" + new_secret_value()[3:], created=NOW - 100 * DAY)


def interrupted_rollback(w: World) -> None:
    def history(world: World) -> None:
        world.extra["tagged-dead"] = world.vault.put(
            SECRET,
            new_secret_value(),
            {
                Tag.ProviderAddress: "x",
                Tag.CredentialId: "dddddddd-0000-0000-0000-000000000004",
                Tag.RotationState: "validating",
            },
            created=NOW - 81 * DAY,
        )

    seed(
        w,
        expires_in=80 * DAY,
        tags={Tag.RotationState: "active", Tag.FailureReason: "rotation r1 rolled back: x"},
        history=history,
    )


def retirement_waiting(w: World) -> None:
    def previous(world: World) -> None:
        credential, _ = world.directory.add_credential(world.app_id)
        world.extra["previous"] = credential.key_id

    seed(w, history=previous)
    tags = {Tag.RetireCredentialId: w.extra["previous"], Tag.RetireAfter: format_utc(NOW + 5 * HOUR)}
    w.vault.update_now(SECRET, w.version, {**w.tags(), **tags})


def two_candidates(w: World) -> None:
    seed(w, tag_credential=False)
    w.directory.add_credential(w.app_id, value=w.value[:3] + new_secret_value()[3:], end=NOW + 10 * DAY)


def policy(max_lifetime: timedelta, *, readable: bool = True, blocked: bool = False) -> Arrange:
    async def arrange(w: World) -> None:
        seed(w)
        w.directory.set_policy(w.app_id, PasswordPolicy(blocked, max_lifetime), readable=readable)
        if blocked:
            w.directory.faults.fail("add_password", PasswordLifetimePolicyError("lifetime refused"))

    return arrange


def lose_lock_after_add(w: World) -> None:
    seed(w)
    held = HeldLock(f"{VAULT}/{SECRET}")
    w.held = held

    def lose(operation: str) -> None:
        if operation == "add_password":
            held.lost = True

    w.directory.faults.after_write.append(lose)


def with_env(arrange: Arrange, **env: str) -> Arrange:
    async def run(w: World) -> None:
        w.env.update(env)
        await arrange(w)

    return run


def then(arrange: Arrange, extra: Callable[[World], None]) -> Arrange:
    async def run(w: World) -> None:
        await arrange(w)
        extra(w)

    return run


def due(w: World) -> None:
    seed(w)


def with_tags(arrange: Arrange, **tags: str) -> Arrange:
    """``arrange``, then these tags on the latest version (as the rotator left them earlier)."""

    async def run(w: World) -> None:
        await arrange(w)
        w.vault.update_now(SECRET, w.vault.latest(SECRET).version or "", {**w.tags(), **tags})

    return run


def backoff_tag(failures: int, next_attempt: timedelta | None) -> str:
    return f"{failures}/{'stopped' if next_attempt is None else format_utc(NOW + next_attempt)}"


def deleted_in_entra(w: World) -> None:
    """Someone deleted the secret's credential in the portal; the secret is not due for 50 days."""
    seed(w, expires_in=80 * DAY)
    w.directory.remove_password_now(w.app_id, w.key_id)


def someone_writes_after(operation: str, write: Callable[[World], None]) -> Arrange:
    """A person (or a concurrent run) writes while this run works, right after its ``operation``."""

    async def arrange(w: World) -> None:
        seed(w, expires_in=80 * DAY)
        done: list[str] = []

        def hook(op: str) -> None:
            if op == operation and not done:
                done.append(op)
                write(w)

        w.directory.faults.after_write.append(hook)

    return arrange


def humans_fresh_credential(w: World) -> None:
    """An owner creates a credential and stores its value (untagged) while the rotation validates."""
    credential, value = w.directory.add_credential(w.app_id, value="own" + new_secret_value()[3:])
    w.extra["human-version"] = w.vault.put(SECRET, value)
    w.extra["human-credential"] = credential.key_id


def newer_version_by_another_run(w: World) -> None:
    credential, value = w.directory.add_credential(
        w.app_id, display_name=rotator_display_name(HOST, SECRET, "r-other"), value="oth" + new_secret_value()[3:]
    )
    w.extra["newer"] = w.vault.put(
        SECRET, value, {Tag.ProviderAddress: w.app_id, Tag.CredentialId: credential.key_id, Tag.RotationId: "r-o"}
    )


def human_version_kept(w: World, o: Outcome) -> None:
    enabled = {v.version: v.enabled for v in w.vault.versions(SECRET)}
    assert enabled[w.extra["human-version"]], "the owner's live version was disabled"
    assert not enabled[w.version]  # the leaked value's version is
    assert o.retired_key_ids == (w.key_id,)


def stopped_before_disabling(w: World, o: Outcome) -> None:
    assert o.retryable  # the next reconcile decides from the newer version
    assert all(v.enabled for v in w.vault.versions(SECRET))  # nothing disabled, the newer one least
    assert w.vault.latest(SECRET).version == w.extra["newer"]


def healed(w: World, o: Outcome) -> None:
    tags = w.tags()
    assert o.created_key_id and tags[Tag.CredentialId] == o.created_key_id
    assert Tag.RetireCredentialId not in tags  # nothing left to retire: the old credential is gone


def cleared_backoff(w: World, o: Outcome) -> None:
    assert Tag.Backoff not in w.tags() and Tag.FailureReason not in w.tags()


def stored_validating_when_nothing_works(w: World, o: Outcome) -> None:
    tags = w.tags()
    assert tags[Tag.RotationState] == "validating" and tags[Tag.CredentialId] == o.created_key_id
    assert o.created_key_id in w.directory.key_ids(w.app_id)


# --- attacks: a Key Vault writer forging what it can write (tags), never the app's -------------------


def unbound(w: World) -> None:
    """The attacker's own secret names another team's app; the app names no such secret."""
    seed(w, tag_credential=False)
    w.directory.set_tags(w.app_id, ["team:payments", binding_tag("kv-other.vault.azure.net", SECRET)])
    add_orphan_of_this_secret(w)
    tags = {Tag.RetireCredentialId: w.key_id, Tag.RetireAfter: format_utc(NOW - DAY)}
    w.vault.update_now(SECRET, w.version, {**w.tags(), **tags})


def add_orphan_of_this_secret(w: World) -> None:
    name = rotator_display_name(HOST, SECRET, "r0")
    orphan, _ = w.directory.add_credential(w.app_id, display_name=name, start=NOW - 2 * HOUR)
    w.extra["orphan"] = orphan.key_id


def bound_by_alias(w: World) -> None:
    seed(w)
    w.directory.set_tags(w.app_id, [f"rotator-binding:{VAULT}/{SECRET}"])  # an alias is no host


def forged_retirement(*, adopted_in_binding: bool) -> Arrange:
    async def arrange(w: World) -> None:
        seed(w, tag_credential=adopted_in_binding, expires_in=80 * DAY)
        tags = {Tag.RetireCredentialId: w.human_key_id, Tag.RetireAfter: format_utc(NOW - DAY)}
        w.vault.update_now(SECRET, w.version, {**w.tags(), **tags})

    return arrange


def forged_credential_id(w: World) -> None:
    seed(w)
    w.vault.update_now(SECRET, w.version, {**w.tags(), Tag.CredentialId: w.human_key_id})


def forged_validation_of_a_humans_credential(w: World) -> None:
    seed(w)
    tags = {Tag.CredentialId: w.human_key_id, Tag.RotationId: "r6", Tag.RotationState: "validating"}
    w.vault.put(SECRET, new_secret_value(), {**w.tags(), **tags}, expires=NOW + 80 * DAY)
    w.probe.refuse(7000215, times=100)


def shared_alias_elsewhere(w: World) -> None:
    """This deployment calls `https://kv-mine...` kv-unit; another deployment gives the same alias to
    its own vault and left `rotator:kv-unit/db:…` (old form) credentials on the shared app."""
    w.env["ROTATION_VAULTS"] = f"{VAULT}=https://kv-mine.vault.azure.net"
    seed(w, expires_in=80 * DAY)
    w.directory.set_tags(w.app_id, [binding_tag("kv-mine.vault.azure.net", SECRET, w.key_id)])
    theirs, _ = w.directory.add_credential(
        w.app_id, display_name=rotator_display_name(VAULT, SECRET, "r0"), start=NOW - 2 * DAY
    )
    w.extra["theirs"] = theirs.key_id


def kept(key: str) -> Check:
    def check(w: World, o: Outcome) -> None:
        assert w.extra[key] in w.directory.key_ids(w.app_id), (key, o.to_dict())
        assert o.removed_orphans == () and o.retired_key_ids == ()

    return check


def report(w: World, *, used_after: timedelta | None) -> None:
    """The sign-in report is readable; the old credential last signed in ``used_after`` the first
    rotation (day-granular, as Graph shows it), or never."""
    last = None if used_after is None else (NOW + used_after).replace(hour=0, minute=0, second=0, microsecond=0)
    w.directory.sign_ins = {w.key_id.lower(): last}


def held(w: World, o: Outcome, reason: str) -> None:
    assert w.key_id in w.directory.key_ids(w.app_id) and o.retired_key_ids == ()
    assert reason in w.tags()[Tag.RetirementHeld]
    assert w.tags()[Tag.RetireCredentialId] == w.key_id


def assert_tag(w: World, tag: str, value: str) -> None:
    assert w.tags().get(tag, "absent") == value, w.tags()


def untouched(w: World, o: Outcome) -> None:
    assert w.key_id in w.directory.key_ids(w.app_id)
    assert w.directory.reads <= 1  # the one read of the app; nothing else happened


# Proven before it is stored: the new version is written once, active (no tag write after it).
ROTATE = ("addPassword", "set")
ROLL_BACK_AFTER_STORE = ("addPassword", "set", "removePassword", "set", "disable")
# Not proven: the new credential goes, nothing is stored, and the failure is counted (Backoff tag).
NOT_PROVEN = ("addPassword", "removePassword", "tag")
# An emergency is recorded on the current version first, so that it survives a crash.
EMERGENCY = ("tag", "addPassword", "set", "removePassword", "disable", "tag")

CASES = [
    # --- nothing to do, or only a warning
    Case("not-due", sync(lambda w: seed(w, expires_in=80 * DAY)), Action.NONE, (), requeue_after=50 * DAY),
    Case(
        "dry-run-writes-nothing",
        sync(add_orphans),
        Action.NONE,
        (),
        dry_run=True,
        mode="forced",
        warning="would remove orphaned rotator credential",
        requeue_after=50 * DAY,
        check=lambda w, o: would_rotate(o),
    ),
    Case(
        "dry-run-leaves-a-pending-validation",
        sync(pending),
        Action.NONE,
        (),
        dry_run=True,
        warning="would validate credential",
        requeue_after=timedelta(0),
    ),
    Case(
        "rotation-waits-for-the-pending-retirement",
        sync(retirement_waiting),
        Action.NONE,
        (),
        warning="waits until credential",
        requeue_after=5 * HOUR,
    ),
    # --- rotation
    Case(
        "due-rotates-validates-activates",
        sync(due),
        Action.ROTATED,
        ROTATE,
        state=RotationState.ACTIVE,
        requeue_after=DAY,
        check=rotated_with_grace,
    ),
    Case(
        "forced-keeps-the-grace-period",
        sync(lambda w: seed(w, expires_in=80 * DAY)),
        Action.ROTATED,
        ROTATE,
        mode="forced",
        state=RotationState.ACTIVE,
        requeue_after=DAY,
        check=rotated_with_grace,
    ),
    Case(
        "emergency-retires-at-once",
        sync(lambda w: seed(w, expires_in=80 * DAY)),
        Action.ROTATED,
        EMERGENCY,
        mode="emergency",
        state=RotationState.ACTIVE,
        requeue_after=NEXT_ROTATION,
        check=retired_at_once,
    ),
    Case(
        "secret-id-stored-forces-a-rotation",
        sync(lambda w: seed(w, expires_in=80 * DAY, stored=lambda x: x.key_id)),
        Action.ROTATED,
        ROTATE,
        warning="holds the Secret ID",
        state=RotationState.ACTIVE,
        requeue_after=DAY,
    ),
    Case(
        "credential-id-gone-warns-and-retires-nothing",
        then(sync(due), lambda w: w.directory.remove_password_now(w.app_id, w.key_id)),
        Action.ROTATED,
        ROTATE,
        warning="named by the CredentialId tag no longer exists",
        state=RotationState.ACTIVE,
        requeue_after=NEXT_ROTATION,
        check=replaced_the_credential,
    ),
    Case(
        "adoption-by-hint-one-candidate",
        sync(lambda w: seed(w, tag_credential=False)),
        Action.ROTATED,
        ROTATE,
        requeue_after=DAY,
        check=adopted_the_only_candidate,
    ),
    Case(
        "adoption-by-hint-many-candidates",
        sync(two_candidates),
        Action.ROTATED,
        ROTATE,
        warning="(2 candidates by hint and expiry)",
        requeue_after=NEXT_ROTATION,
        check=adopted_nothing,
    ),
    Case(
        "disables-dead-versions-tagged-and-untagged",
        sync(lambda w: seed(w, history=old_versions)),
        Action.ROTATED,
        ("tag", "addPassword", "set", "removePassword", "disable", "disable", "disable", "tag"),
        mode="emergency",
        requeue_after=NEXT_ROTATION,
        check=disabled_dead_versions,
    ),
    Case(
        "lifetime-clamped-by-the-policy",
        policy(30 * DAY),
        Action.ROTATED,
        ROTATE,
        warning="lifetime clamped by the app management policy",
        requeue_after=DAY,
        check=clamped,
    ),
    # A definitive failure is counted on the current version (the Backoff tag): the only write.
    Case(
        "policy-unreadable-blocks",
        policy(30 * DAY, readable=False),
        Action.NONE,
        ("tag",),
        error="PolicyBlocked",
        check=lambda w, o: backoff_counted(w, o, 1),
    ),
    Case(
        "policy-forbids-passwords",
        policy(30 * DAY, blocked=True),
        Action.NONE,
        ("tag",),
        error="PolicyBlocked",
    ),
    Case(
        "password-limit",
        sync(lambda w: seed(w, audience="AzureADandPersonalMicrosoftAccount")),
        Action.NONE,
        ("tag",),
        error="PasswordLimit",
        check=nothing_created,
    ),
    Case(
        "guard-refuses-an-unsafe-value",
        then(sync(due), lambda w: w.directory.next_values.append("too-short")),
        Action.NONE,
        ("addPassword", "removePassword", "tag"),
        error="UnsafeValue",
        check=nothing_created,
    ),
    Case(
        # A fresh read shows the write did not land: the credential goes at once.
        "key-vault-write-failure-removes-the-new-credential",
        then(sync(due), lambda w: w.vault.faults.fail("set", KeyVaultError("boom"))),
        Action.VALIDATED,
        ("addPassword", "removePassword"),
        error="KeyVaultError",
        check=nothing_created,
    ),
    Case(
        "lock-lost-stops-before-the-next-write",
        sync(lose_lock_after_add),
        Action.NONE,
        ("addPassword",),
        error="LockLost",
        check=left_for_the_orphan_sweep,
    ),
    # --- validation and rollback
    Case(
        "propagation-is-waited-out-with-the-tested-back-off",
        then(sync(due), lambda w: setattr(w.probe, "propagation_probes", 3)),
        Action.ROTATED,
        ROTATE,
        requeue_after=DAY,
        check=backed_off([1.0, 1.0, 1.0], 4),
    ),
    Case(
        "consecutive-successes-with-short-pauses",
        with_env(sync(due), ROTATION_VALIDATION_SUCCESSES="3"),
        Action.ROTATED,
        ROTATE,
        requeue_after=DAY,
        check=backed_off([1.0, 1.0], 3),
    ),
    Case(
        "validation-fails-fast-and-nothing-is-stored",
        then(sync(due), lambda w: w.probe.refuse(900023)),
        Action.NONE,
        NOT_PROVEN,
        error="ValidationFailed",
        check=never_stored,
    ),
    Case(
        "validation-deadline-and-nothing-is-stored",
        then(sync(due), lambda w: setattr(w.probe, "propagation_probes", 10**6)),
        Action.NONE,
        NOT_PROVEN,
        error="ValidationFailed",
        check=gave_up_at_the_deadline,
    ),
    Case(
        "readback-mismatch-rolls-back",
        then(sync(due), lambda w: setattr(w.vault, "mangle_next_write", True)),
        Action.ROLLED_BACK,
        ROLL_BACK_AFTER_STORE,
        error="ValidationFailed",
        check=rolled_back,
    ),
    Case(
        "pending-validation-is-finished",
        sync(pending),
        Action.VALIDATED,
        ("tag",),
        state=RotationState.ACTIVE,
        requeue_after=DAY,
        check=validated,
    ),
    Case(
        "forced-after-finishing-a-pending-validation-does-not-rotate-twice",
        sync(pending),
        Action.VALIDATED,
        ("tag",),
        mode="forced",
        requeue_after=DAY,
        check=validated,
    ),
    Case(
        "pending-validation-whose-credential-is-gone-rolls-back",
        sync(lambda w: pending(w, credential_exists=False)),
        Action.ROLLED_BACK,
        ("removePassword", "set", "disable"),
        error="ValidationFailed",
        check=rolled_back,
    ),
    Case(
        "nothing-to-restore-keeps-the-failed-candidate",
        then(sync(lambda w: pending(w, earlier_works=False)), lambda w: w.probe.refuse(900023)),
        Action.NONE,
        ("tag",),
        error="ValidationFailed",
        state=RotationState.VALIDATING,
        check=kept_failed,
    ),
    Case(
        "nothing-to-restore-and-the-candidate-gone-forces-a-fresh-rotation",
        sync(lambda w: pending(w, credential_exists=False, earlier_works=False)),
        Action.ROTATED,
        ROTATE,
        warning="a fresh rotation replaces it",
        state=RotationState.ACTIVE,
        requeue_after=NEXT_ROTATION,
        check=replaced_the_credential,
    ),
    Case(
        "an-interrupted-rollback-is-finished",
        sync(interrupted_rollback),
        Action.NONE,
        ("disable",),
        requeue_after=50 * DAY,
        check=finished_the_rollback,
    ),
    # --- retirement
    Case(
        "grace-period-then-retire",
        rotated_earlier(25 * HOUR),
        Action.RETIRED,
        ("removePassword", "disable", "tag"),
        state=RotationState.ACTIVE,
        requeue_after=NEXT_ROTATION - 25 * HOUR,
        check=retired_after_grace,
    ),
    Case(
        "retire-already-gone",
        then(
            rotated_earlier(25 * HOUR),
            lambda w: w.directory.remove_password_now(w.app_id, w.key_id),
        ),
        Action.RETIRED,
        ("removePassword", "disable", "tag"),
        requeue_after=NEXT_ROTATION - 25 * HOUR,
        check=retired_after_grace,
    ),
    Case(
        "emergency-during-the-grace-period-retires-then-rotates",
        rotated_earlier(HOUR),
        Action.ROTATED,
        ("removePassword", "disable", "tag", "tag", "addPassword", "set", "removePassword", "disable", "tag"),
        mode="emergency",
        requeue_after=NEXT_ROTATION,
    ),
    # --- heal, back off, remember (findings 7, 9, 10)
    Case(
        "credential-deleted-in-entra-is-healed-before-it-is-due",
        sync(deleted_in_entra),
        Action.ROTATED,
        ROTATE,
        warning="no longer exists on app",
        state=RotationState.ACTIVE,
        requeue_after=NEXT_ROTATION,
        check=healed,
    ),
    Case(
        "a-failed-rotation-waits-for-the-back-off",
        with_tags(sync(due), Backoff=backoff_tag(1, HOUR)),
        Action.NONE,
        (),
        warning="waits, after 1 failed attempt(s) in a row, until",
        requeue_after=HOUR,
    ),
    Case(
        "the-back-off-doubles",
        then(with_tags(sync(due), Backoff=backoff_tag(2, -timedelta(minutes=1))), lambda w: w.probe.refuse(900023)),
        Action.NONE,
        NOT_PROVEN,
        error="ValidationFailed",
        check=lambda w, o: assert_tag(w, Tag.Backoff, backoff_tag(3, 4 * HOUR)),
    ),
    Case(
        "the-sixth-failure-stops-the-rotator",
        then(with_tags(sync(due), Backoff=backoff_tag(5, -HOUR)), lambda w: w.probe.refuse(900023)),
        Action.NONE,
        NOT_PROVEN,
        error="ValidationFailed",
        check=lambda w, o: assert_tag(w, Tag.Backoff, "6/stopped"),
    ),
    Case(
        # The setup's problem, not the secret's: once granted, the next sweep must rotate at once.
        "a-missing-permission-is-not-counted-for-the-back-off",
        then(
            sync(due),
            lambda w: w.directory.faults.fail(
                "add_password", PermissionDeniedError("Microsoft Graph", "Application.ReadWrite.OwnedBy")
            ),
        ),
        Action.NONE,
        (),
        error="PermissionDenied",
        check=lambda w, o: assert_tag(w, Tag.Backoff, "absent"),
    ),
    Case(
        "a-stopped-rotation-waits-for-a-person",
        with_tags(sync(due), Backoff="6/stopped"),
        Action.NONE,
        (),
        warning="stopped after 6 failed attempts",
        requeue_after=24 * HOUR,
    ),
    Case(
        "a-forced-rotation-ignores-the-back-off-and-clears-it",
        with_tags(sync(due), Backoff="6/stopped", FailureReason="rotation failed (ValidationFailed): x"),
        Action.ROTATED,
        ROTATE,
        mode="forced",
        requeue_after=DAY,
        check=cleared_backoff,
    ),
    Case(
        "a-recorded-emergency-survives-a-crash",
        with_tags(sync(lambda w: seed(w, expires_in=80 * DAY)), Emergency=format_utc(NOW - HOUR)),
        Action.ROTATED,
        ("addPassword", "set", "removePassword", "disable", "tag"),
        state=RotationState.ACTIVE,
        requeue_after=NEXT_ROTATION,
        check=retired_at_once,
    ),
    Case(
        "unproven-while-the-current-value-is-dead-is-stored-validating",
        then(sync(deleted_in_entra), lambda w: w.probe.refuse(900023)),
        Action.ROTATED,
        ("addPassword", "set"),
        error="ValidationFailed",
        check=stored_validating_when_nothing_works,
    ),
    Case(
        # The latest holds a failed `validating` value whose credential is gone: a fresh value that
        # fails too is still better stored (validating) than the dead one left as the latest.
        "a-failed-replacement-of-a-dead-pending-value-is-stored-validating",
        then(
            sync(lambda w: pending(w, credential_exists=False, earlier_works=False)),
            lambda w: w.probe.refuse(900023),
        ),
        Action.ROTATED,
        ("addPassword", "set"),
        error="ValidationFailed",
        check=stored_validating_when_nothing_works,
    ),
    # --- never take a secret down (findings 3, 4)
    Case(
        "an-owners-fresh-version-during-validation-is-never-disabled",
        someone_writes_after("add_password", humans_fresh_credential),
        Action.ROTATED,
        EMERGENCY,
        mode="emergency",
        requeue_after=NEXT_ROTATION,
        check=human_version_kept,
    ),
    Case(
        "a-newer-version-stops-the-run-before-it-disables-anything",
        someone_writes_after("remove_password", newer_version_by_another_run),
        Action.ROTATED,
        ("tag", "addPassword", "set", "removePassword"),
        error="Superseded",
        mode="emergency",
        check=stopped_before_disabling,
    ),
    # --- retirement on evidence (the sign-in report)
    Case(
        "evidence-holds-a-retirement-while-the-old-credential-signs-in",
        then(rotated_earlier(6 * DAY), lambda w: report(w, used_after=DAY)),
        Action.NONE,
        ("tag",),
        warning="signed in on 2025-02-01: something still uses it",
        requeue_after=timedelta(0),
        check=lambda w, o: held(w, o, "signed in on 2025-02-01"),
    ),
    Case(
        "evidence-waits-until-the-report-covers-a-quiet-period-after-activation",
        then(rotated_earlier(25 * HOUR), lambda w: report(w, used_after=None)),
        Action.NONE,
        ("tag",),
        warning="waiting for the sign-in report to cover",
        requeue_after=timedelta(0),
        check=lambda w, o: held(w, o, "waiting for the sign-in report"),
    ),
    Case(
        "evidence-of-a-quiet-period-lets-the-retirement-happen",
        then(rotated_earlier(6 * DAY), lambda w: report(w, used_after=None)),
        Action.RETIRED,
        ("removePassword", "disable", "tag"),
        requeue_after=NEXT_ROTATION - 6 * DAY,
        check=lambda w, o: assert_tag(w, Tag.RetirementHeld, "absent"),
    ),
    Case(
        "evidence-required-but-unreadable-retires-nothing",
        with_env(rotated_earlier(6 * DAY), ROTATION_RETIREMENT_EVIDENCE="required"),
        Action.NONE,
        (),
        error="EvidenceUnavailable",
        check=lambda w, o: assert_tag(w, Tag.RetireCredentialId, w.key_id),
    ),
    Case(
        "evidence-off-retires-on-the-grace-period-alone",
        then(
            with_env(rotated_earlier(25 * HOUR), ROTATION_RETIREMENT_EVIDENCE="off"),
            lambda w: report(w, used_after=DAY),
        ),
        Action.RETIRED,
        ("removePassword", "disable", "tag"),
        requeue_after=NEXT_ROTATION - 25 * HOUR,
    ),
    Case(
        "an-emergency-never-waits-for-evidence",
        then(rotated_earlier(HOUR), lambda w: report(w, used_after=timedelta(minutes=30))),
        Action.ROTATED,
        ("removePassword", "disable", "tag", "tag", "addPassword", "set", "removePassword", "disable", "tag"),
        mode="emergency",
        requeue_after=NEXT_ROTATION,
    ),
    # --- orphans
    Case(
        "orphans-older-than-the-margin-are-removed",
        sync(add_orphans),
        Action.CLEANED,
        ("removePassword",),
        requeue_after=50 * DAY,
        check=orphans_removed_by_margin,
    ),
    # --- attacks: nothing forged in Key Vault widens what the rotator creates or removes
    Case("unbound-secret-nothing-at-all", sync(unbound), Action.NONE, (), "NotBound", check=untouched),
    Case("binding-by-alias-is-no-binding", sync(bound_by_alias), Action.NONE, (), "NotBound", check=untouched),
    Case(
        "own-identity-refused",
        with_env(sync(due), AZURE_CLIENT_ID="to be replaced"),
        Action.NONE,
        (),
        "OwnIdentity",
    ),
    Case(
        "tenant-outside-the-allow-list-refused",
        sync(lambda w: seed(w, tags={Tag.TenantId: "99999999-9999-9999-9999-999999999999"})),
        Action.NONE,
        (),
        "BadTags",
    ),
    Case(
        "forged-retirement-of-a-humans-credential-refused",
        forged_retirement(adopted_in_binding=True),
        Action.NONE,
        ("tag",),
        requeue_after=50 * DAY,
        warning="refused to retire credential",
    ),
    Case(
        "forged-retirement-refused-without-adopted-key-too",
        forged_retirement(adopted_in_binding=False),
        Action.NONE,
        ("tag",),
        requeue_after=50 * DAY,
        warning="refused to retire credential",
    ),
    Case(
        "forged-credential-id-not-retired-in-an-emergency",
        sync(forged_credential_id),
        Action.ROTATED,
        ("tag", *ROTATE),
        mode="emergency",
        requeue_after=NEXT_ROTATION,
        warning="not this secret's adopted credential",
    ),
    Case(
        "forged-validation-never-removes-a-humans-credential",
        sync(forged_validation_of_a_humans_credential),
        Action.ROLLED_BACK,
        ("set", "disable"),
        "ValidationFailed",
        warning="refused to remove credential",
    ),
    Case(
        "old-form-orphans-of-a-shared-alias-are-kept",
        sync(shared_alias_elsewhere),
        Action.NONE,
        (),
        requeue_after=50 * DAY,
        check=kept("theirs"),
    ),
    # --- what cannot be reconciled
    Case("not-managed", sync(lambda w: w.vault.put(SECRET, new_secret_value(), {})), Action.NONE, (), "NotManaged"),
    Case("secret-not-found", sync(due), Action.NONE, (), "SecretNotFound", secret="missing"),
    Case("unknown-vault", sync(due), Action.SKIPPED, (), "UnknownVault", vault="kv-elsewhere"),
    Case(
        "unusable-tags",
        sync(lambda w: seed(w, tags={Tag.RotationState: "validating"})),
        Action.NONE,
        (),
        "BadTags",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_reconciler_branch(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    await case.arrange(world)
    if world.env.get("AZURE_CLIENT_ID") == "to be replaced":
        world.env["AZURE_CLIENT_ID"] = world.app_id  # the rotator runs as the very app the secret names
    world.writes.clear()
    world.directory.reads = 0
    world.clock.sleeps.clear()
    caplog.set_level(logging.DEBUG)

    outcome = await world.reconcile(case.mode, dry_run=case.dry_run, secret=case.secret, vault=case.vault)

    assert outcome.error_code == case.error, outcome.to_dict()
    assert outcome.action is case.action, outcome.to_dict()
    assert tuple(world.ops()) == case.writes, world.writes
    if case.state is not None:
        assert outcome.state is case.state
    # (Where the back-off moved the fake clock, the grace period starts at activation: at the end.)
    assert outcome.requeue_after == (None if case.error else case.requeue_after), outcome.requeue_after
    if case.error is not None:
        assert outcome.retryable is bool(outcome.error and outcome.error.retryable)
    if case.warning is not None:
        assert any(case.warning in w for w in outcome.warnings), outcome.warnings
    if case.check is not None:
        case.check(world, outcome)
    # Invariants of every case: the human's credential is never touched, the latest version is
    # enabled, and no secret value reaches a log line or the outcome.
    if world.human_key_id:
        assert world.human_key_id in world.directory.key_ids(world.app_id)
    if world.vault.versions(SECRET):
        assert world.vault.latest(SECRET).enabled
    shown = caplog.text + json.dumps(outcome.to_dict())
    for value in world.directory.all_values() + world.vault.all_values():
        assert is_guid(value) or value not in shown  # (a Secret ID stored by mistake is no secret)


def test_every_case_has_a_distinct_name() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


async def test_a_second_reconcile_after_any_rotation_finds_nothing_to_do() -> None:
    world = make_world()
    seed(world)
    assert (await world.reconcile()).action is Action.ROTATED
    world.writes.clear()
    again = await world.reconcile()
    assert again.ok and again.action is Action.NONE and world.writes == []


def test_settings_used_here_are_valid() -> None:
    assert make_world().settings.validation_deadline_seconds == 60


async def test_a_held_retirement_is_re_evaluated_each_run_and_written_only_when_its_reason_changes() -> None:
    world = make_world()
    await rotated_earlier(6 * DAY)(world)
    report(world, used_after=DAY)
    world.writes.clear()
    first = await world.reconcile()
    again = await world.reconcile()
    assert first.retired_key_ids == again.retired_key_ids == ()
    assert [w[0] for w in world.writes] == ["tag"]  # the hold is recorded once, then only logged
    report(world, used_after=None)  # the consumer moved to the new value; the report shows it
    world.clock.advance(3 * DAY)
    done = await world.reconcile()
    assert done.retired_key_ids == (world.key_id,) and Tag.RetirementHeld not in world.tags()
