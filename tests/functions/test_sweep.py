"""The timer function: one queue message per secret that needs work, found with list calls only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from emulator.rotator_profile import READER_ROLE, RotatorCloud
from rotation.domain.errors import SettingsError
from tests.functions.harness import Collector, events_named, http_request, request_mark, requests_since
from tests.integration.reconcile_helpers import remove_credential_by_hand
from tests.integration.seed import seed_managed_secret, write_secret


@pytest.fixture
def own_cloud(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    """A cloud of this test's own, so the sweep sees exactly the secrets seeded here."""
    local = private_cloud(vaults=("kv-alpha", "kv-beta"))
    for key, value in local.env.items():
        monkeypatch.setenv(key, value)
    return local


async def run_sweep(handlers: dict[str, Any], *, past_due: bool = False) -> Collector[list[str]]:
    out: Collector[list[str]] = Collector()
    await handlers["sweep"](func.timer.TimerRequest(past_due=past_due), out)
    return out


@pytest.mark.parametrize("past_due", [False, True])
async def test_sweep_enqueues_exactly_the_secrets_that_need_work(
    own_cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, past_due: bool
) -> None:
    due = await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-alpha", expires_in_days=5)
    also_due = await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-beta", expires_in_days=20)
    await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-alpha", expires_in_days=80)
    bad_tags = await asyncio.to_thread(
        seed_managed_secret, own_cloud, vault="kv-beta", expires_in_days=80, tags={"RetireAfter": "tomorrow"}
    )
    await write_secret(own_cloud, "kv-alpha", "plain-secret", "not-managed-value-123456")
    mark = request_mark(own_cloud)

    out = await run_sweep(handlers, past_due=past_due)

    requests = out.requests()
    assert out.calls == 1
    assert sorted((r.vault, r.secret) for r in requests) == sorted(
        [("kv-alpha", due.name), ("kv-beta", also_due.name), ("kv-beta", bad_tags.name)]
    )
    assert all(r.mode == "normal" and r.reason.startswith("sweep: ") for r in requests)
    assert len({r.operation_id for r in requests}) == 3
    # List calls only: one per vault (each holds fewer than 25 secrets), never a value read.
    calls = requests_since(own_cloud, mark, "keyvault")
    listed = [c for c in calls if c["status"] == 200]
    assert len(listed) == 2, calls
    assert all(c["method"] == "GET" and c["path"].split("?")[0] == "/secrets" for c in calls), calls
    # And one listing of the rotator's apps, to find credentials deleted in Entra (one per 999 apps).
    graph = requests_since(own_cloud, mark, "graph")
    assert [(c["method"], c["path"].split("?")[0]) for c in graph] == [("GET", "/v1.0/applications")], graph
    assert "%24top=999" in graph[0]["path"] or "$top=999" in graph[0]["path"], graph
    (completed,) = events_named(logs.records, "SweepCompleted")
    assert completed["managed"] == 4 and completed["enqueued"] == 3 and completed["problems"] == 1
    assert completed["pastDue"] is past_due
    assert len(events_named(logs.records, "SweepPastDue")) == (1 if past_due else 0)


async def test_sweep_with_nothing_to_do_writes_no_message(own_cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-alpha", expires_in_days=80)
    out = await run_sweep(handlers)
    assert out.calls == 0


async def test_sweep_with_bad_settings_logs_and_fails(
    own_cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ROTATION_ROTATE_BEFORE_DAYS", "400")
    with pytest.raises(SettingsError):
        await run_sweep(handlers)
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert invalid["function"] == "sweep"
    assert any("ROTATION_ROTATE_BEFORE_DAYS" in p for p in invalid["problems"])


async def test_a_vault_the_rotator_may_not_list_fails_the_sweep_loudly_after_enqueuing_the_others(
    own_cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    due = await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-beta", expires_in_days=5)
    assert own_cloud.rotator is not None
    own_cloud.admin(
        "DELETE",
        "/role-assignments",
        {"objectId": own_cloud.rotator.sp_object_id, "vault": "kv-alpha", "role": "Key Vault Secrets Officer"},
    )
    out: Collector[list[str]] = Collector()
    with pytest.raises(Exception) as caught:
        await handlers["sweep"](func.timer.TimerRequest(past_due=False), out)
    assert getattr(caught.value, "code", None) == "PermissionDenied"
    # The readable vault's work went out all the same; the unreadable one is named in the logs.
    assert [(r.vault, r.secret) for r in out.requests()] == [("kv-beta", due.name)]
    (failed,) = events_named(logs.records, "VaultScanFailed")
    assert failed["vault"] == "kv-alpha" and failed["errorCode"] == "PermissionDenied"
    (completed,) = events_named(logs.records, "SweepCompleted")
    assert completed["unreadableVaults"] == "kv-alpha"


async def test_a_credential_deleted_in_entra_is_enqueued_and_alerted_by_the_sweep(
    own_cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    # Healthy for 50 more days by its tags; but someone deleted its credential in the portal.
    dangling = await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-alpha", expires_in_days=80)
    await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-beta", expires_in_days=80)
    remove_credential_by_hand(own_cloud, dangling.object_id, dangling.key_id)

    out = await run_sweep(handlers)

    requests = out.requests()
    assert [(r.vault, r.secret) for r in requests] == [("kv-alpha", dangling.name)]
    assert "no longer exists" in requests[0].reason
    (missing,) = events_named(logs.records, "CredentialMissing")
    assert missing["keyId"] == dangling.key_id and missing["secret"] == dangling.name


async def test_credential_expiring_is_logged_by_the_timer_sweep_never_by_a_read_of_the_list(
    own_cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    """The expiry alert counts `CredentialExpiring` lines: a dashboard reading `GET /api/secrets`
    scans the same vaults, and must not fire the alert on every refresh (issue 11, finding 11)."""
    expiring = await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-alpha", expires_in_days=5)
    await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-beta", expires_in_days=80)
    reader = await asyncio.to_thread(own_cloud.api_client, "dashboard", READER_ROLE)
    token = await asyncio.to_thread(own_cloud.api_token, reader)

    for _ in range(2):
        response = await handlers["list_secrets"](http_request("GET", "/api/secrets", bearer=token))
        assert response.status_code == 200, response.get_body()
    listed = [s["secret"] for s in json.loads(response.get_body())["secrets"]]
    assert expiring.name in listed  # the read sees the expiring secret ...
    assert events_named(logs.records, "CredentialExpiring") == []  # ... and says nothing to the alert

    await run_sweep(handlers)
    logged = events_named(logs.records, "CredentialExpiring")
    assert [(e["vault"], e["secret"]) for e in logged] == [("kv-alpha", expiring.name)]
