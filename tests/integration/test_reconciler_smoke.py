"""One rotation end to end, checked step by step: create, store, validate, activate (with a grace period).

Real msgraph-sdk, azure-keyvault-secrets and azure-identity against the local cloud; no mocks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from emulator.rotator_profile import RotatorCloud
from localcloud.state import secret_digest
from rotation.domain.model import Action, vault_host
from tests.integration.reconcile_helpers import (
    assert_converged,
    assert_no_secret_leaked,
    capture_logs,
    latest,
    make_settings,
    passwords,
    reconcile,
    seed,
    version,
)

ROTATION_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


async def test_rotation_creates_stores_validates_and_activates(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud, expires_in_days=5, tags={"ValidityPeriodDays": "45", "Owner": "team-payments"})
    observed: dict[str, str] = {}

    async def observe_pending_validation(seconds: float) -> None:
        # Called between two probes: after the credential was created, before the value is stored.
        current = latest(cloud, seeded.vault, seeded.name)
        observed.update({**current.tags, "version": str(current.version)})

    before = datetime.now(UTC).replace(microsecond=0)
    settings = make_settings(grace_hours=24, validation_successes=2)
    outcome = await reconcile(settings, seeded, sleep=observe_pending_validation)
    after = datetime.now(UTC)

    data = assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok, data
    assert outcome.action is Action.ROTATED
    assert outcome.validation_attempts == 2
    assert outcome.warnings == ()
    assert outcome.retired_key_ids == ()  # the grace period keeps the old credential for now

    # Create: the record of intent names vault, secret and rotation; the lifetime is the tag's.
    credentials = passwords(cloud, seeded.object_id)
    assert outcome.created_key_id is not None
    new = credentials[outcome.created_key_id.lower()]
    current = latest(cloud, seeded.vault, seeded.name)
    rotation_id = current.tags["RotationId"]
    assert ROTATION_ID.match(rotation_id)
    assert new.display_name == f"rotator:{vault_host(cloud.vault_url(seeded.vault))}/{seeded.name}:{rotation_id}"
    assert before <= new.start <= after
    assert new.end - new.start == timedelta(days=45)

    # Store: a new version holding the value, the state, exp/nbf of the credential, a content type.
    assert current.version == outcome.vault_version != seeded.version
    assert secret_digest(current.value) == new.digest
    assert current.expires == new.end
    assert current.not_before == new.start
    assert current.content_type and seeded.app_id in current.content_type
    # Proven before it is stored: while the value was being validated, consumers still read the old
    # version, untouched (finding 17: no consumer ever reads an unproven value).
    assert observed["version"] == seeded.version and observed["CredentialId"] == seeded.key_id
    assert "RotationState" not in observed and "RetireCredentialId" not in observed

    # Activate: active, the old credential scheduled for retirement after the grace period.
    tags = current.tags
    assert tags["RotationState"] == "active"
    assert tags["CredentialId"] == new.key_id
    assert tags["RetireCredentialId"] == seeded.key_id
    retire_after = datetime.fromisoformat(tags["RetireAfter"])
    assert before + timedelta(hours=24) <= retire_after <= after + timedelta(hours=24)
    # The operator's tags (and foreign ones) travel with the state.
    assert tags["ProviderAddress"] == seeded.app_id
    assert tags["ValidityPeriodDays"] == "45"
    assert tags["Owner"] == "team-payments"
    assert "FailureReason" not in tags

    # Look again when the grace period ends (the reconciler's RequeueAfter), not before.
    assert outcome.requeue_after is not None
    assert timedelta(hours=23, minutes=59) <= outcome.requeue_after <= timedelta(hours=24)
    assert outcome.retryable is False  # nothing failed, nothing to retry

    # The old value keeps working until retirement; the old version stays readable.
    assert version(cloud, seeded.vault, seeded.name, seeded.version).enabled
    await assert_converged(seeded, keep={seeded.key_id, *seeded.humans}, pending_retirement=True)
