"""Service-principal passwords end to end on the local cloud, through the production wiring.

A managed secret tagged ``CredentialObject=servicePrincipal`` holds a password of the app's service
principal: the rotator reads ``/servicePrincipals(appId='…')``, adds and removes passwords there, proves
the new one with a client-credentials sign-in (Entra takes a service principal's password for the
appId) and finds the binding in the service principal's own tags. The app registration is never
touched. A crash at each call converges like an app's rotation; a binding on one object never
authorises the other's password; `adopt --service-principal`, `status`, `diagnose` and the inventory
say on which object the credential lives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.identity.aio import ManagedIdentityCredential

from emulator.rotator_profile import RotatorCloud
from rotation.adapters.graph import GraphDirectory
from rotation.cli import main
from rotation.domain.model import SERVICE_PRINCIPAL, Action, CredentialObject, vault_host
from rotation.runtime import open_runtime
from rotation.service.adoption import bind_secret
from rotation.service.sweep import scan
from tests.integration.reconcile_helpers import (
    CloudClock,
    Seeded,
    add_fault,
    add_human_password,
    advance_clock,
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
    sign_in,
    sp_passwords,
    start_private_cloud,
    writes,
)
from tests.integration.seed import create_owned_app, unique, write_secret
from tests.integration.test_reconciler_faults import CRASH_POINTS

SP = SERVICE_PRINCIPAL
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def bind_on(cloud: RotatorCloud, app_id: str, vault: str, secret: str, key_id: str, on: CredentialObject) -> None:
    """Bind the documented way (a PATCH of the object's tags) as an owner: the rotator's identity owns both."""
    async with ManagedIdentityCredential() as credential:
        directory = GraphDirectory(credential, cloud.graph_url)
        try:
            holder = await directory.get_application(app_id, on=on)
            await bind_secret(directory, holder, vault_host(cloud.vault_url(vault)), secret, key_id)
        finally:
            await directory.close()


async def seed_sp(
    cloud: RotatorCloud,
    *,
    expires_in_days: float = 10,
    credential_end_in_days: float | None = None,
    bound_on: CredentialObject | None = SP,
    credential_object: str | None = SP,
    rotator_owns_sp: bool = True,
) -> tuple[Seeded, str]:
    """An app owned by the rotator whose service principal (also owned by it, unless told otherwise) holds
    the secret's password and another human's; the app registration holds a human password of its own.
    Returns the seeded secret (its invariants are the service principal's) and the app's own keyId."""
    app = create_owned_app(cloud, unique("svc"))
    if rotator_owns_sp:
        cloud.add_service_principal_owner(app["id"], cloud.rotator.sp_object_id)
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(days=expires_in_days)
    credential_end = now + timedelta(days=credential_end_in_days) if credential_end_in_days else end
    password = cloud.admin(
        "POST",
        f"/service-principals/{app['id']}/passwords",
        {"displayName": "made by a human (on the SP)", "endDateTime": _graph_time(credential_end)},
    )
    other = cloud.admin("POST", f"/service-principals/{app['id']}/passwords", {"displayName": "CI (a human's)"})
    apps_own = add_human_password(cloud, app["id"], display_name="the app registration's own")
    name = unique("secret")
    if bound_on is not None:
        await bind_on(cloud, app["appId"], "kv-local", name, password["keyId"], bound_on)
    tags = {"ProviderAddress": app["appId"], "CredentialId": password["keyId"]}
    if credential_object is not None:
        tags["CredentialObject"] = credential_object
    version = await write_secret(cloud, "kv-local", name, password["secretText"], tags, end)
    seeded = Seeded(
        cloud=cloud,
        vault="kv-local",
        name=name,
        app_id=app["appId"],
        object_id=app["id"],
        key_id=password["keyId"],
        value=password["secretText"],
        version=version,
        unrelated_key_id=other["keyId"],
        on_service_principal=True,
    )
    return seeded, str(apps_own["keyId"])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- rotation ---------------------------------------------------------------------------------------------


async def test_a_service_principal_password_is_rotated_proven_and_retired_on_the_service_principal(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded, apps_own = await seed_sp(cloud)
    app_before = passwords(cloud, seeded.object_id)
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded)
    log = requests_since(cloud, since)  # the rotation's own requests (the checks below sign in too)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (seeded.key_id,)
    created = sp_passwords(cloud, seeded.object_id)[str(outcome.created_key_id).lower()]
    assert (created.display_name or "").startswith(f"rotator:{vault_host(cloud.vault_url(seeded.vault))}/")
    current = await assert_converged(seeded, keep=seeded.humans)
    assert current.tags["CredentialObject"] == SP
    # The app registration is not touched: same passwords, and no request went to /applications.
    assert passwords(cloud, seeded.object_id) == app_before and apps_own in app_before
    # The same cost as an app registration's rotation (test_reconciler_rotation: at most fourteen).
    counted = [
        r
        for r in log
        if r["service"] in ("graph", "keyvault", "entra") and not (r["service"] == "keyvault" and r["status"] == 401)
    ]
    assert len(counted) <= 14, [f"{r['service']} {r['method']} {r['path']} {r['status']}" for r in counted]
    graph = [r for r in matching(log, "graph") if "/reports/" not in r["path"]]
    assert graph and not matching(graph, path=r"/applications")
    reads = matching(graph, method="GET", path=r"^/v1\.0/servicePrincipals\(appId='")
    assert reads and all("$select=id,appId,displayName,passwordCredentials,tags" in r["path"] for r in reads), reads
    assert [r["path"] for r in matching(graph, method="POST")] == [
        f"/v1.0/servicePrincipals/{created_sp_id(cloud, seeded)}/addPassword",
        f"/v1.0/servicePrincipals/{created_sp_id(cloud, seeded)}/removePassword",
    ]
    # Entra took the service principal's password (the sign-in log says so).
    origins = {r.key_id.lower(): r.credential_origin for r in cloud.sign_ins(seeded.app_id)}
    assert origins.get(str(outcome.created_key_id).lower()) == "servicePrincipal"

    since = mark(cloud)
    again = await reconcile(make_settings(), seeded)
    assert again.ok and again.action is Action.NONE, again.to_dict()
    assert writes(requests_since(cloud, since)) == []


def created_sp_id(cloud: RotatorCloud, seeded: Seeded) -> str:
    for tenant in cloud.admin("GET", "/state")["tenants"]:
        for app in tenant["applications"]:
            if app["appId"] == seeded.app_id:
                return str(app["servicePrincipalId"])
    raise AssertionError("no service principal")


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_service_principal_rotation_that_dies_at_any_call_converges(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, point: str
) -> None:
    seeded, apps_own = await seed_sp(cloud)
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
    current = latest(cloud, seeded.vault, seeded.name)
    assert current.enabled
    await assert_signs_in(cloud, seeded.app_id, current.value)

    outcome = await reconcile(settings, seeded)

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.ok, outcome.to_dict()
    await assert_converged(seeded, keep=seeded.humans)
    assert apps_own in passwords(cloud, seeded.object_id)
    since = mark(cloud)
    again = await reconcile(settings, seeded)
    assert again.ok and again.action is Action.NONE, again.to_dict()
    assert writes(requests_since(cloud, since)) == []


async def test_a_consumer_still_using_the_old_service_principal_password_holds_its_retirement(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The sign-in report's rows for a service principal's password (credentialOrigin servicePrincipal)
    hold its retirement exactly as an app's password's rows do."""
    cloud = start_private_cloud(private_cloud, monkeypatch)
    cloud.admin("POST", f"/applications/{cloud.rotator.app_id}/graph-app-roles", {"role": "AuditLog.Read.All"})
    clock = CloudClock(cloud)
    settings = make_settings(cloud.env, grace_hours=24)
    seeded, _ = await seed_sp(cloud, expires_in_days=10, credential_end_in_days=60)
    rotated = await reconcile(settings, seeded, clock=clock)
    assert rotated.ok and rotated.action is Action.ROTATED, rotated.to_dict()

    advance_clock(cloud, 2 * DAY)
    await asyncio.to_thread(sign_in, cloud, seeded.app_id, seeded.value)  # a cached old value, still used
    advance_clock(cloud, 4 * DAY)
    held = await reconcile(settings, seeded, clock=clock)

    assert held.ok and held.retired_key_ids == (), held.to_dict()
    assert seeded.key_id.lower() in sp_passwords(cloud, seeded.object_id)
    assert "signed in on" in latest(cloud, seeded.vault, seeded.name).tags["RetirementHeld"]

    advance_clock(cloud, 5 * DAY)
    done = await reconcile(settings, seeded, clock=clock)
    assert done.ok and done.retired_key_ids == (seeded.key_id,), done.to_dict()
    assert seeded.key_id.lower() not in sp_passwords(cloud, seeded.object_id)
    assert_no_secret_leaked(cloud, done, caplog)


# --- the binding lives on the object that holds the password ---------------------------------------------


async def test_a_vault_writer_cannot_point_an_app_bound_secret_at_the_service_principal(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's owners bound the secret on the app registration; a vault writer tags it
    CredentialObject=servicePrincipal and asks for an emergency. Nothing is created or removed."""
    seeded, _ = await seed_sp(cloud, bound_on="application")
    before = (passwords(cloud, seeded.object_id), sp_passwords(cloud, seeded.object_id))
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded, mode="emergency")

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "NotBound", outcome.to_dict()
    assert "service principal" in (outcome.error_message or "")
    assert writes(requests_since(cloud, since)) == []
    assert (passwords(cloud, seeded.object_id), sp_passwords(cloud, seeded.object_id)) == before


@pytest.mark.parametrize("credential_object", [None, "application"])
async def test_a_service_principal_binding_does_not_authorise_the_app_registrations_password(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, credential_object: str | None
) -> None:
    """The reverse: bound on the service principal only, a secret naming the app registration (no
    CredentialObject, or `application`) is not bound there."""
    seeded, _ = await seed_sp(cloud, bound_on=SP, credential_object=credential_object)
    before = (passwords(cloud, seeded.object_id), sp_passwords(cloud, seeded.object_id))
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded, mode="emergency")

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "NotBound", outcome.to_dict()
    assert writes(requests_since(cloud, since)) == []
    assert (passwords(cloud, seeded.object_id), sp_passwords(cloud, seeded.object_id)) == before


async def test_an_unknown_credential_object_is_a_configuration_error_that_writes_nothing(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    seeded, _ = await seed_sp(cloud, credential_object="enterpriseApplication")
    since = mark(cloud)

    outcome = await reconcile(make_settings(), seeded, mode="emergency")

    assert outcome.error_code == "BadTags", outcome.to_dict()
    assert "application or servicePrincipal" in (outcome.error_message or "")
    assert writes(requests_since(cloud, since)) == []


async def test_without_owning_the_service_principal_the_rotator_creates_nothing_and_says_what_to_grant(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """Owning the app registration is not owning its service principal (Application.ReadWrite.OwnedBy)."""
    seeded, _ = await seed_sp(cloud, rotator_owns_sp=False, bound_on=None)
    cloud.set_service_principal_tags(
        seeded.app_id, [f"rotator-sp-binding:{vault_host(cloud.vault_url('kv-local'))}/{seeded.name}"]
    )
    before = sp_passwords(cloud, seeded.object_id)

    outcome = await reconcile(make_settings(), seeded, mode="forced")

    assert_no_secret_leaked(cloud, outcome, caplog)
    assert outcome.error_code == "PermissionDenied", outcome.to_dict()
    assert "service principal" in (outcome.error_message or "")
    assert sp_passwords(cloud, seeded.object_id) == before
    assert latest(cloud, seeded.vault, seeded.name).version == seeded.version


# --- the command line: adopt, status, diagnose, inventory --------------------------------------------------


def test_adopt_service_principal_then_status_diagnose_and_inventory_say_where_it_lives(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "1")
    monkeypatch.setenv("ROTATION_GRACE_HOURS", "0")
    # The command line runs its own event loop, so this test is synchronous.
    seeded, _ = asyncio.run(seed_sp(cloud, bound_on=None, credential_object=None))
    # An unmanaged secret holding the service principal's password: adopt puts it under management.
    name = unique("sp-legacy")
    expires = latest(cloud, "kv-local", seeded.name).expires
    asyncio.run(write_secret(cloud, "kv-local", name, seeded.value, expires=expires))
    app_tags_before = cloud.admin("GET", "/state")

    status, out, err = run_cli(
        capsys, "adopt", "kv-local", name, "--app", seeded.app_id, "--service-principal", "--json"
    )

    assert status == 0, err
    adopted = json.loads(out)
    assert adopted["credentialObject"] == SP and adopted["credentialId"] == seeded.key_id, adopted
    host = vault_host(cloud.vault_url("kv-local"))
    assert f"rotator-sp-binding:{host}/{name}#{seeded.key_id}" in cloud.service_principal_tags(seeded.app_id)
    assert _app_tags(app_tags_before, seeded.app_id) == _app_tags(cloud.admin("GET", "/state"), seeded.app_id)
    assert latest(cloud, "kv-local", name).tags["CredentialObject"] == SP

    status, out, err = run_cli(capsys, "status", "kv-local", "--json")
    assert status == 0, err
    mine = next(s for s in json.loads(out)["secrets"] if s["secret"] == name)
    assert mine["credentialObject"] == SP and mine["bound"] is True, mine

    status, out, err = run_cli(capsys, "status", "kv-local")
    assert status == 0 and f"{seeded.app_id} (service principal)" in out, out

    status, out, err = run_cli(capsys, "diagnose", "kv-local", name, "--json")
    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert "lives on the service principal" in checks["app.exists"]["evidence"], checks["app.exists"]
    assert checks["binding"]["status"] == "pass" and "service principal's tags" in checks["binding"]["evidence"]

    status, out, err = run_cli(capsys, "inventory", "--format", "json")
    assert status == 0, err
    rows = [r for r in json.loads(out)["credentials"] if r["keyId"] == seeded.key_id]
    # (The seeded secret names the same credential, so the row names one of the two and notes the other.)
    assert [(r["standing"], r["credentialObject"]) for r in rows] == [("managed", SP)], rows
    assert not [r for r in json.loads(out)["credentials"] if r["standing"] == "dangling" and r["secret"] == name]
    # A password on the service principal that no secret names is listed too: nobody's, so it expires seen.
    (other,) = [r for r in json.loads(out)["credentials"] if r["keyId"] == seeded.unrelated_key_id]
    assert (other["standing"], other["credentialObject"], other["appId"]) == ("unmanaged", SP, seeded.app_id)

    status, out, err = run_cli(capsys, "rotate", "kv-local", name, "--force", "--json")
    rotated = json.loads(out)
    assert status == 0 and rotated["action"] == "rotated", rotated
    assert rotated["createdKeyId"].lower() in sp_passwords(cloud, seeded.object_id)
    for value in cloud.admin("GET", "/issued-secrets")["secrets"]:
        assert value not in out and value not in err


def _app_tags(state: dict[str, Any], app_id: str) -> list[str]:
    for tenant in state["tenants"]:
        for app in tenant["applications"]:
            if app["appId"] == app_id:
                return list(app.get("tags") or [])
    raise AssertionError("no app")


async def test_the_sweep_finds_a_password_deleted_from_the_service_principal(cloud: RotatorCloud) -> None:
    """Not due by its dates, but its credential is gone: one listing of the service principals says so."""
    seeded, _ = await seed_sp(cloud, expires_in_days=80)

    def delete_by_hand(world: Any) -> None:
        for app in world.all_applications():
            if app.app_id == seeded.app_id:
                app.sp_passwords = [p for p in app.sp_passwords if p.key_id.lower() != seeded.key_id.lower()]

    cloud.edit(delete_by_hand)
    settings = make_settings()
    since = mark(cloud)

    async with open_runtime(settings) as runtime:
        statuses = await scan(settings, runtime.vaults, datetime.now(UTC), only="kv-local", catalog=runtime.directory)

    (mine,) = [s for s in statuses if s.name == seeded.name]
    assert mine.needs_work and "no longer exists on the service principal" in mine.needs_work, mine
    graph = [r["path"].split("?")[0] for r in matching(requests_since(cloud, since), "graph")]
    assert sorted(graph) == ["/v1.0/applications", "/v1.0/servicePrincipals"], graph


def test_diagnose_finds_an_unmanaged_value_on_the_service_principal_and_a_managed_one_missing_its_tag(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """The usual incident: a consumer's secret holds a service principal's password, and nothing says so."""
    seeded, _ = asyncio.run(seed_sp(cloud, bound_on=SP, credential_object=None))
    name = unique("sp-unmanaged")
    asyncio.run(write_secret(cloud, "kv-local", name, seeded.value))
    since = mark(cloud)

    _, out, _ = run_cli(capsys, "diagnose", "kv-local", name, "--app", seeded.app_id, "--json")

    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert "its value's hint is there, not on the app" in checks["app.exists"]["evidence"], checks["app.exists"]
    assert checks["credential.match"]["status"] == "pass", checks["credential.match"]
    assert writes(requests_since(cloud, since)) == []

    # Managed, but without CredentialObject=servicePrincipal: the rotator would look at the app registration.
    _, out, _ = run_cli(capsys, "diagnose", "kv-local", seeded.name, "--json")
    binding = {c["id"]: c for c in json.loads(out)["checks"]}["binding"]
    assert binding["status"] == "warn" and "no CredentialObject=servicePrincipal tag" in binding["evidence"], binding
    assert binding["remedy"].endswith("--service-principal")
    for value in cloud.admin("GET", "/issued-secrets")["secrets"]:
        assert value not in out
