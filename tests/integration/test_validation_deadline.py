"""A stalled token endpoint cannot stretch validation past its deadline (finding 11 of the trust issue).

The local cloud's `stall` fault holds every token request open without an answer for 60 s. Before
the fix one probe waited for it (66 s against a 10 s deadline; azure-core allows 300 s per read); now
each attempt is bounded by what is left of the deadline, so validation gives up on time, rolls back
and leaves the old credential working. Elapsed time is read from the reconciler's own monotonic
timer (the outcome's `validate` timing); a wall-clock bound is only the safety net.
"""

from __future__ import annotations

import asyncio

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.adapters.token_probe import PROBE_TIMEOUT_FLOOR_SECONDS
from rotation.domain.model import Action
from tests.integration.reconcile_helpers import (
    assert_no_secret_leaked,
    assert_signs_in,
    capture_logs,
    clear_faults,
    latest,
    make_settings,
    passwords,
    reconcile,
    seed,
)

DEADLINE = 10
STALL_MS = 60_000
# Scheduling slack on two shared cores, on top of the floor an attempt at the deadline always gets.
MARGIN = PROBE_TIMEOUT_FLOOR_SECONDS + 3.0


async def test_a_stalled_token_endpoint_ends_validation_at_its_deadline_and_rolls_back(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    capture_logs(caplog)
    settings = make_settings(validation_successes=1, validation_deadline_seconds=DEADLINE)
    seeded = await seed(cloud, expires_in_days=10)
    # Every client-credentials request stalls (the rotator's own tokens come from the identity endpoint).
    body = {"service": "entra", "stall": True, "delayMs": STALL_MS, "pathRegex": "/oauth2/v2.0/token$", "count": 1000}
    cloud.admin("POST", "/faults", body)
    try:
        # The safety net: well under one stall, far above deadline + margin.
        outcome = await asyncio.wait_for(reconcile(settings, seeded), timeout=STALL_MS / 1000 / 2)
    finally:
        clear_faults(cloud)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.action is Action.NONE and outcome.error_code == "ValidationFailed", outcome.to_dict()
    assert outcome.timings["validate"] <= DEADLINE + MARGIN, outcome.timings
    assert outcome.validation_attempts >= 1
    # The old credential is intact and still what consumers read; the new one is gone.
    assert outcome.created_key_id is not None
    creds = passwords(cloud, seeded.object_id)
    assert seeded.key_id.lower() in creds and outcome.created_key_id.lower() not in creds
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.enabled and current.value == seeded.value and current.tags["CredentialId"] == seeded.key_id
    await assert_signs_in(cloud, seeded.app_id, current.value)
