from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from rotation.domain.errors import GuardError, NotManagedError, PolicyBlockedError
from rotation.domain.model import PasswordCredential, ProbeResult, SecretVersion, Sensitive
from rotation.domain.policy import (
    ADOPTION_TOLERANCE,
    CLAMP_MARGIN,
    ValidationProgress,
    Verdict,
    adoption_candidates,
    assess,
    backoff_after,
    guard_new_value,
    looks_like_key_id,
    new_credential_lifetime,
    orphans,
    referenced_key_ids,
    requeue_after,
    retire_after,
    retirement_due,
    rotation_due,
    rotation_due_at,
)
from rotation.domain.state import Backoff, ManagedSecret
from rotation.settings import Settings

from .samples import APP_ID, KEY_A, KEY_B, KEY_C, NOW, SECRET_VALUE

DAY = timedelta(days=1)

# ---------------------------------------------------------------------------------------------- due


def test_forced_rotation_is_always_due() -> None:
    decision = rotation_due(NOW + 300 * DAY, NOW, 30, True)
    assert decision.due and "requested" in decision.reason


def test_a_secret_without_expiry_is_due() -> None:
    assert rotation_due(None, NOW, 30).due


@pytest.mark.parametrize(
    ("expires_in", "due"),
    [
        (-DAY, True),
        (timedelta(0), True),
        (DAY, True),
        (30 * DAY, True),
        (30 * DAY + timedelta(seconds=1), False),
        (90 * DAY, False),
    ],
)
def test_due_inside_the_window(expires_in: timedelta, due: bool) -> None:
    decision = rotation_due(NOW + expires_in, NOW, 30)
    assert decision.due is due
    assert decision.reason


def test_reasons_say_when() -> None:
    assert rotation_due(NOW - 3 * DAY, NOW, 30).reason == "expired 3 day(s) ago (2025-01-28T12:00:00Z)"
    assert "expires in 12 day(s)" in rotation_due(NOW + 12 * DAY, NOW, 30).reason
    assert "expires in 5 hour(s)" in rotation_due(NOW + timedelta(hours=5), NOW, 30).reason
    assert rotation_due(NOW + 60 * DAY, NOW, 30).reason == (
        "expires 2025-04-01T12:00:00Z; due from 2025-03-02T12:00:00Z"
    )


def test_window_as_long_as_the_lifetime_shrinks_instead_of_rotating_every_sweep() -> None:
    # A policy clamped the credential to 30 days; the configured window is 30 days too.
    issued = NOW - DAY
    expires = issued + 30 * DAY
    assert not rotation_due(expires, NOW, 30, issued=issued).due
    assert rotation_due(expires, issued + 21 * DAY, 30, issued=issued).due  # last third
    # A window shorter than the lifetime is left alone.
    assert rotation_due(expires, NOW, 29, issued=issued).due is True


# ---------------------------------------------------------------------------------------------- lifetime


def test_lifetime_without_policy() -> None:
    start, end, clamped = new_credential_lifetime(NOW.replace(microsecond=987654), 90)
    assert start == NOW  # whole seconds, like Key Vault's exp
    assert end == NOW + 90 * DAY
    assert not clamped


def test_lifetime_under_the_policy_maximum_is_kept() -> None:
    assert new_credential_lifetime(NOW, 30, timedelta(days=90)) == (NOW, NOW + 30 * DAY, False)
    assert new_credential_lifetime(NOW, 30, 30 * DAY + CLAMP_MARGIN).clamped is False


def test_lifetime_is_clamped_just_under_the_policy_maximum() -> None:
    start, end, clamped = new_credential_lifetime(NOW, 90, timedelta(days=30))
    assert clamped
    assert end - start == 30 * DAY - CLAMP_MARGIN
    assert end.microsecond == 0


def test_a_policy_maximum_too_short_to_use_blocks_rotation() -> None:
    with pytest.raises(PolicyBlockedError) as caught:
        new_credential_lifetime(NOW, 90, timedelta(seconds=30))
    assert caught.value.code == "PolicyBlocked"


# ---------------------------------------------------------------------------------------------- retirement


def test_retire_after() -> None:
    assert retire_after(NOW, 24, emergency=True) is None
    assert retire_after(NOW, 0, emergency=False) is None
    assert retire_after(NOW.replace(microsecond=5), 24, emergency=False) == NOW + DAY


def test_retirement_due() -> None:
    assert retirement_due(None, NOW)
    assert retirement_due(NOW, NOW)
    assert not retirement_due(NOW + timedelta(seconds=1), NOW)
    assert retirement_due(NOW - DAY, NOW)


# ---------------------------------------------------------------------------------------------- orphans


def cred(key_id: str, display_name: str | None, start_ago: timedelta | None = 2 * DAY) -> PasswordCredential:
    start = None if start_ago is None else NOW - start_ago
    return PasswordCredential(key_id, display_name, "abc", start, NOW + 60 * DAY)


def test_orphans_are_only_this_secrets_unreferenced_old_enough_rotator_credentials() -> None:
    mine_orphan = cred(KEY_A, "rotator:kv-prod-1/db-password:r1")
    mine_referenced = cred(KEY_B, "rotator:kv-prod-1/db-password:r2")
    credentials = [
        mine_orphan,
        mine_referenced,
        cred("10000000-0000-0000-0000-000000000001", "Password uploaded on Fri Jan 31 2025"),  # a human's
        cred("10000000-0000-0000-0000-000000000002", None),  # a human's, unnamed
        cred("10000000-0000-0000-0000-000000000003", "rotator:kv-prod-1/other-secret:r3"),  # another secret's
        cred("10000000-0000-0000-0000-000000000004", "rotator:kv-prod-2/db-password:r4"),  # another vault's
        cred("10000000-0000-0000-0000-000000000005", "rotator:kv-prod-1/db-password:r5", timedelta(minutes=5)),
        cred("10000000-0000-0000-0000-000000000006", "rotator:kv-prod-1/db-password:r6", None),  # no start
        cred("10000000-0000-0000-0000-000000000007", "my rotator:kv-prod-1/db-password:r7"),
    ]
    found = orphans(credentials, "kv-prod-1", "db-password", [KEY_B.upper()], NOW, timedelta(hours=1))
    assert found == [mine_orphan]


def test_orphans_never_include_human_credentials_whatever_the_margin() -> None:
    human = [cred(KEY_A, "Production"), cred(KEY_B, ""), cred(KEY_C, None)]
    assert orphans(human, "kv-prod-1", "db-password", [], NOW, timedelta(0)) == []


def test_orphan_matching_is_case_insensitive_like_key_vault() -> None:
    c = cred(KEY_A, "rotator:KV-PROD-1/DB-Password:r1")
    assert orphans([c], "kv-prod-1", "db-password", [], NOW, timedelta(0)) == [c]


def test_orphan_margin_boundary() -> None:
    c = cred(KEY_A, "rotator:kv-prod-1/db:r1", timedelta(hours=1))
    assert orphans([c], "kv-prod-1", "db", [], NOW, timedelta(hours=1)) == [c]
    assert orphans([c], "kv-prod-1", "db", [], NOW, timedelta(hours=1, seconds=1)) == []


def test_referenced_key_ids_from_versions() -> None:
    versions = [
        SecretVersion("kv", "db", "1", tags={"CredentialId": KEY_A.upper()}),
        SecretVersion("kv", "db", "2", tags={"CredentialId": KEY_B, "RetireCredentialId": KEY_C}),
        SecretVersion("kv", "db", "3", tags={"CredentialId": " "}),
    ]
    assert referenced_key_ids(versions) == {KEY_A, KEY_B, KEY_C}


# ---------------------------------------------------------------------------------------------- adoption


def adoptable(key_id: str, hint: str, end_offset: timedelta | None, name: str | None = None) -> PasswordCredential:
    end = None if end_offset is None else NOW + 60 * DAY + end_offset
    return PasswordCredential(key_id, name, hint, NOW - 30 * DAY, end)


def test_adoption_matches_hint_and_expiry() -> None:
    expires = NOW + 60 * DAY
    right = adoptable(KEY_A, "abc", timedelta(hours=5))
    credentials = [right, adoptable(KEY_B, "abc", 2 * DAY), adoptable(KEY_C, "xyz", timedelta(0))]
    assert adoption_candidates(credentials, "abc", expires) == [right]
    assert adoption_candidates([adoptable(KEY_A, "abc", ADOPTION_TOLERANCE)], "abc", expires) != []
    assert adoption_candidates([adoptable(KEY_A, "abc", None)], "abc", expires) == []


def test_adoption_by_hint_alone_when_the_secret_has_no_expiry() -> None:
    a, b = adoptable(KEY_A, "abc", DAY), adoptable(KEY_B, "abc", None)
    assert adoption_candidates([a, b, adoptable(KEY_C, "abd", None)], "abcdef", None) == [a, b]  # ambiguous


def test_adoption_is_case_sensitive_and_needs_a_full_hint() -> None:
    assert adoption_candidates([adoptable(KEY_A, "ABC", timedelta(0))], "abc", None) == []
    assert adoption_candidates([adoptable(KEY_A, "ab", timedelta(0))], "ab", None) == []


def test_adoption_skips_credentials_the_rotator_made_for_other_secrets() -> None:
    other = adoptable(KEY_A, "abc", timedelta(0), "rotator:kv-prod-1/other:r1")
    mine = adoptable(KEY_B, "abc", timedelta(0), "rotator:kv-prod-1/db:r2")
    assert adoption_candidates([other, mine], "abc", None) == []
    assert adoption_candidates([other, mine], "abc", None, vault="kv-prod-1", secret="db") == [mine]


# ---------------------------------------------------------------------------------------------- guard


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        (" " + SECRET_VALUE, "leading or trailing whitespace"),
        (SECRET_VALUE + "\n", "leading or trailing whitespace"),
        (SECRET_VALUE[:10] + " " + SECRET_VALUE[10:], "whitespace or control"),
        (SECRET_VALUE[:10] + "\x00" + SECRET_VALUE[10:], "whitespace or control"),
        (KEY_A, "Secret ID"),
        (KEY_A.upper(), "Secret ID"),
        (KEY_B, "shaped like a GUID"),
        ("{" + KEY_B + "}", "shaped like a GUID"),
        (KEY_B.replace("-", ""), "shaped like a GUID"),
        ("abc8Q~short", "truncated"),
    ],
)
def test_guard_refuses_values_that_cannot_be_a_secret(value: str, fragment: str) -> None:
    with pytest.raises(GuardError) as caught:
        guard_new_value(value, KEY_A)
    assert fragment in str(caught.value)
    assert caught.value.code == "UnsafeValue"
    if value.strip():
        assert value.strip() not in str(caught.value) or value.strip().lower() == KEY_A


def test_guard_accepts_real_looking_values_and_sensitive() -> None:
    guard_new_value(SECRET_VALUE, KEY_A)
    guard_new_value(Sensitive(SECRET_VALUE), KEY_A)
    with pytest.raises(GuardError):
        guard_new_value(Sensitive(KEY_A), KEY_A)


def test_looks_like_key_id() -> None:
    credentials = [PasswordCredential(KEY_A), PasswordCredential(KEY_B)]
    assert looks_like_key_id(KEY_B.upper(), credentials) == KEY_B
    assert looks_like_key_id("{" + KEY_A + "} ", credentials) == KEY_A
    assert looks_like_key_id(Sensitive(KEY_A), credentials) == KEY_A
    assert looks_like_key_id(KEY_C, credentials) is None
    assert looks_like_key_id(SECRET_VALUE, credentials) is None


# ---------------------------------------------------------------------------------------------- validation

OK = ProbeResult(ok=True)
WRONG_SECRET = ProbeResult(ok=False, code=7000215, message="AADSTS7000215")


def test_validation_passes_after_consecutive_successes_and_a_failure_resets_the_streak() -> None:
    p = ValidationProgress(needed=3, deadline_seconds=180)
    p = p.after(OK, 1).after(OK, 2)
    assert (p.verdict, p.streak) == (Verdict.CONTINUE, 2)
    p = p.after(WRONG_SECRET, 3)  # a replica that has not caught up yet
    assert (p.verdict, p.streak, p.last_code) == (Verdict.CONTINUE, 0, 7000215)
    p = p.after(OK, 4).after(OK, 5).after(OK, 6)
    assert p.verdict is Verdict.PASSED and p.finished
    assert p.attempts == 6
    assert "3 consecutive" in p.reason


def test_propagation_failures_are_retried_until_the_deadline() -> None:
    p = ValidationProgress(needed=2, deadline_seconds=60)
    for elapsed in (1, 5, 20, 59):
        p = p.after(WRONG_SECRET, elapsed)
        assert p.verdict is Verdict.CONTINUE
    p = p.after(WRONG_SECRET, 60)
    assert p.verdict is Verdict.FAILED
    assert "not proven within 60 s" in p.reason and "AADSTS7000215" in p.reason


def test_deadline_also_ends_an_unfinished_streak() -> None:
    p = ValidationProgress(needed=3, deadline_seconds=10).after(OK, 11)
    assert p.verdict is Verdict.FAILED


@pytest.mark.parametrize("code", [700016, 7000222, 900023, 90002])
def test_codes_waiting_cannot_fix_fail_at_once(code: int) -> None:
    p = ValidationProgress(needed=3, deadline_seconds=180).after(ProbeResult(ok=False, code=code), 1)
    assert p.verdict is Verdict.FAILED
    assert f"AADSTS{code}" in p.reason


def test_transient_failures_and_unknown_codes_keep_trying() -> None:
    p = ValidationProgress(needed=1, deadline_seconds=180)
    p = p.after(ProbeResult(ok=False, code=700016, transient=True), 1)
    assert p.verdict is Verdict.CONTINUE
    p = p.after(ProbeResult(ok=False, code=1234567), 2)
    assert p.verdict is Verdict.CONTINUE
    p = p.after(ProbeResult(ok=False, code=None, transient=True, message="connection reset"), 3)
    assert p.verdict is Verdict.CONTINUE
    assert p.after(OK, 4).verdict is Verdict.PASSED


def test_finished_progress_does_not_change() -> None:
    done = ValidationProgress(needed=1, deadline_seconds=10).after(OK, 1)
    assert done.after(WRONG_SECRET, 2) is done


def test_probes_once_a_second_then_back_off_in_proportion_to_the_wait() -> None:
    p = ValidationProgress(needed=3, deadline_seconds=600)
    assert p.next_delay() == 1.0
    delays = []
    for elapsed in (0, 5, 10, 20, 60, 150, 300):
        p = p.after(WRONG_SECRET, elapsed)
        delays.append(p.next_delay())
    # Never more than one request a second for one app; never later than a tenth of the wait.
    assert delays == [1.0, 1.0, 1.0, 2.0, 6.0, 15.0, 15.0]
    assert p.after(OK, 301).next_delay() == 1.0


# ---------------------------------------------------------------------------------------------- sweep

SETTINGS = Settings.from_env({"ROTATION_VAULTS": "kv-prod-1"})


def listed(tags: dict[str, str], expires_in: timedelta | None = 80 * DAY, enabled: bool = True) -> SecretVersion:
    return SecretVersion(
        "kv-prod-1",
        "db-password",
        None,
        enabled=enabled,
        created=NOW - 60 * DAY,
        expires=None if expires_in is None else NOW + expires_in,
        tags=tags,
    )


ACTIVE = {"ProviderAddress": APP_ID, "CredentialId": KEY_A, "RotationId": "r1", "RotationState": "active"}


def sweep_needs_work(version: SecretVersion, settings: Settings, now: datetime) -> str | None:
    return assess(version, now, settings).needs_work


def test_assess_refuses_unmanaged_and_ignores_disabled_secrets() -> None:
    with pytest.raises(NotManagedError):
        assess(listed({}, expires_in=-DAY), NOW, SETTINGS)
    disabled = assess(listed(ACTIVE, expires_in=-DAY, enabled=False), NOW, SETTINGS)
    assert disabled.needs_work is None and disabled.next_look_at is None


def test_sweep_leaves_a_healthy_secret_alone() -> None:
    assert sweep_needs_work(listed(ACTIVE), SETTINGS, NOW) is None


def test_sweep_finds_due_rotations() -> None:
    reason = sweep_needs_work(listed(ACTIVE, expires_in=10 * DAY), SETTINGS, NOW)
    assert reason is not None and reason.startswith("rotation due")
    assert sweep_needs_work(listed({"ProviderAddress": APP_ID}, expires_in=None), SETTINGS, NOW)


def test_sweep_shrinks_the_window_only_for_versions_the_rotator_wrote() -> None:
    # 20-day credentials: a policy clamped the rotator's; a person stored the other one by hand.
    clamped = dataclasses.replace(listed(ACTIVE, expires_in=10 * DAY), created=NOW - 10 * DAY)
    assert sweep_needs_work(clamped, SETTINGS, NOW) is None  # due in its last third, not every sweep
    by_hand = dataclasses.replace(clamped, tags={"ProviderAddress": APP_ID, "CredentialId": KEY_A})
    assert sweep_needs_work(by_hand, SETTINGS, NOW) is not None


def test_sweep_uses_per_secret_tags() -> None:
    tags = {**ACTIVE, "RotateBeforeDays": "85"}
    assert sweep_needs_work(listed(tags, expires_in=80 * DAY), SETTINGS, NOW) is not None


def test_sweep_finds_pending_validation_and_due_retirement() -> None:
    validating = {**ACTIVE, "RotationState": "validating"}
    assert sweep_needs_work(listed(validating), SETTINGS, NOW) == "a validation is pending"
    retiring = {**ACTIVE, "RetireCredentialId": KEY_B, "RetireAfter": "2025-01-31T11:00:00Z"}
    assert sweep_needs_work(listed(retiring), SETTINGS, NOW) == f"credential {KEY_B} is due for retirement"
    waiting = {**ACTIVE, "RetireCredentialId": KEY_B, "RetireAfter": "2025-02-01T11:00:00Z"}
    assert sweep_needs_work(listed(waiting), SETTINGS, NOW) is None


def test_a_failed_rotation_is_retried_only_when_due() -> None:
    failed = {"ProviderAddress": APP_ID, "RotationState": "failed", "FailureReason": "AADSTS700016"}
    assert sweep_needs_work(listed(failed), SETTINGS, NOW) is None
    reason = sweep_needs_work(listed(failed, expires_in=5 * DAY), SETTINGS, NOW)
    assert reason is not None and "previous attempt failed: AADSTS700016" in reason


def test_sweep_surfaces_unusable_tags() -> None:
    reason = sweep_needs_work(listed({"ProviderAddress": "not-a-guid"}), SETTINGS, NOW)
    assert reason is not None and reason.startswith("tags need attention")
    reason = sweep_needs_work(listed({"ProviderAddress": APP_ID, "TenantId": "common"}), SETTINGS, NOW)
    assert reason is not None and "TenantId" in reason


def test_assess_reports_state_and_when_to_look_again() -> None:
    status = assess(listed(ACTIVE, expires_in=80 * DAY), NOW, SETTINGS)
    assert (status.state, status.credential_id, status.app_id) == ("active", KEY_A, APP_ID)
    assert status.rotation_due_at == NOW + 50 * DAY  # the default window is 30 days
    assert status.next_look_at == NOW + 50 * DAY and status.requeue_after(NOW) == 50 * DAY
    waiting = {**ACTIVE, "RetireCredentialId": KEY_B, "RetireAfter": "2025-02-01T12:00:00Z"}
    assert assess(listed(waiting), NOW, SETTINGS).requeue_after(NOW) == DAY
    data = status.to_dict(NOW)
    assert data["rotationDueAt"] == "2025-03-22T12:00:00Z" and data["nextLookAt"] == data["rotationDueAt"]


def test_assess_keeps_what_it_can_of_unusable_tags() -> None:
    status = assess(listed({"ProviderAddress": "not-a-guid"}), NOW, SETTINGS)
    assert status.problem and "ProviderAddress" in status.problem
    assert status.app_id == "not-a-guid" and status.next_look_at is None


def test_backoff_doubles_from_an_hour_to_a_day_and_stops_at_the_sixth_failure() -> None:
    waits: list[timedelta | None] = []
    backoff: Backoff | None = None
    for _ in range(6):
        backoff = backoff_after(backoff, NOW)
        waits.append(None if backoff.next_attempt is None else backoff.next_attempt - NOW)
    hour = timedelta(hours=1)
    assert waits == [hour, 2 * hour, 4 * hour, 8 * hour, 16 * hour, None]
    assert backoff is not None and backoff.stopped and backoff.to_tag() == "6/stopped"
    assert backoff_after(Backoff(4, NOW), NOW).to_tag() == "5/2025-02-01T04:00:00Z"


@pytest.mark.parametrize(
    "raw",
    ["", "3", "x/stopped", "0/stopped", "1001/stopped", "2/tomorrow", "2/0001-01-01T00:00:00+23:59", "-1/stopped"],
)
def test_a_malformed_backoff_tag_is_a_tag_problem_not_a_crash(raw: str) -> None:
    status = assess(listed({**ACTIVE, "Backoff": raw}, expires_in=5 * DAY), NOW, SETTINGS)
    if raw:  # an empty tag is no tag
        assert status.problem and "Backoff=" in status.problem


def test_the_sweep_waits_out_the_backoff_and_says_when_it_stopped() -> None:
    waiting = {**ACTIVE, "Backoff": "2/2025-01-31T14:00:00Z"}
    status = assess(listed(waiting, expires_in=5 * DAY), NOW, SETTINGS)
    assert status.needs_work is None and status.next_look_at == NOW + timedelta(hours=2)
    assert status.to_dict(NOW)["backoff"] == {"failures": 2, "nextAttempt": "2025-01-31T14:00:00Z", "stopped": False}
    elapsed = {**ACTIVE, "Backoff": "2/2025-01-31T11:00:00Z"}
    assert assess(listed(elapsed, expires_in=5 * DAY), NOW, SETTINGS).needs_work is not None
    stopped = assess(listed({**ACTIVE, "Backoff": "6/stopped"}, expires_in=5 * DAY), NOW, SETTINGS)
    assert stopped.needs_work is None and stopped.next_look_at == NOW + DAY
    assert stopped.problem is not None and "rotate kv-prod-1 db-password --force" in stopped.problem


def test_a_recorded_emergency_is_work_now() -> None:
    emergency = {**ACTIVE, "Emergency": "2025-01-31T11:00:00Z"}
    status = assess(listed(emergency), NOW, SETTINGS)
    assert status.needs_work is not None and "emergency" in status.needs_work
    assert status.next_look_at == NOW and status.to_dict(NOW)["emergencyRequested"] == "2025-01-31T11:00:00Z"


# ---------------------------------------------------------------------------------------------- requeue


def test_rotation_due_at_uses_the_same_window_as_rotation_due() -> None:
    assert rotation_due_at(None, 30) is None
    assert rotation_due_at(NOW + 80 * DAY, 30) == NOW + 50 * DAY
    # A 30-day credential with a 30-day window: due in its last third, as rotation_due says.
    assert rotation_due_at(NOW + 30 * DAY, 30, issued=NOW) == NOW + 20 * DAY
    assert not rotation_due(NOW + 30 * DAY, NOW + 20 * DAY - timedelta(seconds=1), 30, issued=NOW).due
    assert rotation_due(NOW + 30 * DAY, NOW + 20 * DAY, 30, issued=NOW).due


def state_of(tags: dict[str, str]) -> ManagedSecret:
    return ManagedSecret.from_tags(tags, vault="kv-prod-1", name="db-password")


@pytest.mark.parametrize(
    ("tags", "expires_in", "expected"),
    [
        pytest.param(ACTIVE, 80 * DAY, 50 * DAY, id="next-rotation"),
        pytest.param(ACTIVE, 10 * DAY, timedelta(0), id="rotation-due-now"),
        pytest.param({"ProviderAddress": APP_ID}, None, timedelta(0), id="no-expiry-is-due-now"),
        pytest.param({**ACTIVE, "RotationState": "validating"}, 80 * DAY, timedelta(seconds=600), id="validating"),
        pytest.param(
            {**ACTIVE, "RetireCredentialId": KEY_B, "RetireAfter": "2025-02-01T00:00:00Z"},
            80 * DAY,
            timedelta(hours=12),
            id="grace-period",
        ),
        pytest.param(
            {**ACTIVE, "RetireCredentialId": KEY_B, "RetireAfter": "2025-01-01T00:00:00Z"},
            80 * DAY,
            timedelta(0),
            id="retirement-overdue",
        ),
    ],
)
def test_requeue_after_is_the_earliest_thing_the_state_waits_for(
    tags: dict[str, str], expires_in: timedelta | None, expected: timedelta
) -> None:
    version = listed(tags, expires_in=expires_in)
    wait = requeue_after(state_of(tags), version, 30, NOW, validation_deadline=timedelta(seconds=600))
    assert wait == expected
