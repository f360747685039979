"""The inventory's model and formats for every kind of credential (issues 13 and 15): passwords on
the app registration and on its service principal, certificates with their thumbprint, federated
credentials (which never expire), apps with no password left, and each credential's last sign-in
from the report, whose age and unavailability are said once per inventory."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from rotation.adapters.graph_reads import report_rows, serves_sign_in_report, thumbprint
from rotation.domain.listing import (
    CertificateCredential,
    FederatedCredential,
    ListedApplication,
    ListedServicePrincipal,
)
from rotation.domain.model import Application, PasswordCredential, SecretVersion, Sensitive, binding_tag
from rotation.domain.sign_in_report import NO_AUDIT_LOG, NO_PREMIUM, SignInReport, refusal_reason
from rotation.redact import registry
from rotation.tools.inventory import Inventory, InventoryRow, classify, render
from rotation.tools.inventory.classify import apps_without_password, with_sign_ins

from .samples import APP_ID, KEY_A, KEY_B, KEY_C, NOW, SECRET_VALUE

DAY = timedelta(days=1)
HOST = "kv.vault.azure.net"
SP_ID = "5b000000-0000-0000-0000-000000000001"
CERT_APP = "22222222-2222-2222-2222-222222222222"
FED_APP = "33333333-3333-3333-3333-333333333333"
EXPIRED_APP = "44444444-4444-4444-4444-444444444444"
KEY_CERT = "dddddddd-0000-0000-0000-000000000004"
KEY_FED = "eeeeeeee-0000-0000-0000-000000000005"
KEY_OLD = "ffffffff-0000-0000-0000-000000000006"
THUMBPRINT = "3D2F4A8E4AAE2E0A4F1D3F9D7C3F2AB2F6D1C0A1"


def _password(key_id: str, days: float, name: str = "by hand") -> PasswordCredential:
    return PasswordCredential(key_id, name, "abc", NOW - 30 * DAY, NOW + days * DAY)


def _secret(name: str, key_id: str, app_id: str, **tags: str) -> SecretVersion:
    return SecretVersion(
        vault="kv",
        name=name,
        version="1" * 32,
        tags={"ProviderAddress": app_id, "CredentialId": key_id, **tags},
        enabled=True,
        expires=NOW + 60 * DAY,
    )


def _sources() -> tuple[list[ListedApplication], list[ListedServicePrincipal], list[SecretVersion]]:
    # The app's own password is expired; its live one is on the service principal, bound there.
    payments = Application(
        "0a000000-0000-0000-0000-000000000001", APP_ID, "Payments API", password_credentials=(_password(KEY_OLD, -2),)
    )
    principal = Application(
        SP_ID,
        APP_ID,
        "Payments API (SP)",
        password_credentials=(_password(KEY_A, 40),),
        tags=(binding_tag(HOST, "payments-sp", on="servicePrincipal"),),
        credential_object="servicePrincipal",
    )
    certificate_only = ListedApplication(
        Application("0a000000-0000-0000-0000-000000000002", CERT_APP, "Reports"),
        certificates=(CertificateCredential(KEY_CERT, "CN=reports", NOW - DAY, NOW + 200 * DAY, THUMBPRINT),),
    )
    federated_only = ListedApplication(
        Application("0a000000-0000-0000-0000-000000000003", FED_APP, "Deploy pipeline"),
        federated=(
            FederatedCredential(
                KEY_FED, "main-branch", "https://token.actions.githubusercontent.com", "repo:contoso/app:ref:main"
            ),
        ),
    )
    expired = Application(
        "0a000000-0000-0000-0000-000000000004", EXPIRED_APP, "Old batch", password_credentials=(_password(KEY_B, -1),)
    )
    apps = [ListedApplication(payments), certificate_only, federated_only, ListedApplication(expired)]
    secrets = [
        _secret("payments-sp", KEY_A, APP_ID, CredentialObject="servicePrincipal"),
        _secret("ghost", KEY_C, "99999999-0000-0000-0000-000000000009"),  # an app the rotator cannot see
    ]
    return apps, [ListedServicePrincipal(principal)], secrets


def _rows(report: SignInReport | None = None) -> dict[str, InventoryRow]:
    apps, principals, secrets = _sources()
    rows = classify(apps, secrets, NOW, vault_hosts={"kv": HOST}, service_principals=principals, sign_ins=report)
    return {row.key_id: row for row in rows}


def _inventory(report: SignInReport) -> Inventory:
    apps, principals, secrets = _sources()
    rows = classify(apps, secrets, NOW, vault_hosts={"kv": HOST}, service_principals=principals, sign_ins=report)
    return Inventory(
        generated=NOW,
        rows=tuple(rows),
        applications=len(apps),
        vault_secrets=len(secrets),
        sign_ins_unavailable=report.unavailable,
        apps_without_password=apps_without_password(rows),
        service_principals=len(principals),
    )


# --------------------------------------------------------------------------------------------------
# Classification


def test_a_service_principal_password_is_listed_on_its_object_and_bound_there() -> None:
    row = _rows()[KEY_A]
    assert (row.kind, row.credential_object, row.standing.value) == ("password", "servicePrincipal", "managed")
    assert (row.vault, row.secret) == ("kv", "payments-sp")
    assert "not bound" not in row.note, "the SP's own tags hold its binding"
    assert row.app_id == APP_ID and row.app_name == "Payments API (SP)"


def test_a_binding_on_the_app_does_not_cover_the_service_principal_password() -> None:
    apps, principals, secrets = _sources()
    principal = principals[0].principal
    # The same password on an SP whose tags bind nothing, with the binding on the app instead.
    # Graph reads the app's tags back on its service principal too (a union): the app's binding form is
    # still no binding of the service principal's password.
    unbound = Application(
        SP_ID,
        APP_ID,
        principal.display_name,
        password_credentials=principal.password_credentials,
        tags=(binding_tag(HOST, "payments-sp"),),
        credential_object="servicePrincipal",
    )
    app = apps[0].application
    bound_app = Application(
        app.object_id,
        APP_ID,
        app.display_name,
        password_credentials=app.password_credentials,
        tags=(binding_tag(HOST, "payments-sp"),),
    )
    apps[0] = ListedApplication(bound_app)
    listed = classify(
        apps, secrets, NOW, vault_hosts={"kv": HOST}, service_principals=[ListedServicePrincipal(unbound)]
    )
    assert "not bound" in {r.key_id: r for r in listed}[KEY_A].note


def test_a_held_retirement_shows_on_the_retiring_credential_with_its_reason() -> None:
    apps, principals, secrets = _sources()
    reason = f"credential {KEY_B} signed in on 2026-11-29: something still uses it"
    app = apps[0].application
    with_old = Application(
        app.object_id, APP_ID, app.display_name, password_credentials=(*app.password_credentials, _password(KEY_B, 30))
    )
    apps[0] = ListedApplication(with_old)
    secrets[0] = _secret(
        "payments-sp",
        KEY_A,
        APP_ID,
        CredentialObject="servicePrincipal",
        RetireCredentialId=KEY_B,
        RetirementHeld=reason,
    )
    rows = {r.key_id: r for r in classify(apps, secrets, NOW, vault_hosts={"kv": HOST}, service_principals=principals)}
    assert rows[KEY_B].standing.value == "retiring"
    assert f"retirement held: {reason}" in rows[KEY_B].note
    assert "retirement held" not in rows[KEY_A].note


def test_a_certificate_has_its_thumbprint_and_expiry() -> None:
    row = _rows()[KEY_CERT]
    assert (row.kind, row.thumbprint, row.end) == ("certificate", THUMBPRINT, NOW + 200 * DAY)


def test_a_federated_credential_has_its_trust_and_never_expires() -> None:
    row = _rows()[KEY_FED]
    assert row.kind == "federated" and row.end is None and row.days_left(NOW) is None
    assert row.issuer == "https://token.actions.githubusercontent.com"
    assert row.subject == "repo:contoso/app:ref:main"
    assert "do not expire" in row.note and row.sign_in_status == "notReported"


def test_apps_with_no_password_left_are_marked() -> None:
    rows = _rows()
    # Payments' own password expired, but its service principal holds a live one: it can sign in.
    assert not rows[KEY_OLD].no_password_left and not rows[KEY_A].no_password_left
    assert rows[KEY_CERT].no_password_left  # only a certificate
    assert rows[KEY_FED].no_password_left  # only a federated credential
    assert rows[KEY_B].no_password_left  # every password expired
    assert not rows[KEY_C].no_password_left, "an app the rotator cannot see is not judged"
    names = [name for _, name in apps_without_password(rows.values())]
    assert names == ["Deploy pipeline", "Old batch", "Reports"]


# --------------------------------------------------------------------------------------------------
# Last sign-in


def test_last_sign_in_comes_from_the_report_by_key_id() -> None:
    day = datetime(2025, 1, 28, tzinfo=NOW.tzinfo)
    report = SignInReport({KEY_A: day, KEY_C: datetime(2025, 1, 2, tzinfo=NOW.tzinfo), KEY_CERT.upper().lower(): None})
    rows = _rows(report)
    assert (rows[KEY_A].sign_in_status, rows[KEY_A].last_sign_in_text) == ("reported", "2025-01-28")
    assert rows[KEY_C].last_sign_in_text == "2025-01-02", "a dangling secret's old credential: still used?"
    assert rows[KEY_B].last_sign_in_text == "never"  # not in the report
    assert rows[KEY_CERT].last_sign_in_text == "never"  # a row without a date
    assert rows[KEY_FED].last_sign_in_text == "n/a"  # the report has no federated sign-ins


def test_an_unreadable_report_makes_every_sign_in_unknown() -> None:
    rows = with_sign_ins(_rows().values(), SignInReport.refused(NO_AUDIT_LOG))
    assert {r.last_sign_in_text for r in rows if r.kind != "federated"} == {"unknown"}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("Authorization_RequestDenied", NO_AUDIT_LOG),
        ("Authentication_RequestFromNonPremiumTenantOrB2CTenant", NO_PREMIUM),
        ("Something_Else", "Graph refused the report (Something_Else)"),
    ],
)
def test_the_reason_follows_graphs_code(code: str, reason: str) -> None:
    assert refusal_reason(code) == reason


def test_report_rows_and_clouds() -> None:
    page = {
        "value": [
            {"keyId": KEY_A.upper(), "signInActivity": {"lastSignInDateTime": "2025-01-28T00:00:00Z"}},
            {"keyId": KEY_B, "signInActivity": {}},
            "junk",
        ]
    }
    assert report_rows(page) == {KEY_A: datetime(2025, 1, 28, tzinfo=NOW.tzinfo), KEY_B: None}
    assert serves_sign_in_report("https://graph.microsoft.com/v1.0")
    assert serves_sign_in_report("https://127.0.0.1:8443/v1.0")
    assert not serves_sign_in_report("https://graph.microsoft.us/v1.0")
    assert not serves_sign_in_report("https://microsoftgraph.chinacloudapi.cn/v1.0")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (THUMBPRINT, THUMBPRINT),  # 40 hex characters, as the portal and the CLI store it
        (THUMBPRINT.lower(), THUMBPRINT),
        (base64.b64encode(bytes.fromhex(THUMBPRINT)).decode(), THUMBPRINT),  # the 20 raw bytes
        (base64.b64encode(b"my own identifier").decode(), None),
    ],
)
def test_thumbprint_from_custom_key_identifier(wire: str, expected: str | None) -> None:
    # What msgraph-sdk hands over: the Binary property, base64-decoded.
    assert thumbprint(base64.b64decode(wire)) == expected


def test_no_custom_key_identifier_is_no_thumbprint() -> None:
    assert thumbprint(None) is None and thumbprint(b"") is None


# --------------------------------------------------------------------------------------------------
# Formats


def test_json_carries_every_new_field_and_the_report_once() -> None:
    data = json.loads(render(_inventory(SignInReport({KEY_A: NOW - 3 * DAY})), "json"))
    rows = {r["keyId"]: r for r in data["credentials"]}
    assert rows[KEY_A]["credentialObject"] == "servicePrincipal" and rows[KEY_A]["lastSignIn"] == "2025-01-28"
    assert rows[KEY_A]["signInStatus"] == "reported" and rows[KEY_B]["lastSignIn"] == "never"
    assert rows[KEY_CERT]["thumbprint"] == THUMBPRINT and rows[KEY_CERT]["noPasswordLeft"] is True
    assert rows[KEY_FED]["issuer"].startswith("https://token.") and rows[KEY_FED]["end"] is None
    assert data["signInReport"] == {"readable": True, "unavailable": None, "age": "day-granular, at least a day late"}
    assert [a["appName"] for a in data["appsWithoutPassword"]] == ["Deploy pipeline", "Old batch", "Reports"]
    assert data["servicePrincipals"] == 1


def test_the_table_has_the_column_and_says_the_reason_once() -> None:
    text = render(_inventory(SignInReport.refused(NO_AUDIT_LOG)), "table")
    header = text.splitlines()[0]
    assert "Last sign-in" in header and " On " in header
    assert text.count(NO_AUDIT_LOG) == 1, "the reason is said once per inventory, not per row"
    assert "last sign-in: unknown (no AuditLog.Read.All)" in text
    assert "no password left: Deploy pipeline" in text
    federated = next(line for line in text.splitlines() if KEY_FED in line)
    assert "never" in federated and "federated" in federated
    sp_line = next(line for line in text.splitlines() if KEY_A in line)
    assert " sp " in sp_line and "unknown" in sp_line
    # Each header stands over its own cells.
    on, last = header.index(" On ") + 1, header.index("Last sign-in")
    assert sp_line[on : on + 2] == "sp" and sp_line[last : last + 7] == "unknown"


def test_the_table_says_the_reports_age_once_when_readable() -> None:
    text = render(_inventory(SignInReport({KEY_A: NOW - 3 * DAY})), "table")
    assert text.count("at least a day late") == 1
    assert "2025-01-28" in next(line for line in text.splitlines() if KEY_A in line)


def test_csv_has_the_new_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_inventory(SignInReport({})), "csv"))))
    by_key = {r["keyId"]: r for r in rows}
    assert by_key[KEY_CERT]["thumbprint"] == THUMBPRINT and by_key[KEY_CERT]["noPasswordLeft"] == "true"
    assert by_key[KEY_A]["credentialObject"] == "servicePrincipal" and by_key[KEY_A]["lastSignIn"] == "never"
    assert by_key[KEY_FED]["subject"] == "repo:contoso/app:ref:main"


def test_html_has_the_column_the_marks_and_the_reason_once() -> None:
    page = render(_inventory(SignInReport.refused(NO_PREMIUM)), "html")
    assert ">Last sign-in<" in page and page.count(NO_PREMIUM) == 1
    assert "password on the service principal" in page
    assert f"thumbprint {THUMBPRINT}" in page and "subject repo:contoso/app:ref:main" in page
    assert page.count('class="badge nopw"') == 3  # one row each: Reports, Deploy pipeline, Old batch
    assert "No password left (secrets cannot sign in): Deploy pipeline" in page


def test_no_format_shows_a_secret_value_pasted_into_a_credential() -> None:
    # A human pasted a value where a name belongs: every format still scrubs it (defence in depth).
    value = Sensitive(SECRET_VALUE)
    registry.register(value)
    apps, principals, secrets = _sources()
    leaky = ListedApplication(
        apps[2].application,
        federated=(FederatedCredential(KEY_FED, SECRET_VALUE, "https://issuer", f"sub:{SECRET_VALUE}"),),
    )
    rows = classify([leaky], secrets, NOW, service_principals=principals, sign_ins=SignInReport({}))
    inventory = Inventory(generated=NOW, rows=tuple(rows), applications=1, vault_secrets=len(secrets))
    for fmt in ("table", "json", "csv", "html"):
        assert SECRET_VALUE not in render(inventory, fmt), fmt


def test_a_certificate_on_the_service_principal_says_so() -> None:
    apps, principals, secrets = _sources()
    sp = ListedServicePrincipal(
        principals[0].principal,
        certificates=(CertificateCredential(KEY_CERT, "CN=sp", NOW, NOW + 90 * DAY, THUMBPRINT),),
    )
    rows = {r.key_id: r for r in classify(apps[:1], secrets, NOW, service_principals=[sp])}
    row = rows[KEY_CERT]
    assert (row.kind, row.credential_object, row.thumbprint) == ("certificate", "servicePrincipal", THUMBPRINT)


# --------------------------------------------------------------------------------------------------
# Collection: every source read is one progress step, whatever fails


class _Settings:
    sweep_concurrency = 2


class _Catalog:
    """The reads `read_sources` makes, answering from memory; the service principals are refused."""

    def __init__(self) -> None:
        self.expanded: list[bool] = []

    async def list_applications(
        self, *, page_size: int = 100, expand_federated: bool = False
    ) -> list[ListedApplication]:
        self.expanded.append(expand_federated)
        return _sources()[0]

    async def list_service_principals(self, *, page_size: int = 100) -> list[ListedServicePrincipal]:
        from rotation.domain.errors import PermissionDeniedError

        raise PermissionDeniedError("Microsoft Graph", "Application.Read.All", action="list service principals")

    async def sign_in_report(self) -> SignInReport:
        return SignInReport.refused(NO_AUDIT_LOG)


class _Vault:
    async def list_secrets(self) -> list[SecretVersion]:
        return _sources()[2]


class _Runtime:
    def __init__(self) -> None:
        self.settings = _Settings()
        self.directory = _Catalog()
        self.vaults = {"kv": _Vault(), "kv2": _Vault()}
        self.certificate_vaults: dict[str, Any] = {}  # ROTATION_CERTIFICATES off


async def test_every_source_read_is_one_progress_step() -> None:
    from typing import cast

    from rotation.runtime import Runtime
    from rotation.tools.inventory.collect import read_sources, source_count

    runtime = _Runtime()
    steps: list[str] = []
    sources = await read_sources(cast(Runtime, runtime), step=steps.append, details=True)
    assert len(steps) == source_count(2, details=True) == 5, steps
    assert runtime.directory.expanded == [True], "federated credentials come with the listing"
    assert sources.sign_ins is not None and sources.sign_ins.unavailable == NO_AUDIT_LOG
    assert any("service principals could not be listed" in w for w in sources.warnings)
