"""Retirement after the grace period (on a private cloud whose clock the reconciler shares), retiring a
credential that is already gone, and the removal of orphaned rotator credentials."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action, vault_host
from tests.integration.reconcile_helpers import (
    CloudClock,
    add_fault,
    add_human_password,
    advance_clock,
    assert_converged,
    assert_no_secret_leaked,
    capture_logs,
    clear_faults,
    latest,
    make_settings,
    mark,
    matching,
    passwords,
    reconcile,
    remove_credential_by_hand,
    requests_since,
    secret_path,
    seed,
    start_private_cloud,
    version,
    writes,
)

GRACE = timedelta(hours=24)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


@pytest.fixture
def clocked(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    return start_private_cloud(private_cloud, monkeypatch)


async def test_the_old_credential_is_retired_once_the_grace_period_is_over(
    clocked: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud, clock = clocked, CloudClock(clocked)
    settings = make_settings(clocked.env, grace_hours=24)
    seeded = await seed(cloud, expires_in_days=10)

    rotated = await reconcile(settings, seeded, clock=clock)
    assert rotated.ok and rotated.action is Action.ROTATED, rotated.to_dict()
    rotated_at = clock.now()
    retire_after = datetime.fromisoformat(latest(cloud, seeded.vault, seeded.name).tags["RetireAfter"])
    assert abs(retire_after - (rotated_at + GRACE)) < timedelta(seconds=5)

    # Within the grace period nothing happens, and nothing is written.
    advance_clock(cloud, GRACE - timedelta(hours=1))
    since = mark(cloud)
    waiting = await reconcile(settings, seeded, clock=clock)
    assert waiting.ok and waiting.action is Action.NONE, waiting.to_dict()
    assert writes(requests_since(cloud, since)) == []
    await assert_converged(seeded, keep={seeded.key_id, *seeded.humans}, pending_retirement=True)

    advance_clock(cloud, timedelta(hours=2))
    outcome = await reconcile(settings, seeded, clock=clock)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.RETIRED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    assert outcome.created_key_id is None
    await assert_converged(seeded, keep=seeded.humans)
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled


async def test_retiring_a_credential_someone_already_removed_counts_as_done(
    clocked: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud, clock = clocked, CloudClock(clocked)
    settings = make_settings(clocked.env, grace_hours=24)
    seeded = await seed(cloud, expires_in_days=10)
    rotated = await reconcile(settings, seeded, clock=clock)
    assert rotated.ok and rotated.action is Action.ROTATED, rotated.to_dict()
    remove_credential_by_hand(cloud, seeded.object_id, seeded.key_id)
    advance_clock(cloud, GRACE + timedelta(minutes=5))
    since = mark(cloud)

    outcome = await reconcile(settings, seeded, clock=clock)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.RETIRED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    # One removePassword (answered "not found"), not retried.
    assert len(matching(requests_since(cloud, since), "graph", "POST", r"/removePassword$")) == 1
    await assert_converged(seeded, keep=seeded.humans)
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled


async def test_a_rotation_due_after_the_grace_period_retires_first_then_rotates(
    clocked: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud, clock = clocked, CloudClock(clocked)
    settings = make_settings(clocked.env, grace_hours=24)
    seeded = await seed(cloud, expires_in_days=10)
    first = await reconcile(settings, seeded, clock=clock)
    assert first.ok and first.action is Action.ROTATED and first.created_key_id, first.to_dict()

    # 70 days later the 90-day credential is inside its 30-day window, and the grace is long over.
    advance_clock(cloud, timedelta(days=70))
    outcome = await reconcile(settings, seeded, clock=clock)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    current = await assert_converged(seeded, keep={first.created_key_id, *seeded.humans}, pending_retirement=True)
    assert current.tags["RetireCredentialId"] == first.created_key_id


# --- orphans ---------------------------------------------------------------------------------------


async def test_orphans_of_this_secret_are_removed_and_nothing_else(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=60)  # not due: only the orphan sweep has work
    now = datetime.now(UTC)
    end = now + timedelta(days=30)

    host = vault_host(cloud.vault_url(seeded.vault))

    def rotator_credential(vault: str, secret: str, started: datetime) -> str:
        name = f"rotator:{vault}/{secret}:20250101T000000Z-0badc0de"
        key_id: str = add_human_password(cloud, seeded.object_id, display_name=name, start=started, end=end)["keyId"]
        return key_id

    old_orphan = rotator_credential(host, seeded.name, now - timedelta(hours=2))
    young_orphan = rotator_credential(host, seeded.name, now - timedelta(minutes=5))
    other_secret = rotator_credential(host, f"other-{seeded.name}", now - timedelta(days=3))
    other_vault = rotator_credential("kv-second.vault.azure.net", seeded.name, now - timedelta(days=3))
    # The old form names the alias; `kv-local` here is no vault's name but an alias another deployment
    # may give its own vault, so such a credential is never taken for this vault's orphan.
    shared_alias = rotator_credential(seeded.vault, seeded.name, now - timedelta(days=3))
    since = mark(cloud)

    outcome = await reconcile(make_settings(orphan_margin_minutes=60), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.CLEANED, outcome.to_dict()
    assert outcome.removed_orphans == (old_orphan,)
    remaining = set(passwords(cloud, seeded.object_id))
    assert old_orphan not in remaining
    # Younger than the margin (another worker may still be recording it), a human's, another
    # secret's and another vault's: all untouched.
    assert {young_orphan, other_secret, other_vault, shared_alias, seeded.key_id, *seeded.humans} == remaining
    log = requests_since(cloud, since)
    assert [r["path"].rsplit("/", 1)[-1] for r in writes(log)] == ["removePassword"]
    assert latest(cloud, seeded.vault, seeded.name).version == seeded.version


# --- a crash while retiring after the grace period ------------------------------------------------------

RETIRE_STEPS = ("removePassword", "PATCH-clear-tags", "versions-list", "PATCH-disable")


@pytest.mark.parametrize(
    "step",
    RETIRE_STEPS,
)
async def test_a_crash_while_retiring_is_finished_by_the_next_reconcile(
    clocked: RotatorCloud, caplog: pytest.LogCaptureFixture, step: str
) -> None:
    cloud, clock = clocked, CloudClock(clocked)
    settings = make_settings(clocked.env, grace_hours=24, throttle_retry_seconds=1)
    seeded = await seed(cloud, expires_in_days=10)
    rotated = await reconcile(settings, seeded, clock=clock)
    assert rotated.ok and rotated.vault_version, rotated.to_dict()
    advance_clock(cloud, GRACE + timedelta(minutes=5))
    faults = {
        "removePassword": ("graph", "POST", r"/removePassword$"),
        "PATCH-clear-tags": ("keyvault", "PATCH", secret_path(seeded.name, version=rotated.vault_version)),
        "versions-list": ("keyvault", "GET", rf"^/secrets/{seeded.name}/versions$"),
        "PATCH-disable": ("keyvault", "PATCH", secret_path(seeded.name, version=seeded.version)),
    }
    service, method, path = faults[step]
    add_fault(cloud, service, status=500, count=1000, method=method, path_regex=path)

    crashed = await reconcile(settings, seeded, clock=clock)
    assert not crashed.ok, crashed.to_dict()
    clear_faults(cloud)

    outcome = await reconcile(settings, seeded, clock=clock)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok, outcome.to_dict()
    await assert_converged(seeded, keep=seeded.humans)
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled
