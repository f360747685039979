"""Validation against Entra's propagation delay, rollback when a value cannot be proven, and resuming
after a crash during validation or during the rollback itself.

Propagation is configured on private clouds (`propagationSeconds`, `replicas`): each replica starts
accepting a new secret at its own moment within the window, and every token request lands on a random
replica, exactly the non-atomic behaviour the reconciler must wait out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action
from tests.integration.reconcile_helpers import (
    Seeded,
    SimulatedCrash,
    add_fault,
    assert_converged,
    assert_no_secret_leaked,
    assert_safe_value,
    assert_signs_in,
    capture_logs,
    clear_faults,
    config,
    crash_on_sleep,
    latest,
    make_settings,
    mark,
    matching,
    passwords,
    propagation_never_within_deadline,
    reconcile,
    remove_credential_by_hand,
    requests_since,
    seed,
    start_private_cloud,
    versions,
)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


async def test_validation_waits_out_propagation_and_succeeds(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch, seed=11)
    config(cloud, propagationSeconds=6, replicas=3)
    settings = make_settings(cloud.env, validation_successes=3, validation_deadline_seconds=60)
    seeded = await seed(cloud, expires_in_days=10)
    since = mark(cloud)

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    probes = matching(requests_since(cloud, since), "entra", "POST", r"/oauth2/v2.0/token$")
    statuses = [r["status"] for r in probes]
    assert outcome.validation_attempts == len(probes)
    # It waited (Entra refused the value on some replica at first) and finished on three successes in a row.
    assert 401 in statuses, statuses
    assert statuses[-3:] == [200, 200, 200], statuses
    assert set(statuses) <= {200, 401}, statuses
    await assert_converged(seeded, keep=seeded.humans, patience_seconds=10)


async def test_a_value_not_proven_by_the_deadline_is_never_stored_and_the_old_one_keeps_working(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    config(cloud, propagationSeconds=3600, replicas=3)
    settings = make_settings(cloud.env, validation_successes=3, validation_deadline_seconds=8)
    seeded = await seed(cloud, expires_in_days=10)

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "ValidationFailed", outcome.to_dict()
    assert outcome.action is Action.NONE and outcome.vault_version is None
    assert outcome.error_message and "was removed" in outcome.error_message
    assert outcome.validation_attempts >= 2
    assert outcome.created_key_id is not None
    assert_never_stored(seeded, outcome.created_key_id)
    await assert_signs_in(cloud, seeded.app_id, latest(cloud, seeded.vault, seeded.name).value)


def assert_never_stored(seeded: Seeded, created_key_id: str) -> None:
    """An unproven value never reached Key Vault: the seeded version is still the only one, the new
    credential is gone, and the failure is counted for the back-off."""
    cloud = seeded.cloud
    assert created_key_id.lower() not in passwords(cloud, seeded.object_id)
    assert [v.version for v in versions(cloud, seeded.vault, seeded.name)] == [seeded.version]
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.enabled and current.value == seeded.value
    assert current.tags["CredentialId"] == seeded.key_id and current.tags["Backoff"].startswith("1/")


async def test_a_crash_during_validation_leaves_only_an_orphan_that_the_next_reconcile_removes(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=10)
    during: dict[str, str] = {}

    def observe() -> None:
        current = latest(cloud, seeded.vault, seeded.name)
        during.update({"version": str(current.version), **current.tags})

    # Two successes needed: the reconciler pauses after the first, and the process "dies" there.
    settings = make_settings(validation_successes=2, orphan_margin_minutes=0, throttle_retry_seconds=1)
    before = set(passwords(cloud, seeded.object_id))
    with pytest.raises(SimulatedCrash):
        await reconcile(settings, seeded, sleep=crash_on_sleep(observe))
    # Consumers never saw the unproven value: the latest version is still the seeded one.
    assert during["version"] == seeded.version and during["CredentialId"] == seeded.key_id
    (orphan,) = set(passwords(cloud, seeded.object_id)) - before

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.removed_orphans == (orphan,)
    current = await assert_converged(seeded, keep=seeded.humans)
    assert current.tags["CredentialId"] == outcome.created_key_id


CLEANUP_STEPS: dict[str, dict[str, Any]] = {
    # Removing the unproven credential.
    "removePassword": {"service": "graph", "method": "POST", "path_regex": r"/removePassword$"},
    # Counting the failure (the Backoff tag on the current version).
    "backoff-tag": {"service": "keyvault", "method": "PATCH"},
}


@pytest.mark.parametrize("step", list(CLEANUP_STEPS))
async def test_a_crash_while_cleaning_up_an_unproven_credential_is_finished_by_the_next_reconcile(
    private_cloud: Callable[..., RotatorCloud],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    step: str,
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    config(cloud, propagationSeconds=3600, replicas=1)  # the new value never passes
    propagation_never_within_deadline(cloud)
    settings = make_settings(
        cloud.env, validation_deadline_seconds=5, throttle_retry_seconds=1, orphan_margin_minutes=0
    )
    # Not due: only the operator's forced roll rotates it, so a later normal reconcile only cleans up.
    seeded = await seed(cloud, expires_in_days=200)
    add_fault(cloud, status=500, count=100, **CLEANUP_STEPS[step])

    crashed = await reconcile(settings, seeded, mode="forced")
    assert crashed.error_code == "ValidationFailed", crashed.to_dict()
    assert crashed.created_key_id is not None
    clear_faults(cloud)
    # Whatever failed, consumers read the old value, which works.
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.version == seeded.version
    await assert_signs_in(cloud, seeded.app_id, current.value)

    resumed = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, resumed, caplog)
    assert resumed.ok and resumed.created_key_id is None, resumed.to_dict()
    assert crashed.created_key_id.lower() not in passwords(cloud, seeded.object_id)
    assert [v.version for v in versions(cloud, seeded.vault, seeded.name)] == [seeded.version]

    # And once Entra accepts new values again, the operator's next emergency rotates for good (an
    # operator's request does not wait for the back-off).
    config(cloud, propagationSeconds=0)
    final = await reconcile(settings, seeded, mode="emergency")
    assert final.ok and final.action is Action.ROTATED, final.to_dict()
    await assert_converged(seeded, keep=seeded.humans)


async def test_a_failed_rotation_of_a_secret_whose_credential_is_gone_can_be_recovered(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The 3 a.m. case the rotator exists for: someone removed the credential in Entra, the stored value
    # no longer works, and Entra is slow to accept the replacement.
    cloud = start_private_cloud(private_cloud, monkeypatch)
    config(cloud, propagationSeconds=3600, replicas=1)
    settings = make_settings(cloud.env, validation_deadline_seconds=5)
    seeded = await seed(cloud, expires_in_days=10)
    remove_credential_by_hand(cloud, seeded.object_id, seeded.key_id)
    propagation_never_within_deadline(cloud)

    failed = await reconcile(settings, seeded, mode="emergency")
    assert failed.error_code == "ValidationFailed", failed.to_dict()
    # Consumers must still be able to read the secret (the old value was dead anyway).
    assert latest(cloud, seeded.vault, seeded.name).enabled

    # Once Entra has caught up, the reconciler must get the secret working without a human: the new
    # credential was kept (nothing else could work), so the next run validates it again.
    cloud.admin("POST", "/clock", {"advanceSeconds": 3601})
    outcome = await reconcile(settings, seeded, mode="emergency")

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok, outcome.to_dict()
    await assert_converged(seeded, keep=seeded.humans)


async def test_a_rollback_never_restores_a_secret_id_as_the_value(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    config(cloud, propagationSeconds=3600, replicas=1)
    propagation_never_within_deadline(cloud)
    settings = make_settings(cloud.env, validation_deadline_seconds=5)
    seeded = await seed(cloud, expires_in_days=200, tag_credential=False, stored_value=lambda p: str(p["keyId"]))

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "ValidationFailed", outcome.to_dict()
    current = latest(cloud, seeded.vault, seeded.name)
    assert_safe_value(current.value, passwords(cloud, seeded.object_id))
