"""Issue 10's findings 3, 4, 7, 9, 10 and 17, each reproduced end to end on the local cloud through the
production wiring (real SDKs over HTTPS): concurrent runs, a person writing during a rotation, a
credential deleted in Entra, a validation that can never pass, and crashes in an emergency.

Each test failed before the fix: the runs disabled every version (3), the owner's live version was
disabled (4), the secret stayed "healthy" with a dead value (7), every reconcile minted a credential
(9), an interrupted emergency kept the leaked credential for the grace period (10), and consumers
could read an unproven value (17, also pinned in test_reconciler_smoke and test_reconciler_validation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain import policy
from rotation.domain.model import Action, SecretVersion
from rotation.settings import Settings
from tests.functions.harness import events_named
from tests.integration.reconcile_helpers import (
    add_fault,
    add_human_password,
    assert_no_secret_leaked,
    assert_signs_in,
    capture_logs,
    clear_faults,
    config,
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
    version,
    versions,
)
from tests.integration.seed import write_secret


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


def status_of(cloud: RotatorCloud, vault: str, name: str, settings: Settings) -> dict[str, object]:
    """What `status` and the sweep say of the secret (list-call data: tags and attributes)."""
    current = latest(cloud, vault, name)
    listed = SecretVersion(
        vault, name, current.version, enabled=current.enabled, expires=current.expires, tags=current.tags
    )
    return policy.assess(listed, datetime.now(UTC), settings).to_dict(datetime.now(UTC))


# --- 3. concurrent runs never disable the latest version ------------------------------------------------


async def test_three_concurrent_emergencies_never_disable_the_latest_version(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=200)
    settings = make_settings(validation_successes=1)

    # No lock (no storage configured): three operators at once, each with its own stale view.
    outcomes = await asyncio.gather(*(reconcile(settings, seeded, mode="emergency") for _ in range(3)))

    for outcome in outcomes:
        assert_no_secret_leaked(cloud, outcome, caplog)
        # Each run either completed or stopped on seeing a newer version than its own.
        assert outcome.ok or outcome.error_code == "Superseded", outcome.to_dict()
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.enabled, "the latest version was disabled: every consumer gets 403"
    await assert_signs_in(cloud, seeded.app_id, current.value)
    assert status_of(cloud, seeded.vault, seeded.name, settings)["state"] == "active"
    # And whatever is left converges: a newer version's run stopped, the next reconcile finishes.
    again = await reconcile(settings, seeded)
    assert again.ok, again.to_dict()
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.enabled
    await assert_signs_in(cloud, seeded.app_id, current.value)


# --- 4. an owner's version written during a rotation is never disabled ----------------------------------


async def test_an_owners_fresh_value_stored_during_an_emergency_validation_stays_enabled(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=200)
    settings = make_settings(validation_successes=2, grace_hours=24)
    theirs: dict[str, str] = {}

    async def owner_writes_meanwhile(seconds: float) -> None:
        # Between two probes: the owner makes a credential in the portal and stores its value by hand.
        if not theirs:
            made = add_human_password(cloud, seeded.object_id, display_name="stored by the owner")
            theirs["key"] = made["keyId"]
            theirs["value"] = made["secretText"]
            theirs["version"] = await write_secret(cloud, seeded.vault, seeded.name, made["secretText"])

    outcome = await reconcile(settings, seeded, mode="emergency", sleep=owner_writes_meanwhile)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    owners = version(cloud, seeded.vault, seeded.name, theirs["version"])
    assert owners.enabled, "the owner's live version was disabled"
    await assert_signs_in(cloud, seeded.app_id, owners.value)
    assert theirs["key"].lower() in passwords(cloud, seeded.object_id)
    # The leaked value is what the emergency takes away: its credential and its version.
    assert outcome.retired_key_ids == (seeded.key_id,)
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled


# --- 7. a credential deleted in Entra is healed, not reported healthy ----------------------------------


async def test_a_credential_deleted_in_entra_makes_the_secret_due_now_and_alerts(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=200)  # 170 days before it would be due
    remove_credential_by_hand(cloud, seeded.object_id, seeded.key_id)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    missing = events_named(caplog.records, "CredentialMissing")
    assert [m["keyId"] for m in missing] == [seeded.key_id]
    assert [r.levelno for r in caplog.records if r.getMessage().startswith("CredentialMissing ")] == [logging.ERROR]
    await assert_signs_in(cloud, seeded.app_id, latest(cloud, seeded.vault, seeded.name).value)


# --- 9. a validation that can never pass backs off, then stops with one alert ----------------------------


async def test_a_validation_that_can_never_pass_backs_off_and_stops_with_one_alert(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    config(cloud, propagationSeconds=3600, replicas=1)  # no new value ever signs in
    propagation_never_within_deadline(cloud)
    settings = make_settings(cloud.env, validation_deadline_seconds=5, validation_successes=1)
    seeded = await seed(cloud, expires_in_days=10)
    since = mark(cloud)

    first = await reconcile(settings, seeded)
    again = [await reconcile(settings, seeded) for _ in range(3)]  # the next sweeps

    assert first.error_code == "ValidationFailed", first.to_dict()
    assert all(o.ok and o.action is Action.NONE for o in again), [o.to_dict() for o in again]
    assert all("waits, after 1 failed attempt" in " ".join(o.warnings) for o in again)
    log = requests_since(cloud, since)
    assert len(matching(log, "graph", "POST", r"/addPassword$")) == 1, "one credential, not one per sweep"
    assert [v.version for v in versions(cloud, seeded.vault, seeded.name)] == [seeded.version]
    status = status_of(cloud, seeded.vault, seeded.name, settings)
    assert status["needsWork"] is None and status["backoff"] == {
        "failures": 1,
        "nextAttempt": latest(cloud, seeded.vault, seeded.name).tags["Backoff"].split("/", 1)[1],
        "stopped": False,
    }

    # Five failures later (the back-off has elapsed each time), the sixth stops it with one alert.
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    current = latest(cloud, seeded.vault, seeded.name)
    await write_tags(cloud, seeded.vault, seeded.name, current.version, {**current.tags, "Backoff": f"5/{past}"})
    stopped = await reconcile(settings, seeded)
    after = [await reconcile(settings, seeded) for _ in range(2)]

    assert stopped.error_code == "ValidationFailed"
    assert latest(cloud, seeded.vault, seeded.name).tags["Backoff"] == "6/stopped"
    assert len(events_named(caplog.records, "RotationStopped")) == 1
    assert all(o.ok and "stopped after 6 failed attempts" in " ".join(o.warnings) for o in after)
    problem = status_of(cloud, seeded.vault, seeded.name, settings)["problem"]
    assert isinstance(problem, str) and "--force" in problem
    assert len(matching(requests_since(cloud, since), "graph", "POST", r"/addPassword$")) == 2
    # The old credential was never touched: consumers still sign in.
    await assert_signs_in(cloud, seeded.app_id, latest(cloud, seeded.vault, seeded.name).value)


async def write_tags(cloud: RotatorCloud, vault: str, name: str, version_id: str, tags: dict[str, str]) -> None:
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient

    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(cloud.vault_url(vault), credential, verify_challenge_resource=False) as client,
    ):
        await client.update_secret_properties(name, version_id, tags=tags)


# --- 10. an emergency stays an emergency across crashes ------------------------------------------------


async def test_an_emergency_interrupted_before_its_credential_exists_is_finished_as_one(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=200)
    settings = make_settings(grace_hours=24, throttle_retry_seconds=1, orphan_margin_minutes=0)
    add_fault(cloud, "graph", status=500, count=100, path_regex="addPassword")

    crashed = await reconcile(settings, seeded, mode="emergency")
    clear_faults(cloud)
    assert not crashed.ok
    assert "Emergency" in latest(cloud, seeded.vault, seeded.name).tags

    # The next reconcile is an ordinary one (a sweep): it still rotates and retires at once.
    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,), "the leaked credential must not wait out the grace"
    assert seeded.key_id.lower() not in passwords(cloud, seeded.object_id)
    assert "Emergency" not in latest(cloud, seeded.vault, seeded.name).tags


async def test_an_emergency_interrupted_after_its_new_version_retires_the_leaked_credential_at_once(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=200)
    settings = make_settings(grace_hours=24, throttle_retry_seconds=1)
    add_fault(cloud, "graph", status=500, count=100, path_regex="removePassword")

    crashed = await reconcile(settings, seeded, mode="emergency")
    clear_faults(cloud)
    assert not crashed.ok and crashed.vault_version is not None, crashed.to_dict()

    outcome = await reconcile(settings, seeded)  # an ordinary reconcile

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.retired_key_ids == (seeded.key_id,), outcome.to_dict()
    assert seeded.key_id.lower() not in passwords(cloud, seeded.object_id)
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled
