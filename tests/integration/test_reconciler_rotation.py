"""When the reconciler rotates, what it retires, and what it costs (real SDKs against the local cloud).

Covers: due (window of the setting or the `RotateBeforeDays` tag, no expiry, forced), idempotency (an
up-to-date secret costs reads only), emergency retirement, adoption of an untagged secret, the Secret-ID
mistake, the two-password cap of personal-account apps, the outcome's shape and the request budget.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action
from tests.integration.reconcile_helpers import (
    application,
    assert_converged,
    assert_no_secret_leaked,
    capture_logs,
    latest,
    make_settings,
    mark,
    matching,
    passwords,
    reconcile,
    requests_since,
    seed,
    version,
    versions,
    with_world,
    writes,
)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


# --- due or not ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in_days", "rotate_before_tag", "due"),
    [
        pytest.param(40, None, False, id="outside-the-default-30-days"),
        pytest.param(20, None, True, id="inside-the-default-30-days"),
        pytest.param(10, "5", False, id="tag-narrows-the-window"),
        pytest.param(40, "45", True, id="tag-widens-the-window"),
    ],
)
async def test_rotation_is_due_within_the_rotate_before_window(
    cloud: RotatorCloud,
    caplog: pytest.LogCaptureFixture,
    expires_in_days: int,
    rotate_before_tag: str | None,
    due: bool,
) -> None:
    tags = {"RotateBeforeDays": rotate_before_tag} if rotate_before_tag else None
    seeded = await seed(cloud, expires_in_days=expires_in_days, tags=tags)
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok, outcome.to_dict()
    log = requests_since(cloud, since)
    if due:
        assert outcome.action is Action.ROTATED
        assert outcome.retired_key_ids == (seeded.key_id,)
        await assert_converged(seeded, keep=seeded.humans)
    else:
        assert outcome.action is Action.NONE
        assert writes(log) == [], writes(log)
        assert latest(cloud, seeded.vault, seeded.name).version == seeded.version


async def test_a_secret_without_expiry_is_rotated_and_gets_one(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=None)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    current = await assert_converged(seeded, keep=seeded.humans)
    assert current.expires is not None


async def test_an_emergency_forces_a_rotation_that_is_not_due_and_retires_at_once(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=200)
    settings = make_settings(grace_hours=24)

    normal = await reconcile(settings, seeded)
    assert normal.ok and normal.action is Action.NONE, normal.to_dict()

    outcome = await reconcile(settings, seeded, mode="emergency")

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    # Presumed leaked: no grace period, whatever the setting says.
    assert outcome.retired_key_ids == (seeded.key_id,)
    await assert_converged(seeded, keep=seeded.humans)
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled


async def test_an_emergency_during_a_grace_period_retires_both_old_credentials(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=10)
    settings = make_settings(grace_hours=24)
    first = await reconcile(settings, seeded)
    assert first.ok and first.action is Action.ROTATED, first.to_dict()
    await assert_converged(seeded, keep={seeded.key_id, *seeded.humans}, pending_retirement=True)

    outcome = await reconcile(settings, seeded, mode="emergency")

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert first.created_key_id is not None
    assert set(outcome.retired_key_ids) == {seeded.key_id, first.created_key_id}
    await assert_converged(seeded, keep=seeded.humans)


async def test_reconciling_an_up_to_date_secret_only_reads(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=3)
    settings = make_settings()
    rotated = await reconcile(settings, seeded)
    assert rotated.ok and rotated.action is Action.ROTATED, rotated.to_dict()
    state_before = latest(cloud, seeded.vault, seeded.name)
    since = mark(cloud)

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.NONE, outcome.to_dict()
    assert outcome.warnings == ()
    log = requests_since(cloud, since)
    touched = [r for r in log if r["service"] in ("graph", "keyvault", "entra")]
    assert touched and all(r["method"] == "GET" for r in touched), touched
    assert latest(cloud, seeded.vault, seeded.name) == state_before


# --- adoption of a secret without CredentialId ---------------------------------------------------------


async def test_adoption_retires_the_one_credential_matching_hint_and_expiry(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=10, tag_credential=False)
    # A decoy with the same hint but another expiry is no candidate.
    decoy = cloud.admin("POST", f"/applications/{seeded.object_id}/passwords", {"displayName": "decoy"})

    def same_hint(world: Any) -> None:
        app = application(world, seeded.object_id)
        target = next(p for p in app.passwords if p.key_id == decoy["keyId"])
        target.hint = seeded.value[:3]

    with_world(cloud, same_hint)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    await assert_converged(seeded, keep={decoy["keyId"], *seeded.humans})


@pytest.mark.parametrize("candidates", [0, 2])
async def test_adoption_leaves_an_unidentified_credential_in_place_with_a_warning(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, candidates: int
) -> None:
    # No candidate: the credential's end is a month away from the secret's exp. Two: a twin with the
    # same hint and end (as a human may create by copying the expiry).
    end_days = 40 if candidates == 0 else None
    seeded = await seed(cloud, expires_in_days=10, tag_credential=False, credential_end_in_days=end_days)
    keep = {seeded.key_id, *seeded.humans}
    if candidates == 2:
        twin = cloud.admin("POST", f"/applications/{seeded.object_id}/passwords", {"displayName": "twin"})
        keep.add(twin["keyId"])

        def twins(world: Any) -> None:
            app = application(world, seeded.object_id)
            original = next(p for p in app.passwords if p.key_id == seeded.key_id)
            copy = next(p for p in app.passwords if p.key_id == twin["keyId"])
            copy.hint, copy.end = original.hint, original.end

        with_world(cloud, twins)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == ()
    warning = " ".join(outcome.warnings)
    assert f"{candidates} candidates" in warning and "CredentialId" in warning, outcome.warnings
    await assert_converged(seeded, keep=keep)
    # The old value still signs in, so its version stays readable.
    assert version(cloud, seeded.vault, seeded.name, seeded.version).enabled


# --- the Secret-ID mistake ------------------------------------------------------------------------------


async def test_a_stored_secret_id_is_reported_and_replaced_by_a_real_value(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    # Not due (200 days), not tagged with a CredentialId: only the mistake makes it rotate.
    seeded = await seed(cloud, expires_in_days=200, tag_credential=False, stored_value=lambda p: str(p["keyId"]))
    assert latest(cloud, seeded.vault, seeded.name).value == seeded.key_id

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert any("Secret ID" in w and seeded.key_id in w for w in outcome.warnings), outcome.warnings
    # The credential whose ID was stored is named by no tag: the rotator must not remove it.
    await assert_converged(seeded, keep={seeded.key_id, *seeded.humans})
    assert not version(cloud, seeded.vault, seeded.name, seeded.version).enabled


# --- two passwords at most for apps open to personal accounts ------------------------------------------


async def test_a_personal_account_app_holding_two_passwords_is_a_clear_error_that_changes_nothing(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, sign_in_audience="AzureADandPersonalMicrosoftAccount")
    assert len(passwords(cloud, seeded.object_id)) == 2
    credentials_before = passwords(cloud, seeded.object_id)
    versions_before = versions(cloud, seeded.vault, seeded.name)
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "PasswordLimit", outcome.to_dict()
    assert outcome.error_message and "2 passwords" in outcome.error_message
    # The one write counts the failure for the back-off (a tag on the current version).
    assert [(r["service"], r["method"]) for r in writes(requests_since(cloud, since))] == [("keyvault", "PATCH")]
    assert passwords(cloud, seeded.object_id) == credentials_before
    after = versions(cloud, seeded.vault, seeded.name)
    assert [(v.version, v.value, v.enabled) for v in after] == [
        (v.version, v.value, v.enabled) for v in versions_before
    ]


async def test_a_personal_account_app_holding_one_password_rotates(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, sign_in_audience="AzureADandPersonalMicrosoftAccount", unrelated_credential=False)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    await assert_converged(seeded)


# --- the outcome and the request budget -----------------------------------------------------------------


async def test_the_outcome_is_json_and_holds_no_secret(cloud: RotatorCloud, caplog: pytest.LogCaptureFixture) -> None:
    seeded = await seed(cloud, expires_in_days=1)

    outcome = await reconcile(make_settings(), seeded)

    data = assert_no_secret_leaked(cloud, outcome, caplog)
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is True and data["error"] is None
    assert data["action"] == "rotated" and data["state"] == "active"
    assert data["createdKeyId"] == outcome.created_key_id
    assert data["retiredKeyIds"] == [seeded.key_id]
    current = latest(cloud, seeded.vault, seeded.name)
    assert data["vaultVersion"] == current.version
    # Neither the old nor the new value is anywhere in it, not even the 3-character hint's neighbours.
    assert seeded.value not in json.dumps(data) and current.value not in json.dumps(data)


async def test_a_rotation_with_grace_0_costs_at_most_fourteen_requests(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=2)
    since = mark(cloud)

    outcome = await reconcile(make_settings(grace_hours=0, validation_successes=1), seeded)

    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    log = requests_since(cloud, since)
    counted = [
        r
        for r in log
        # Not counted: the rotator's own token (managed identity) and Key Vault's challenge handshake.
        if r["service"] in ("graph", "keyvault", "entra") and not (r["service"] == "keyvault" and r["status"] == 401)
    ]
    summary = [f"{r['service']} {r['method']} {r['path']} {r['status']}" for r in counted]
    # Ten, plus the fresh reads that keep a run from taking a secret down: the app immediately
    # before the one removePassword (nothing forged or changed meanwhile may widen a deletion), and
    # the latest version before the removal and again before disabling the old version (a newer
    # version, a person's or another run's, stops the run).
    # And, with ROTATION_RETIREMENT_EVIDENCE=auto, one read of the sign-in report before the removal
    # (refused here: the rotator lacks AuditLog.Read.All, so the grace period decides).
    assert len(counted) <= 14, summary
    report = [r for r in counted if "/reports/appCredentialSignInActivities" in r["path"]]
    assert [r["status"] for r in report] == [403], summary
    assert all(r["status"] < 400 for r in counted if r not in report), summary
    graph_reads = matching(log, "graph", "GET")
    removals = matching(log, "graph", "POST", r"/removePassword$")
    # The app (and its object id) is resolved once per run, and re-read before each removal; every
    # Graph read selects its fields (the binding, `tags`, among them: no extra request for it).
    assert len(matching(graph_reads, path=r"/applications")) == 1 + len(removals) == 2, summary
    assert all("$select=" in r["path"] for r in graph_reads if "/reports/" not in r["path"]), summary
    assert len(matching(log, "entra", "POST", r"/oauth2/v2.0/token$")) == 1, summary
    await assert_converged(seeded, keep=seeded.humans)


async def test_a_provider_address_naming_no_app_is_a_clear_error_that_writes_nothing(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud)
    cloud.admin("DELETE", f"/applications/{seeded.object_id}")
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "ApplicationNotFound", outcome.to_dict()
    assert "ProviderAddress" in (outcome.error_message or "")
    assert writes(requests_since(cloud, since)) == []
    assert latest(cloud, seeded.vault, seeded.name).version == seeded.version
