"""Retirement on evidence, through the real Graph report of the local cloud (issue 13): a consumer
that keeps using the old value holds its retirement until it stops; `required` without the
permission fails clearly and changes nothing; `auto` without it retires on the grace period and
says so; the report is read through the production adapter (`GraphDirectory.credential_sign_ins`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action
from tests.functions.harness import events_named
from tests.integration.reconcile_helpers import (
    CloudClock,
    advance_clock,
    capture_logs,
    latest,
    make_settings,
    mark,
    passwords,
    reconcile,
    requests_since,
    seed,
    sign_in,
    start_private_cloud,
    writes,
)

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


def auditor_cloud(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    # Before the first token: a token carries the roles its identity had when it was issued.
    cloud.admin("POST", f"/applications/{cloud.rotator.app_id}/graph-app-roles", {"role": "AuditLog.Read.All"})
    return cloud


async def test_a_consumer_still_using_the_old_value_holds_its_retirement_until_it_stops(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = auditor_cloud(private_cloud, monkeypatch)
    clock = CloudClock(cloud)
    settings = make_settings(cloud.env, grace_hours=24)
    # Due in 10 days by the version's expiry; the credential itself lives 60, so no expiry cuts the hold.
    seeded = await seed(cloud, expires_in_days=10, credential_end_in_days=60)
    rotated = await reconcile(settings, seeded, clock=clock)
    assert rotated.ok and rotated.action is Action.ROTATED, rotated.to_dict()

    # Two days on, a pipeline that cached the old value still signs in with it.
    advance_clock(cloud, 2 * DAY)
    await asyncio.to_thread(sign_in, cloud, seeded.app_id, seeded.value)
    advance_clock(cloud, 4 * DAY)  # the grace period is long over; the report now shows that sign-in
    held = await reconcile(settings, seeded, clock=clock)

    assert held.ok and held.retired_key_ids == (), held.to_dict()
    assert seeded.key_id.lower() in passwords(cloud, seeded.object_id)
    tags = latest(cloud, seeded.vault, seeded.name).tags
    assert "signed in on" in tags["RetirementHeld"] and tags["RetireCredentialId"] == seeded.key_id
    (event,) = events_named(caplog.records, "RetirementHeld")
    assert event["keyId"] == seeded.key_id and event["lastSignIn"]
    # Looking again changes nothing and writes nothing.
    since = mark(cloud)
    again = await reconcile(settings, seeded, clock=clock)
    assert again.ok and again.retired_key_ids == () and writes(requests_since(cloud, since)) == []

    # The pipeline moves to the new value; once the report shows the quiet period, it retires.
    advance_clock(cloud, 5 * DAY)
    done = await reconcile(settings, seeded, clock=clock)
    assert done.ok and done.retired_key_ids == (seeded.key_id,), done.to_dict()
    assert seeded.key_id.lower() not in passwords(cloud, seeded.object_id)
    assert "RetirementHeld" not in latest(cloud, seeded.vault, seeded.name).tags


async def test_required_evidence_without_the_permission_fails_clearly_and_changes_nothing(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)  # no AuditLog.Read.All
    clock = CloudClock(cloud)
    settings = make_settings(cloud.env, grace_hours=24)
    seeded = await seed(cloud, expires_in_days=10)
    assert (await reconcile(settings, seeded, clock=clock)).action is Action.ROTATED
    advance_clock(cloud, 2 * DAY)
    required = make_settings({**cloud.env, "ROTATION_RETIREMENT_EVIDENCE": "required"}, grace_hours=24)
    since = mark(cloud)

    outcome = await reconcile(required, seeded, clock=clock)

    assert outcome.error_code == "EvidenceUnavailable", outcome.to_dict()
    assert outcome.error_message and "AuditLog.Read.All" in outcome.error_message
    assert writes(requests_since(cloud, since)) == []
    assert seeded.key_id.lower() in passwords(cloud, seeded.object_id)


async def test_auto_without_the_permission_retires_on_the_grace_period_and_says_so(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    clock = CloudClock(cloud)
    settings = make_settings(cloud.env, grace_hours=24)
    seeded = await seed(cloud, expires_in_days=10)
    assert (await reconcile(settings, seeded, clock=clock)).action is Action.ROTATED
    advance_clock(cloud, 2 * DAY)

    outcome = await reconcile(settings, seeded, clock=clock)

    assert outcome.ok and outcome.retired_key_ids == (seeded.key_id,), outcome.to_dict()
    assert any("grace period decides" in w for w in outcome.warnings)
    assert len(events_named(caplog.records, "EvidenceUnavailable")) <= 1  # said once per process
