"""App management policies: a lifetime cap the rotator clamps to when it may read the policy, a clear
`PolicyBlocked` that changes nothing when it may not, and blocked password addition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action
from rotation.domain.policy import CLAMP_MARGIN
from tests.integration.reconcile_helpers import (
    Seeded,
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
    start_private_cloud,
    versions,
    writes,
)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


def snapshot(seeded: Seeded) -> tuple[Any, Any]:
    return passwords(seeded.cloud, seeded.object_id), versions(seeded.cloud, seeded.vault, seeded.name)


@pytest.mark.parametrize(
    ("policy", "mentions"),
    [
        pytest.param({"blockPasswordAddition": True}, "forbids adding passwords", id="password-addition-blocked"),
        pytest.param({"passwordMaxLifetime": "P30D"}, "Policy.Read.All", id="lifetime-capped-policy-unreadable"),
    ],
)
async def test_a_policy_the_rotator_cannot_satisfy_is_policy_blocked_and_changes_nothing(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, policy: dict[str, Any], mentions: str
) -> None:
    seeded = await seed(cloud)
    cloud.admin("POST", "/policies", {"appId": seeded.app_id, **policy})
    before = snapshot(seeded)
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "PolicyBlocked", outcome.to_dict()
    assert mentions in (outcome.error_message or ""), outcome.error_message
    # No credential, no new version; the one tag write counts the failure for the back-off.
    after = snapshot(seeded)
    assert after[0] == before[0] and [v.version for v in after[1]] == [v.version for v in before[1]]
    tags = latest(cloud, seeded.vault, seeded.name).tags
    assert tags["Backoff"].startswith("1/") and tags["FailureReason"].startswith("rotation failed (PolicyBlocked)")
    log = requests_since(cloud, since)
    assert [(r["service"], r["status"]) for r in writes(log)] == [("graph", 400), ("keyvault", 200)]
    assert matching(log, "keyvault", "PUT") == []


@pytest.mark.parametrize("scope", ["app", "tenant"])
async def test_a_lifetime_cap_is_clamped_to_when_the_rotator_may_read_the_policy(
    private_cloud: Callable[..., RotatorCloud],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scope: str,
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)

    # Before the first token: a token carries the roles its identity had when it was issued.
    cloud.admin("POST", f"/applications/{cloud.rotator.app_id}/graph-app-roles", {"role": "Policy.Read.All"})
    settings = make_settings(cloud.env)
    seeded = await seed(cloud, expires_in_days=10, tags={"ValidityPeriodDays": "90"})
    target = {"appId": seeded.app_id} if scope == "app" else {"tenantId": cloud.tenant_id}
    cloud.admin("POST", "/policies", {**target, "passwordMaxLifetime": "P30D"})

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert any("clamped" in w for w in outcome.warnings), outcome.warnings
    assert outcome.created_key_id is not None
    new = passwords(cloud, seeded.object_id)[outcome.created_key_id.lower()]
    assert new.end - new.start == timedelta(days=30) - CLAMP_MARGIN
    assert latest(cloud, seeded.vault, seeded.name).expires == new.end
    await assert_converged(seeded, keep=seeded.humans)

    # A clamped lifetime shorter than the rotation window must not make it due again at once.
    since = mark(cloud)
    again = await reconcile(settings, seeded)
    assert again.ok and again.action is Action.NONE, again.to_dict()
    assert writes(requests_since(cloud, since)) == []
