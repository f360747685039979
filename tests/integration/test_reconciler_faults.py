"""Throttling, write contention, missing permissions and crashes at every external call of a rotation.

Faults are injected into the shared local cloud (`POST /faults`) and reset after each test. A fault with
a large count and a small `ROTATION_THROTTLE_RETRY_SECONDS` makes the rotator give up at that call,
which is as close to a crash there as the wire allows; the next reconcile (faults cleared) must converge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action
from tests.integration.reconcile_helpers import (
    Seeded,
    add_fault,
    application,
    assert_converged,
    assert_no_secret_leaked,
    assert_signs_in,
    capture_logs,
    clear_faults,
    latest,
    make_settings,
    mark,
    matching,
    passwords,
    reconcile,
    requests_since,
    rotator_credentials_for,
    secret_path,
    seed,
    start_private_cloud,
    versions,
    with_world,
    writes,
)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


def statuses(log: list[dict[str, Any]], service: str, method: str, path: str) -> list[int]:
    return [r["status"] for r in matching(log, service, method, path)]


# --- retried: throttling and contention ----------------------------------------------------------------


async def test_graph_throttling_is_retried_after_retry_after(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud)
    add_fault(cloud, "graph", status=429, count=2, path_regex="addPassword")
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    log = requests_since(cloud, since)
    assert statuses(log, "graph", "POST", "/addPassword$") == [429, 429, 200]
    assert len(rotator_credentials_for(seeded)) == 1  # one credential, not one per attempt
    await assert_converged(seeded, keep=seeded.humans)


@pytest.mark.parametrize(
    ("status", "operation"),
    [
        pytest.param(409, "addPassword", id="409-on-addPassword"),
        # Graph sometimes answers the same code with 400 (wire facts); on removePassword a 400 could
        # also mean "not found", which the adapter tells apart by reading the app.
        pytest.param(400, "removePassword", id="400-on-removePassword"),
    ],
)
async def test_directory_concurrency_violations_are_retried(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, status: int, operation: str
) -> None:
    seeded = await seed(cloud)
    add_fault(cloud, "graph", status=status, count=2, path_regex=operation, code="Directory_ConcurrencyViolation")
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    log = requests_since(cloud, since)
    assert statuses(log, "graph", "POST", f"/{operation}$") == [status, status, 200 if status == 409 else 204]
    await assert_converged(seeded, keep=seeded.humans)


async def test_key_vault_throttling_is_retried(cloud: RotatorCloud, caplog: pytest.LogCaptureFixture) -> None:
    seeded = await seed(cloud)
    add_fault(cloud, "keyvault", status=429, count=2, method="PUT", path_regex=secret_path(seeded.name))
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    log = requests_since(cloud, since)
    assert statuses(log, "keyvault", "PUT", rf"/secrets/{seeded.name}\?") == [429, 429, 200]
    assert len([v for v in versions(cloud, seeded.vault, seeded.name)]) == 2  # one new version, not three
    await assert_converged(seeded, keep=seeded.humans)


@pytest.mark.parametrize("where", ["graph-addPassword", "keyvault-PUT"])
async def test_throttling_beyond_the_cap_is_a_throttled_error_that_the_next_run_recovers_from(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    seeded = await seed(cloud)
    settings = make_settings(throttle_retry_seconds=1, orphan_margin_minutes=0)
    if where == "graph-addPassword":
        add_fault(cloud, "graph", status=429, count=1000, path_regex="addPassword")
    else:
        add_fault(cloud, "keyvault", status=429, count=1000, method="PUT", path_regex=secret_path(seeded.name))
    credentials_before = set(passwords(cloud, seeded.object_id))

    throttled = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, throttled, caplog)
    assert throttled.error_code == "Throttled", throttled.to_dict()
    assert throttled.error_message and "throttling" in throttled.error_message
    # Nothing half-done that a reader could meet: the latest version is still the working one.
    assert latest(cloud, seeded.vault, seeded.name).version == seeded.version
    # A credential created before a failed write is removed at once (not left for the orphan sweep).
    assert set(passwords(cloud, seeded.object_id)) == credentials_before

    clear_faults(cloud)
    outcome = await reconcile(settings, seeded)

    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.removed_orphans == ()
    await assert_converged(seeded, keep=seeded.humans)


# --- never retried: missing permissions -----------------------------------------------------------------


async def test_a_rotator_that_does_not_own_the_app_gets_a_permission_error_naming_the_fix(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed(cloud)
    assert cloud.rotator is not None
    rotator = cloud.rotator.sp_object_id

    def disown(world: Any) -> None:
        application(world, seeded.object_id).owners.discard(rotator)

    with_world(cloud, disown)
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "PermissionDenied", outcome.to_dict()
    message = outcome.error_message or ""
    assert "Application.ReadWrite.OwnedBy" in message
    assert "owner" in message and seeded.app_id in message
    log = requests_since(cloud, since)
    graph = matching(log, "graph")
    # OwnedBy reads every app of the tenant (the Graph permissions reference); it is the first write
    # that Graph refuses, once, and it is never retried. Nothing else is written.
    assert [(r["method"], r["status"]) for r in graph] == [("GET", 200), ("POST", 403)]
    assert [(r["service"], r["status"]) for r in writes(log)] == [("graph", 403)]


async def test_a_vault_where_the_rotator_may_only_read_gets_a_permission_error_naming_the_role(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    seeded = await seed(cloud)
    assert cloud.rotator is not None
    grant = {"objectId": cloud.rotator.sp_object_id, "vault": seeded.vault}
    cloud.admin("DELETE", "/role-assignments", {**grant, "role": "Key Vault Secrets Officer"})
    cloud.admin("POST", "/role-assignments", {**grant, "role": "Key Vault Secrets User"})
    settings = make_settings(cloud.env, orphan_margin_minutes=0)
    since = mark(cloud)

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "PermissionDenied", outcome.to_dict()
    assert "Key Vault Secrets Officer" in (outcome.error_message or "")
    log = requests_since(cloud, since)
    assert statuses(log, "keyvault", "PUT", rf"/secrets/{seeded.name}\?") == [403]  # never retried
    assert latest(cloud, seeded.vault, seeded.name).version == seeded.version

    # Once the role is granted, the next reconcile cleans up and rotates.
    cloud.admin("POST", "/role-assignments", {**grant, "role": "Key Vault Secrets Officer"})
    fixed = await reconcile(settings, seeded)
    assert fixed.ok and fixed.action is Action.ROTATED, fixed.to_dict()
    await assert_converged(seeded, keep=seeded.humans)


# --- a crash at each external call of the rotation ------------------------------------------------------


@dataclass(frozen=True)
class CrashPoint:
    """Where a rotation dies: the fault that makes that call fail for good."""

    service: str
    method: str
    path: str  # "{name}" and "{seeded}" are replaced by the secret's name and the seeded version
    drop: bool = False

    def fault(self, seeded: Seeded) -> dict[str, Any]:
        path = self.path.replace("{name}", seeded.name).replace("{seeded}", seeded.version)
        spec: dict[str, Any] = {"method": self.method, "path_regex": path, "count": 1000}
        if self.drop:
            spec["drop"] = True
        else:
            spec["status"] = 500
        return spec


HEX32 = "[0-9a-f]{32}"
CRASH_POINTS = {
    "addPassword": CrashPoint("graph", "POST", r"/addPassword$", drop=True),
    "keyvault-PUT": CrashPoint("keyvault", "PUT", r"^/secrets/{name}$"),
    "keyvault-readback-GET": CrashPoint("keyvault", "GET", rf"^/secrets/{{name}}/{HEX32}$"),
    "token-request": CrashPoint("entra", "POST", r"/oauth2/v2.0/token$"),
    "removePassword": CrashPoint("graph", "POST", r"/removePassword$"),
    "keyvault-PATCH-activate": CrashPoint("keyvault", "PATCH", rf"^/secrets/{{name}}/(?!{{seeded}}){HEX32}$"),
    "keyvault-versions-list": CrashPoint("keyvault", "GET", r"^/secrets/{name}/versions$"),
    "keyvault-PATCH-disable": CrashPoint("keyvault", "PATCH", r"^/secrets/{name}/{seeded}$"),
}


@pytest.mark.parametrize(
    "point",
    CRASH_POINTS,
)
async def test_a_rotation_that_dies_at_any_call_converges_on_the_next_reconcile(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, point: str
) -> None:
    seeded = await seed(cloud, expires_in_days=10)
    settings = make_settings(
        throttle_retry_seconds=1, orphan_margin_minutes=0, validation_deadline_seconds=5, grace_hours=0
    )
    crash = CRASH_POINTS[point]
    add_fault(cloud, crash.service, **crash.fault(seeded))
    since = mark(cloud)

    failed = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, failed, caplog)
    assert not failed.ok, failed.to_dict()
    hit = matching(requests_since(cloud, since), crash.service, crash.method)
    assert any(r["status"] in (0, 500) for r in hit), "the fault never fired"
    clear_faults(cloud)
    # Whatever is half-done, a consumer reading the latest version meanwhile gets a value that works.
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.enabled
    await assert_signs_in(cloud, seeded.app_id, current.value)

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok, outcome.to_dict()
    await assert_converged(seeded, keep=seeded.humans)
    # Converged means stable: one more reconcile finds nothing to do.
    since = mark(cloud)
    again = await reconcile(settings, seeded)
    assert again.ok and again.action is Action.NONE, again.to_dict()
    assert writes(requests_since(cloud, since)) == []
