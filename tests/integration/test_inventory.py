"""`python -m rotation inventory` and `inventory_response` against a local cloud of their own.

`seed_scenario` builds one of each standing (managed, retiring, orphaned, unmanaged, certificate,
dangling twice, an app the rotator cannot see) plus hostile display names, and one of each credential
kind (passwords on an app and on a service principal, certificates, a federated credential), with
sign-ins the report shows (a consumer still on the retiring value); the Chromium test reuses it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.cli import main
from rotation.domain.model import binding_tag, vault_host
from rotation.runtime import open_runtime
from rotation.tools.inventory import inventory_response
from tests.integration.reconcile_helpers import sign_in
from tests.integration.seed import create_owned_app, write_secret
from tests.integration.test_diagnose import add_password, end_of, iso, remove_credential

ROTATION_ID = "20250101T000000Z-0badc0de"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_SUBJECT = "repo:contoso/ledger:environment:production"
HOSTILE_NAME = 'Partner portal <img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>'
FORMULA_NAME = '=HYPERLINK("http://evil.example","Open")'


@dataclass
class Scenario:
    cloud: RotatorCloud
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # role in the scenario -> keyId
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (vault, secret)
    values: list[str] = field(default_factory=list)
    stored: dict[str, str] = field(default_factory=dict)  # role -> the value its secret holds
    thumbprints: dict[str, str] = field(default_factory=dict)  # role -> the certificate's, as Graph shows it

    def value_of(self, role: str) -> str:
        return self.stored[role]

    def store(self, role: str, vault: str, name: str, value: str, tags: dict[str, str], expires: datetime) -> None:
        self.values.append(value)
        self.secrets[role] = (vault, name)
        self.stored[role] = value
        asyncio.run(write_secret(self.cloud, vault, name, value, tags, expires))


def _app(scenario: Scenario, role: str, name: str) -> dict[str, Any]:
    app = create_owned_app(scenario.cloud, name)
    scenario.apps[role] = app
    return app


def _password(scenario: Scenario, role: str, app: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    password = add_password(scenario.cloud, app, **kwargs)
    scenario.keys[role] = password["keyId"]
    return password


def _managed(scenario: Scenario, role: str, name: str, days: float, vault: str = "kv-local") -> None:
    app = _app(scenario, role, name)
    password = _password(scenario, role, app, days=days, name="rotated by the rotator")
    tags = {"ProviderAddress": app["appId"], "CredentialId": password["keyId"], "RotationState": "active"}
    scenario.store(
        role, vault, re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"), password["secretText"], tags, end_of(password)
    )


def seed_scenario(cloud: RotatorCloud) -> Scenario:
    scenario = Scenario(cloud)
    # Usage evidence: the rotator may read the sign-in report (granted before its first token, which
    # carries the roles it had when issued), and the report shows a sign-in at once, not a day later.
    assert cloud.rotator is not None
    cloud.admin("POST", f"/applications/{cloud.rotator.app_id}/graph-app-roles", {"role": "AuditLog.Read.All"})
    cloud.admin("PUT", "/config", {"signInReportDelaySeconds": 0})

    # Payments API: managed, with the previous credential retiring and a crashed rotation's orphan.
    payments = _app(scenario, "managed", "Payments API")
    current = _password(scenario, "managed", payments, days=45, name="rotated by the rotator")
    previous = _password(scenario, "retiring", payments, days=3, started_days_ago=40, name="rotated by the rotator")
    _password(
        scenario, "orphaned", payments, days=90, started_days_ago=2, name=f"rotator:kv-local/payments-api:{ROTATION_ID}"
    )
    tags = {
        "ProviderAddress": payments["appId"],
        "CredentialId": current["keyId"],
        "RotationState": "active",
        "RotationId": ROTATION_ID,
        "RetireCredentialId": previous["keyId"],
        "RetireAfter": iso(datetime.now(UTC) + timedelta(hours=20)),
    }
    scenario.store("managed", "kv-local", "payments-api", current["secretText"], tags, end_of(current))

    # Nightly reports: everything made by hand, one expiring, one expired, and a certificate.
    batch = _app(scenario, "batch", "Nightly reports batch")
    _password(scenario, "unmanaged-soon", batch, days=5, name="laptop of J. Doe")
    _password(scenario, "unmanaged-expired", batch, days=-2, started_days_ago=400, name="2023 secret")
    certificate = cloud.admin(
        "POST",
        f"/applications/{batch['id']}/certificates",
        {"displayName": "CN=reports", "endDateTime": iso(datetime.now(UTC) + timedelta(days=200))},
    )
    scenario.keys["certificate"] = certificate["keyId"]

    # More managed apps so the timeline has something in each band.
    _managed(scenario, "billing", "Billing webhook", days=2.5)
    _managed(scenario, "search", "Search indexer", days=21)
    _managed(scenario, "sync", "Inventory sync", days=160, vault="kv-second")

    # Hostile names: markup in one, a spreadsheet formula in another.
    hostile = _app(scenario, "hostile", HOSTILE_NAME)
    _password(scenario, "hostile", hostile, days=400, name="<b>bold</b> & 'quoted'")
    formula = _app(scenario, "formula", FORMULA_NAME)
    _password(scenario, "formula", formula, days=300, name="=1+1")

    # Dangling: the vault still names a credential deleted in Entra, and one of a deleted app.
    legacy = _password(scenario, "dangling", payments, days=30, name="legacy consumer")
    scenario.store(
        "dangling",
        "kv-second",
        "payments-legacy",
        legacy["secretText"],
        {"ProviderAddress": payments["appId"], "CredentialId": legacy["keyId"]},
        end_of(legacy),
    )
    remove_credential(cloud, payments, legacy["keyId"])
    gone = _app(scenario, "gone", "Decommissioned CRM")
    gone_password = _password(scenario, "dangling-app", gone, days=12)
    scenario.store(
        "dangling-app",
        "kv-second",
        "crm-client-secret",
        gone_password["secretText"],
        {"ProviderAddress": gone["appId"], "CredentialId": gone_password["keyId"]},
        end_of(gone_password),
    )
    cloud.admin("DELETE", f"/applications/{gone['id']}")

    # An app the rotator does not own: Graph lists it all the same (Application.ReadWrite.OwnedBy "allows
    # an app to call GET /applications ... to list all applications", the permissions reference), so
    # it is an unmanaged row; only writing is limited to owned apps.
    foreign = cloud.admin("POST", "/applications", {"displayName": "Someone else's app"})
    scenario.apps["foreign"] = foreign
    scenario.keys["foreign"] = add_password(cloud, foreign, days=1)["keyId"]

    # A password on a service principal, managed (bound on the service principal, where it lives).
    ledger = _app(scenario, "sp-password", "Ledger export")
    sp_password = cloud.admin(
        "POST",
        f"/service-principals/{ledger['id']}/passwords",
        {"displayName": "on the service principal", "endDateTime": iso(datetime.now(UTC) + timedelta(days=75))},
    )
    scenario.keys["sp-password"] = sp_password["keyId"]
    host = vault_host(cloud.vault_url("kv-local"))
    sp_binding = binding_tag(host, "ledger-export", on="servicePrincipal")
    cloud.admin("PUT", f"/service-principals/{ledger['id']}/tags", {"tags": [sp_binding]})
    scenario.store(
        "sp-password",
        "kv-local",
        "ledger-export",
        sp_password["secretText"],
        {
            "ProviderAddress": ledger["appId"],
            "CredentialId": sp_password["keyId"],
            "CredentialObject": "servicePrincipal",
        },
        end_of(sp_password),
    )
    # A certificate on the same service principal (its own keyCredentials, not the app's).
    sp_certificate = cloud.admin(
        "POST",
        f"/service-principals/{ledger['id']}/certificates",
        {"displayName": "CN=ledger-sp", "endDateTime": iso(datetime.now(UTC) + timedelta(days=250))},
    )
    scenario.keys["sp-certificate"] = sp_certificate["keyId"]
    scenario.thumbprints["sp-certificate"] = sp_certificate["customKeyIdentifier"]
    # Apps with no password left: one trusts a GitHub workflow instead, one signs in with a certificate.
    pipeline = _app(scenario, "federated", "Deploy pipeline")
    federated = cloud.admin(
        "POST",
        f"/applications/{pipeline['id']}/federated-credentials",
        {"name": "main-branch", "issuer": GITHUB_ISSUER, "subject": GITHUB_SUBJECT},
    )
    scenario.keys["federated"] = federated["id"]
    signer = _app(scenario, "certificate-only", "Reports signer")
    signer_certificate = cloud.admin(
        "POST",
        f"/applications/{signer['id']}/certificates",
        {"displayName": "CN=signer", "endDateTime": iso(datetime.now(UTC) + timedelta(days=120))},
    )
    scenario.keys["certificate-only"] = signer_certificate["keyId"]
    scenario.thumbprints["certificate-only"] = signer_certificate["customKeyIdentifier"]

    # Sign-ins the report shows: the billing webhook's consumer, and one still on Payments' retiring value.
    sign_in(cloud, scenario.apps["billing"]["appId"], scenario.value_of("billing"))
    sign_in(cloud, payments["appId"], previous["secretText"])
    return scenario


@pytest.fixture
def scenario(private_cloud: Callable[..., RotatorCloud]) -> Iterator[Scenario]:
    local = private_cloud(vaults=("kv-local", "kv-second"))
    with local.environment():
        yield seed_scenario(local)


# --------------------------------------------------------------------------------------------------
# Helpers


def assert_no_secret_value(scenario: Scenario, text: str) -> None:
    issued: list[str] = scenario.cloud.admin("GET", "/issued-secrets")["secrets"]
    for value in [*issued, *scenario.values]:
        assert value not in text, "a secret value reached the output"


def inventory(capsys: pytest.CaptureFixture[str], scenario: Scenario, *argv: str) -> tuple[int, str]:
    code = main(["inventory", *argv])
    out, err = capsys.readouterr()
    assert_no_secret_value(scenario, out + err)
    return code, out


def inventory_json(capsys: pytest.CaptureFixture[str], scenario: Scenario, *argv: str) -> dict[str, Any]:
    code, out = inventory(capsys, scenario, "--format", "json", *argv)
    assert code == 0
    data: dict[str, Any] = json.loads(out)  # stdout is exactly one JSON document
    return data


def by_key(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["keyId"]: row for row in data["credentials"]}


# --------------------------------------------------------------------------------------------------
# Classification


def test_every_standing_is_classified(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    data = inventory_json(capsys, scenario)
    rows = by_key(data)
    keys = scenario.keys

    managed = rows[keys["managed"]]
    assert (managed["standing"], managed["vault"], managed["secret"]) == ("managed", "kv-local", "payments-api")
    assert managed["appName"] == "Payments API" and managed["kind"] == "password"
    assert managed["hint"] and len(managed["hint"]) == 3
    assert rows[keys["retiring"]]["standing"] == "retiring"
    assert rows[keys["retiring"]]["secret"] == "payments-api"
    orphan = rows[keys["orphaned"]]
    assert orphan["standing"] == "orphaned" and ROTATION_ID in orphan["note"]
    assert rows[keys["unmanaged-soon"]]["standing"] == "unmanaged"
    expired = rows[keys["unmanaged-expired"]]
    assert expired["standing"] == "unmanaged" and expired["urgency"] == "expired" and expired["daysLeft"] < 0
    certificate = rows[keys["certificate"]]
    assert (certificate["kind"], certificate["standing"]) == ("certificate", "unmanaged")
    assert rows[keys["sync"]]["vault"] == "kv-second"

    dangling = rows[keys["dangling"]]
    assert (dangling["standing"], dangling["vault"], dangling["secret"]) == ("dangling", "kv-second", "payments-legacy")
    assert "no longer exists on the app" in dangling["note"]
    gone = rows[keys["dangling-app"]]
    assert gone["standing"] == "dangling" and "not visible to the rotator" in gone["note"]

    assert rows[keys["foreign"]]["standing"] == "unmanaged"  # Graph decides what the rotator may list
    assert data["counts"]["dangling"] == 2 and data["counts"]["orphaned"] == 1
    # The ten apps above, the one it does not own, and the rotator's own API registration.
    assert data["applications"] == 12 and data["vaultSecrets"] == 7 and data["servicePrincipals"] == 1
    days = [row["daysLeft"] for row in data["credentials"] if row["daysLeft"] is not None]
    assert days == sorted(days), "soonest expiry first"
    assert data["credentials"][-1]["kind"] == "federated", "what never expires comes last"


def test_every_kind_of_credential_is_listed(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    data = inventory_json(capsys, scenario)
    rows = by_key(data)
    keys = scenario.keys

    on_sp = rows[keys["sp-password"]]
    assert (on_sp["kind"], on_sp["credentialObject"], on_sp["standing"]) == ("password", "servicePrincipal", "managed")
    assert (on_sp["vault"], on_sp["secret"]) == ("kv-local", "ledger-export") and "not bound" not in on_sp["note"]
    assert on_sp["appName"] == "Ledger export" and not on_sp["noPasswordLeft"]
    assert rows[keys["managed"]]["credentialObject"] == "application"

    federated = rows[keys["federated"]]
    assert (federated["kind"], federated["issuer"], federated["subject"]) == (
        "federated",
        GITHUB_ISSUER,
        GITHUB_SUBJECT,
    )
    assert federated["end"] is None and federated["daysLeft"] is None and "do not expire" in federated["note"]
    assert federated["credentialName"] == "main-branch" and federated["lastSignIn"] == "n/a"

    certificate = rows[keys["certificate-only"]]
    assert certificate["kind"] == "certificate" and certificate["end"] and certificate["noPasswordLeft"]
    thumbprint = scenario.thumbprints["certificate-only"]
    assert re.fullmatch(r"[0-9A-F]{40}", thumbprint) and certificate["thumbprint"] == thumbprint
    on_sp_certificate = rows[keys["sp-certificate"]]
    assert (on_sp_certificate["kind"], on_sp_certificate["credentialObject"]) == ("certificate", "servicePrincipal")
    assert on_sp_certificate["thumbprint"] == scenario.thumbprints["sp-certificate"]
    without = {a["appName"] for a in data["appsWithoutPassword"]}
    assert without == {"Deploy pipeline", "Reports signer"}, "every other app holds a live password"


def test_last_sign_in_shows_who_still_uses_a_credential(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    data = inventory_json(capsys, scenario)
    rows = by_key(data)
    keys = scenario.keys
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert data["signInReport"]["readable"] is True
    # The consumer still on the retiring value is what an operator needs to see before it goes.
    assert (rows[keys["retiring"]]["lastSignIn"], rows[keys["retiring"]]["signInStatus"]) == (today, "reported")
    assert rows[keys["billing"]]["lastSignIn"] == today
    assert rows[keys["managed"]]["lastSignIn"] == "never"
    code, table = inventory(capsys, scenario)
    assert code == 0 and table.count("at least a day late") == 1


def test_days_filters_to_what_expires_soon(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    data = inventory_json(capsys, scenario, "--days", "7")
    keys = scenario.keys
    assert set(by_key(data)) == {
        keys["unmanaged-expired"],
        keys["billing"],
        keys["retiring"],
        keys["unmanaged-soon"],
        keys["foreign"],
    }
    assert data["days"] == 7
    assert all(row["daysLeft"] <= 7 for row in data["credentials"])


def test_table_is_the_default(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    code, out = inventory(capsys, scenario)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["Days", "Expires", "Standing"]
    assert any("Payments API" in line and "managed" in line for line in lines)
    assert re.search(r"^\d+ credential\(s\) across 12 application\(s\) and 7 vault secret\(s\): ", out, re.M)


def test_csv_neutralises_formulas(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    code, out = inventory(capsys, scenario, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    formula = next(r for r in rows if r["keyId"] == scenario.keys["formula"])
    assert formula["appName"] == "'" + FORMULA_NAME
    assert formula["credentialName"] == "'=1+1"
    assert float(next(r for r in rows if r["keyId"] == scenario.keys["unmanaged-expired"])["daysLeft"]) < 0


def test_html_is_self_contained_and_escaped(
    capsys: pytest.CaptureFixture[str], scenario: Scenario, tmp_path: Path
) -> None:
    target = tmp_path / "inventory.html"
    code, out = inventory(capsys, scenario, "--format", "html", "--output", str(target))
    assert code == 0 and out == ""
    page = target.read_text(encoding="utf-8")
    assert_no_secret_value(scenario, page)
    assert page.startswith("<!doctype html>")
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;&lt;/script&gt;" in page
    assert "<img" not in page and "<link" not in page and page.count("<script>") == 1
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in page
    assert re.search(r'http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;', page)
    # Nothing to fetch: no URL outside the visible text (an escaped display name, an issuer shown as text).
    assert set(re.findall(r"https?://[^\s&<\"]*", page)) == {"http://evil.example", GITHUB_ISSUER}
    assert " href=" not in page
    assert 'aria-sort="ascending"' in page and "<caption>" in page


def test_json_flag_is_format_json(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    code, out = inventory(capsys, scenario, "--json")
    assert code == 0 and "credentials" in json.loads(out)


# --------------------------------------------------------------------------------------------------
# Reads only, and cheaply


def test_inventory_reads_lists_only(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    cloud = scenario.cloud
    for number in range(30):  # 30 + 3 secrets in kv-local: two pages of at most 25
        asyncio.run(write_secret(cloud, "kv-local", f"bulk-{number:02d}", "x" * 40, {"Owner": "bulk"}))
    since = cloud.admin("GET", "/requests?since=0")["next"]

    inventory(capsys, scenario, "--format", "json")

    requests = cloud.admin("GET", f"/requests?since={since}")["requests"]
    assert {r["method"] for r in requests} == {"GET"}
    graph = [r for r in requests if r["service"] == "graph"]
    kinds = [_graph_read(r["path"]) for r in graph]
    # ceil(N/100) + S + R: one page of the 12 apps with their federated credentials expanded, one of
    # service principals, one of the tenant's sign-in report (not one per app).
    assert sorted(kinds) == ["applications", "report", "servicePrincipals"], kinds
    assert "$expand=federatedIdentityCredentials" in next(
        r["path"] for r in graph if _graph_read(r["path"]) == "applications"
    )
    assert all(
        "$select=" in r["path"] for r in graph if _graph_read(r["path"]) in ("applications", "servicePrincipals")
    )
    vault_reads = [r for r in requests if r["service"] == "keyvault" and r["status"] == 200]
    assert all(re.match(r"^/secrets\?", r["path"]) for r in vault_reads), "no value read, only lists"
    assert len(vault_reads) == 3  # kv-local: 2 pages, kv-second: 1


def test_federated_credentials_are_read_per_app_when_graph_refuses_the_expansion(
    capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    cloud = scenario.cloud
    refusal = {"status": 400, "code": "Request_UnsupportedQuery", "count": 1, "pathRegex": r"^/v1\.0/applications$"}
    cloud.admin("POST", "/faults", {"service": "graph", **refusal})
    since = cloud.admin("GET", "/requests?since=0")["next"]

    data = inventory_json(capsys, scenario)

    assert by_key(data)[scenario.keys["federated"]]["subject"] == GITHUB_SUBJECT
    assert any("Graph refused $expand" in w for w in data["warnings"]), data["warnings"]
    graph = [r for r in cloud.admin("GET", f"/requests?since={since}")["requests"] if r["service"] == "graph"]
    kinds = sorted(_graph_read(r["path"]) for r in graph)
    # The refused listing, the plain one, then ceil(N/100) + N + S + R.
    assert kinds == sorted(["applications"] * 2 + ["federated"] * 12 + ["report", "servicePrincipals"]), kinds


def _graph_read(path: str) -> str:
    """Which of the inventory's Graph reads a request path is."""
    if path.startswith("/v1.0/applications?"):
        return "applications"
    if path.startswith("/v1.0/servicePrincipals?"):
        return "servicePrincipals"
    if re.match(r"^/v1\.0/applications/[0-9a-f-]{36}/federatedIdentityCredentials$", path):
        return "federated"
    if path.startswith("/beta/reports/appCredentialSignInActivities"):
        return "report"
    return path


def test_graph_listing_follows_next_links(scenario: Scenario) -> None:
    async def listed() -> list[str]:
        async with open_runtime() as runtime:
            pages: list[int] = []
            apps = await runtime.directory.list_applications(page_size=2, on_page=pages.append)
            assert len(pages) == 6 and sum(pages) == len(apps)
            return [a.application.app_id for a in apps]

    since = scenario.cloud.admin("GET", "/requests?since=0")["next"]
    app_ids = asyncio.run(listed())
    graph = [r for r in scenario.cloud.admin("GET", f"/requests?since={since}")["requests"] if r["service"] == "graph"]
    assert len(graph) == 6 and sum("skiptoken" in r["path"] for r in graph) == 5
    assert len(app_ids) == len(set(app_ids)) == 12


def test_an_unreadable_vault_is_reported_not_fatal(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    cloud = scenario.cloud
    assert cloud.rotator is not None
    cloud.admin(
        "DELETE",
        "/role-assignments",
        {"objectId": cloud.rotator.sp_object_id, "vault": "kv-second", "role": "Key Vault Secrets Officer"},
    )
    data = inventory_json(capsys, scenario)
    assert any("kv-second" in w and "PermissionDenied" in w for w in data["warnings"])
    # Without kv-second's tags its credential looks unmanaged: the warning is what says why.
    assert by_key(data)[scenario.keys["sync"]]["standing"] == "unmanaged"


def test_terminal_output_cannot_be_hijacked_by_a_display_name(
    capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    app = create_owned_app(scenario.cloud, "Ops tool \x1b]0;owned\x07\x1b[31m")
    add_password(scenario.cloud, app)
    code, out = inventory(capsys, scenario)
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "Ops tool ?]0;owned??[31m" in out


# --------------------------------------------------------------------------------------------------
# HTTP: GET /api/inventory?days=N&format=json|html


@pytest.mark.parametrize(
    ("days", "fmt", "message"),
    [
        (-1, "json", "'days'"),
        (3651, "json", "'days'"),
        ("abc", "json", "'days'"),
        ("1e3", "html", "'days'"),
        (True, "json", "'days'"),
        (None, "xml", "'format'"),
        (10, "csv", "'format'"),
    ],
)
def test_http_rejects_bad_input(scenario: Scenario, days: Any, fmt: str, message: str) -> None:
    async def call() -> tuple[int, str, str]:
        async with open_runtime() as runtime:
            return await inventory_response(runtime, days, fmt)

    since = scenario.cloud.admin("GET", "/requests?since=0")["next"]
    status, content_type, body = asyncio.run(call())
    assert status == 400 and content_type.startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "BadRequest" and message in error["message"]
    after = scenario.cloud.admin("GET", f"/requests?since={since}")["requests"]
    assert [r for r in after if r["service"] in ("graph", "keyvault")] == []


def test_http_serves_json_and_html(scenario: Scenario) -> None:
    async def call(days: Any, fmt: str) -> tuple[int, str, str]:
        async with open_runtime() as runtime:
            return await inventory_response(runtime, days, fmt)

    status, content_type, body = asyncio.run(call("30", "json"))
    assert status == 200 and content_type == "application/json; charset=utf-8"
    data = json.loads(body)
    assert data["days"] == 30 and all(row["daysLeft"] <= 30 for row in data["credentials"])
    assert_no_secret_value(scenario, body)

    status, content_type, body = asyncio.run(call(None, "html"))
    assert status == 200 and content_type == "text/html; charset=utf-8"
    assert body.startswith("<!doctype html>") and "Payments API" in body
    assert_no_secret_value(scenario, body)


def test_http_failure_is_a_clear_json_error(scenario: Scenario) -> None:
    cloud = scenario.cloud
    # The app listing itself (the other Graph reads run alongside it and only add warnings when refused).
    cloud.admin(
        "POST", "/faults", {"service": "graph", "status": 403, "count": 1, "pathRegex": r"^/v1\.0/applications$"}
    )

    async def call() -> tuple[int, str, str]:
        async with open_runtime() as runtime:
            return await inventory_response(runtime, 0, "json")

    status, _, body = asyncio.run(call())
    assert status == 500
    error = json.loads(body)["error"]
    assert error["code"] == "PermissionDenied" and "Application.ReadWrite.OwnedBy" in error["message"]
