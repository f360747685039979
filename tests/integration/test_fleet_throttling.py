"""A fleet of due secrets against a Graph write budget the rotator can exceed: the fleet slows down to
the budget, and no rotation fails (issue 14: 7 of 50 failed after 48 s, with the old credentials
still working, because each call gave up after eight throttled attempts).

Counts only; the rate and time figures are in benchmarks/RESULTS.md (`benchmarks.fleet`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action, ReconcileRequest
from rotation.runtime import open_runtime
from rotation.service.sweep import reconcile_all
from tests.integration.reconcile_helpers import (
    config,
    make_settings,
    mark,
    matching,
    requests_since,
    start_private_cloud,
)
from tests.integration.seed import seed_managed_secret

FLEET = 12


async def test_a_throttled_fleet_slows_to_the_budget_and_every_rotation_succeeds(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    secrets = [await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=5) for _ in range(FLEET)]
    # Two identity writes per two seconds, for the rotator's app: far below what 6 workers would send.
    config(cloud, throttle={"enabled": True, "graphWrites": 2, "graphWindowSeconds": 2})
    settings = make_settings(cloud.env, grace_hours=24, validation_successes=1, throttle_retry_seconds=120)
    since = mark(cloud)

    async with open_runtime(settings) as runtime:
        now = runtime.reconciler.clock.now()
        requests = [ReconcileRequest.new(s.vault, s.name, now=now, reason="fleet test") for s in secrets]
        outcomes = await reconcile_all(runtime.reconciler, requests, concurrency=6)

    assert [o.error_code for o in outcomes if not o.ok] == []
    assert all(o.action is Action.ROTATED for o in outcomes)
    adds = matching(requests_since(cloud, since), "graph", "POST", r"/addPassword$")
    statuses = [r["status"] for r in adds]
    assert statuses.count(200) == FLEET  # one credential per secret, nothing twice
    assert 429 in statuses  # the budget was really exceeded, and waited out
    # The gate paces the whole process: far fewer refusals than six workers retrying on their own.
    assert statuses.count(429) <= 3 * FLEET, statuses
