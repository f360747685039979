"""The inventory's reads beyond the app's passwords, through the production adapter against the
local cloud (issues 13 and 15): every owner of an app past Graph's first page, the last sign-in of
each credential from the tenant's sign-in report (read once, not once per app) with its age and,
when unreadable, why (said once), and Graph's request counts pinned.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.cli import main
from rotation.runtime import open_runtime
from tests.integration.reconcile_helpers import advance_clock, sign_in, start_private_cloud
from tests.integration.seed import create_owned_app
from tests.integration.test_diagnose import add_password

DAY = timedelta(days=1)
REPORT = "/beta/reports/appCredentialSignInActivities"


def _graph_requests(cloud: RotatorCloud, since: int) -> list[dict[str, Any]]:
    return [r for r in cloud.admin("GET", f"/requests?since={since}")["requests"] if r["service"] == "graph"]


def _mark(cloud: RotatorCloud) -> int:
    mark: int = cloud.admin("GET", "/requests?since=0")["next"]
    return mark


def _issued(cloud: RotatorCloud) -> list[str]:
    secrets: list[str] = cloud.admin("GET", "/issued-secrets")["secrets"]
    return secrets


def _inventory(capsys: pytest.CaptureFixture[str], cloud: RotatorCloud, *argv: str) -> str:
    assert main(["inventory", *argv]) == 0
    out, err = capsys.readouterr()
    for value in _issued(cloud):
        assert value not in out + err, "a secret value reached the output"
    return out


@pytest.fixture
def own_cloud(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    return start_private_cloud(private_cloud, monkeypatch)


def _grant_audit_log(cloud: RotatorCloud) -> None:
    # Before the rotator's first token: a token carries the roles its identity had when issued.
    assert cloud.rotator is not None
    cloud.admin("POST", f"/applications/{cloud.rotator.app_id}/graph-app-roles", {"role": "AuditLog.Read.All"})


# --------------------------------------------------------------------------------------------------
# Owners beyond the first page


def test_owners_beyond_the_first_page_are_all_read(own_cloud: RotatorCloud) -> None:
    app = create_owned_app(own_cloud, "Widely owned")  # the rotator is its first owner
    named = [own_cloud.admin("POST", "/identities", {"displayName": f"Team {n}"}) for n in range(3)]
    for identity in named:
        own_cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": identity["objectId"]})
    for _ in range(146):  # users the local cloud knows by id only, as Graph shows unreadable objects
        own_cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": str(uuid.uuid4())})

    async def owners() -> Any:
        async with open_runtime() as runtime:
            return await runtime.directory.list_owners(app["id"])

    since = _mark(own_cloud)
    found = asyncio.run(owners())

    assert found is not None and len(found) == 150
    assert {o.display_name for o in found if o.display_name} >= {"Team 0", "Team 1", "Team 2"}
    pages = _graph_requests(own_cloud, since)
    assert [r["path"].split("?")[0] for r in pages] == [f"/v1.0/applications/{app['id']}/owners"] * 2
    assert "$skiptoken=" in pages[1]["path"] and all(r["status"] == 200 for r in pages)


# --------------------------------------------------------------------------------------------------
# Last sign-in


def test_last_sign_in_comes_from_one_report_read_for_every_app(
    own_cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    _grant_audit_log(own_cloud)
    apps = [create_owned_app(own_cloud, f"Service {n}") for n in range(4)]
    used = add_password(own_cloud, apps[0], days=90, name="used by the batch")
    unused = add_password(own_cloud, apps[0], days=90, name="never used")
    for app in apps[1:]:
        add_password(own_cloud, app, days=90)
    sign_in(own_cloud, apps[0]["appId"], used["secretText"])
    signed = [s for s in own_cloud.admin("GET", "/sign-ins")["signIns"] if s["keyId"] == used["keyId"]]
    day = datetime.fromisoformat(signed[-1]["time"].replace("Z", "+00:00")).astimezone(UTC)
    advance_clock(own_cloud, 2 * DAY)  # the report shows a sign-in only once it is a day old
    since = _mark(own_cloud)

    data = json.loads(_inventory(capsys, own_cloud, "--format", "json"))

    rows = {r["keyId"]: r for r in data["credentials"]}
    assert (rows[used["keyId"]]["lastSignIn"], rows[used["keyId"]]["signInStatus"]) == (f"{day:%Y-%m-%d}", "reported")
    assert (rows[unused["keyId"]]["lastSignIn"], rows[unused["keyId"]]["signInStatus"]) == ("never", "never")
    assert data["signInReport"] == {"readable": True, "unavailable": None, "age": "day-granular, at least a day late"}
    reports = [r for r in _graph_requests(own_cloud, since) if r["path"].startswith(REPORT)]
    # One listing for the whole tenant (5 apps: these 4 and the rotator's API), not one per app.
    assert len(reports) == 1 and "$filter" not in reports[0]["path"] and reports[0]["status"] == 200

    table = _inventory(capsys, own_cloud)
    assert table.count("at least a day late") == 1
    assert f"{day:%Y-%m-%d}" in next(line for line in table.splitlines() if used["keyId"] in line)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("none", "no AuditLog.Read.All"),
        ("free tenant", "the tenant has no Entra ID P1/P2 licence"),
    ],
)
def test_an_unreadable_report_is_said_once_and_every_sign_in_is_unknown(
    own_cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], setup: str, reason: str
) -> None:
    if setup == "free tenant":
        _grant_audit_log(own_cloud)
        own_cloud.admin("PUT", f"/tenants/{own_cloud.tenant_id}/license", {"license": "Free"})
    app = create_owned_app(own_cloud, "Unseen usage")
    add_password(own_cloud, app, days=30)
    add_password(own_cloud, app, days=60)

    data = json.loads(_inventory(capsys, own_cloud, "--format", "json"))
    assert data["signInReport"]["readable"] is False and data["signInReport"]["unavailable"] == reason
    assert {r["lastSignIn"] for r in data["credentials"] if r["kind"] != "federated"} == {"unknown"}
    assert not any(reason in w for w in data["warnings"]), "said in signInReport, not as a warning"

    table = _inventory(capsys, own_cloud)
    assert table.count(reason) == 1, "the reason is said once per inventory, not per row"
    page = _inventory(capsys, own_cloud, "--format", "html")
    assert page.count(reason) == 1


# --------------------------------------------------------------------------------------------------
# Request counts


def test_an_inventory_over_n_apps_makes_ceil_n_over_100_app_requests_and_no_per_app_read(
    own_cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Federated credentials come expanded in the app listing, whose pages Graph then caps at 100:
    101 apps and the rotator's own API make two pages, plus one service-principal page and one
    report read; nothing per app."""
    pipeline = own_cloud.admin("POST", "/applications", {"displayName": "Pipeline 000"})
    own_cloud.admin(
        "POST",
        f"/applications/{pipeline['id']}/federated-credentials",
        {"name": "main", "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:main"},
    )
    for number in range(1, 101):
        own_cloud.admin("POST", "/applications", {"displayName": f"Pipeline {number:03d}"})
    since = _mark(own_cloud)

    data = json.loads(_inventory(capsys, own_cloud, "--format", "json"))

    assert data["applications"] == 102
    (federated,) = [r for r in data["credentials"] if r["kind"] == "federated"]
    assert federated["subject"] == "repo:o/r:ref:main" and federated["noPasswordLeft"]
    paths = [r["path"] for r in _graph_requests(own_cloud, since)]
    listings = [p for p in paths if p.startswith("/v1.0/applications?")]
    assert len(listings) == 2 and all("$expand=federatedIdentityCredentials" in p for p in listings)
    assert len(paths) == 2 + 1 + 1, paths  # ceil(102/100) + S + R
