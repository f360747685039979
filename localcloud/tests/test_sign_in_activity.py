"""The sign-in log the token endpoint keeps, and Graph beta's credential sign-in activity report built
from it: permission, license, reporting delay and day granularity, filters and paging.

Sign-ins are made with the real azure-identity credentials (sync and aio) and with plain HTTPS; the
report is read with plain HTTPS (msgraph-sdk has no beta surface) and through msgraph-sdk's own
request adapter, which is how a client of the v1.0 SDK reaches a beta URL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_service_client import GraphServiceClient

from localcloud.admin import AdminError
from localcloud.cloud import LocalCloud
from localcloud.errors import GRAPH_JSON
from localcloud.state import Config
from localcloud.tests.test_graph import (
    GRAPH_SCOPE,
    VAULT_SCOPE,
    Identity,
    assert_graph_error,
    bearer,
    make_identity,
    trust,
)

AUDIT = "AuditLog.Read.All"
REPORT = "/beta/reports/appCredentialSignInActivities"
DAY = 86400
ROW_KEYS = {
    "id",
    "appId",
    "appObjectId",
    "createdDateTime",
    "credentialOrigin",
    "expirationDateTime",
    "keyId",
    "keyType",
    "keyUsage",
    "resourceId",
    "servicePrincipalObjectId",
    "signInActivity",
}


def _app_with_secrets(cloud: LocalCloud, count: int = 2) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    app: dict[str, Any] = cloud.admin("POST", "/applications", {"displayName": "consumer-app"})
    secrets = [
        cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": f"secret {n}"})
        for n in range(count)
    ]
    return app, secrets


def _sign_in(
    cloud: LocalCloud, app_id: str, secret: str, scope: str = GRAPH_SCOPE, *, tenant_id: str | None = None
) -> httpx.Response:
    return httpx.post(
        f"{cloud.authority}/{tenant_id or cloud.tenant_id}/oauth2/v2.0/token",
        data={"client_id": app_id, "client_secret": secret, "grant_type": "client_credentials", "scope": scope},
        verify=trust(cloud),
    )


def _report(cloud: LocalCloud, token: str, path: str = REPORT, **params: str) -> httpx.Response:
    return httpx.get(f"{cloud.base_url}{path}", params=params, headers=bearer(token), verify=trust(cloud))


def _rows_of(cloud: LocalCloud, token: str, app_id: str) -> list[dict[str, Any]]:
    """The app's rows (readers sign in too: their own credentials are in the report as well)."""
    response = _report(cloud, token, **{"$filter": f"appId eq '{app_id}'"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["value"]
    return rows


def _token_of(cloud: LocalCloud, identity: Identity, scope: str = GRAPH_SCOPE) -> str:
    response = _sign_in(cloud, identity.app_id, identity.secret, scope, tenant_id=identity.tenant_id)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _reader_token(cloud: LocalCloud, *roles: str) -> str:
    return _token_of(cloud, make_identity(cloud, *roles))


@pytest.fixture
def quick(private_cloud: Callable[..., LocalCloud]) -> LocalCloud:
    """A cloud of the test's own (its clock moves), with a one-hour reporting delay."""
    local = private_cloud(vaults=())
    local.admin("PUT", "/config", {"signInReportDelaySeconds": 3600})
    return local


# --- the sign-in log -----------------------------------------------------------------------------
def test_every_successful_sign_in_is_logged_with_the_credential_used(quick: LocalCloud) -> None:
    app, (first, second) = _app_with_secrets(quick)
    before = quick.now()
    sdk = SyncClientSecretCredential(
        quick.tenant_id,
        app["appId"],
        first["secretText"],
        authority=quick.authority,
        disable_instance_discovery=True,
    )
    try:
        sdk.get_token(GRAPH_SCOPE)
    finally:
        sdk.close()
    raw = _sign_in(quick, app["appId"], second["secretText"], VAULT_SCOPE)
    assert raw.status_code == 200
    # Refused sign-ins (a wrong secret, the secret's id sent instead of its value) are not logged.
    assert _sign_in(quick, app["appId"], "not-the-secret").status_code == 401
    assert _sign_in(quick, app["appId"], first["keyId"]).status_code == 401

    records = quick.sign_ins(app["appId"])
    assert [r.key_id for r in records] == [first["keyId"], second["keyId"]]
    assert all(before <= r.time <= quick.now() for r in records)
    assert records[1].request_id == raw.headers["x-ms-request-id"]
    assert [r.resource_id for r in records] == [
        "00000003-0000-0000-c000-000000000000",  # Microsoft Graph
        "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",  # Azure Key Vault
    ]
    assert {r.key_type for r in records} == {"clientSecret"}
    logged = quick.admin("GET", f"/sign-ins?appId={app['appId']}")
    assert [s["keyId"] for s in logged["signIns"]] == [first["keyId"], second["keyId"]]
    assert set(logged["signIns"][0]) == {
        "requestId",
        "time",
        "tenantId",
        "appId",
        "keyId",
        "keyType",
        "resourceId",
        "credentialOrigin",
    }
    assert logged["signIns"][0]["credentialOrigin"] == "application"


def test_sign_ins_follow_the_world_clock(quick: LocalCloud) -> None:
    app, (secret, _) = _app_with_secrets(quick)
    quick.advance_clock(5 * DAY)
    assert _sign_in(quick, app["appId"], secret["secretText"]).status_code == 200
    [record] = quick.sign_ins(app["appId"])
    assert record.time - datetime.now(UTC) > timedelta(days=4)


# --- the report ----------------------------------------------------------------------------------
def test_a_sign_in_shows_once_older_than_the_delay_truncated_to_its_day(quick: LocalCloud) -> None:
    app, (used, unused) = _app_with_secrets(quick)
    token = _reader_token(quick, AUDIT)
    response = _sign_in(quick, app["appId"], used["secretText"])
    signed_in_at = quick.now()
    assert _rows_of(quick, token, app["appId"]) == []  # not real time

    quick.advance_clock(3500)
    assert _rows_of(quick, token, app["appId"]) == []
    quick.advance_clock(200)  # now older than the hour
    response_page = _report(quick, token, **{"$filter": f"appId eq '{app['appId']}'"})
    assert response_page.status_code == 200
    assert response_page.headers["content-type"] == GRAPH_JSON
    body = response_page.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/beta/$metadata#reports/appCredentialSignInActivities"
    [row] = body["value"]  # the never-used secret has no row
    assert set(row) == ROW_KEYS
    day = signed_in_at.astimezone(UTC).strftime("%Y-%m-%dT00:00:00Z")
    assert row["signInActivity"] == {
        "lastSignInDateTime": day,
        "lastSignInRequestId": response.headers["x-ms-request-id"],
    }
    [password] = [p for p in quick.passwords(app["appId"]) if p.key_id == used["keyId"]]
    state = next(a for a in quick.admin("GET", "/state")["tenants"][0]["applications"] if a["appId"] == app["appId"])
    assert row == {
        "id": base64.b64encode(f"{used['keyId']}|application".encode()).decode(),
        "appId": app["appId"],
        "appObjectId": app["id"],
        "createdDateTime": used["startDateTime"],
        "credentialOrigin": "application",
        "expirationDateTime": used["endDateTime"],
        "keyId": password.key_id,
        "keyType": "clientSecret",
        "keyUsage": "sign",
        "resourceId": "00000003-0000-0000-c000-000000000000",
        "servicePrincipalObjectId": state["servicePrincipalId"],
        "signInActivity": row["signInActivity"],
    }
    assert unused["keyId"] not in {r["keyId"] for r in body["value"]}


def test_the_latest_reported_sign_in_counts_and_a_removed_credential_stays(quick: LocalCloud) -> None:
    app, (secret, _) = _app_with_secrets(quick)
    token = _reader_token(quick, AUDIT)
    first = _sign_in(quick, app["appId"], secret["secretText"])
    quick.advance_clock(2 * DAY)
    second = _sign_in(quick, app["appId"], secret["secretText"])  # still inside the delay
    [row] = _rows_of(quick, token, app["appId"])
    assert row["signInActivity"]["lastSignInRequestId"] == first.headers["x-ms-request-id"]
    quick.advance_clock(3601)
    quick.admin("DELETE", f"/applications/{app['id']}/passwords/{secret['keyId']}")
    [row] = _rows_of(quick, token, app["appId"])
    assert row["signInActivity"]["lastSignInRequestId"] == second.headers["x-ms-request-id"]
    assert row["signInActivity"]["lastSignInDateTime"].endswith("T00:00:00Z")


def test_filters_get_by_id_and_paging(quick: LocalCloud) -> None:
    app, secrets = _app_with_secrets(quick, 3)
    other, (other_secret,) = _app_with_secrets(quick, 1)
    for secret in secrets:
        assert _sign_in(quick, app["appId"], secret["secretText"]).status_code == 200
    assert _sign_in(quick, other["appId"], other_secret["secretText"]).status_code == 200
    quick.advance_clock(3601)
    token = _reader_token(quick, AUDIT)

    everything = _report(quick, token).json()["value"]
    assert {app["appId"], other["appId"]} <= {r["appId"] for r in everything}
    mine = _rows_of(quick, token, app["appId"])
    assert {r["keyId"] for r in mine} == {s["keyId"] for s in secrets}
    [one] = _report(quick, token, **{"$filter": f"keyId eq '{other_secret['keyId']}'"}).json()["value"]
    assert one["appId"] == other["appId"]

    got = _report(quick, token, f"{REPORT}/{one['id']}")
    assert got.status_code == 200
    assert got.json() == {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#reports/appCredentialSignInActivities/$entity",
        **one,
    }
    assert_graph_error(_report(quick, token, f"{REPORT}/bm90LWEta2V5"), 404, "Request_ResourceNotFound")

    # Paging: $top per page, an absolute @odata.nextLink that keeps the filter.
    seen: list[str] = []
    page = _report(quick, token, **{"$filter": f"appId eq '{app['appId']}'", "$top": "2"}).json()
    while True:
        seen.extend(r["keyId"] for r in page["value"])
        link = page.get("@odata.nextLink")
        if link is None:
            break
        assert link.startswith(f"{quick.base_url}{REPORT}?") and "$filter=appId%20eq%20'" in link
        page = httpx.get(link, headers=bearer(token), verify=trust(quick)).json()
    assert sorted(seen) == sorted(s["keyId"] for s in secrets)

    bad = _report(quick, token, **{"$filter": "appDisplayName eq 'x'"})
    assert_graph_error(bad, 400, "Request_UnsupportedQuery")
    assert_graph_error(_report(quick, token, **{"$orderby": "keyId"}), 400, "Request_BadRequest")


def test_needs_audit_log_read_all_and_a_premium_tenant(quick: LocalCloud) -> None:
    app, (secret, _) = _app_with_secrets(quick)
    _sign_in(quick, app["appId"], secret["secretText"])
    quick.advance_clock(3601)

    no_token = httpx.get(f"{quick.base_url}{REPORT}", verify=trust(quick))
    assert_graph_error(no_token, 401, "InvalidAuthenticationToken")
    vault_token = _token_of(quick, make_identity(quick, AUDIT), VAULT_SCOPE)
    assert_graph_error(_report(quick, vault_token), 401, "InvalidAuthenticationToken")
    # The app permissions that read every app do not read the sign-in reports.
    apps_reader = _reader_token(quick, "Application.Read.All", "Application.ReadWrite.OwnedBy")
    denied = assert_graph_error(_report(quick, apps_reader), 403, "Authorization_RequestDenied")
    assert denied["message"] == "Insufficient privileges to complete the operation."

    auditor = _reader_token(quick, AUDIT)
    quick.set_license("Free")
    free = assert_graph_error(_report(quick, auditor), 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
    assert free["message"] == "Neither tenant is B2C or tenant doesn't have premium license"
    assert quick.admin("GET", "/state")["tenants"][0]["license"] == "Free"
    quick.set_license("P2")
    assert len(_rows_of(quick, auditor, app["appId"])) == 1
    with pytest.raises(AdminError) as bad:
        quick.set_license("E5")
    assert bad.value.status == 400


def test_each_tenant_sees_only_its_own_sign_ins(quick: LocalCloud) -> None:
    app, (secret, _) = _app_with_secrets(quick)
    _sign_in(quick, app["appId"], secret["secretText"])
    quick.advance_clock(3601)
    elsewhere = quick.admin("POST", "/tenants", {})["tenantId"]
    auditor = _token_of(quick, make_identity(quick, AUDIT, tenant_id=elsewhere))
    assert _rows_of(quick, auditor, app["appId"]) == []


def test_the_delay_is_admin_config(quick: LocalCloud) -> None:
    assert quick.admin("GET", "/state")["config"]["signInReportDelaySeconds"] == 3600
    with pytest.raises(AdminError):
        quick.admin("PUT", "/config", {"signInReportDelaySeconds": -1})
    assert Config().sign_in_report_delay_seconds == DAY  # a day unless a test says otherwise


# --- through the SDKs ----------------------------------------------------------------------------
async def test_msgraph_request_adapter_reads_the_beta_report(quick: LocalCloud) -> None:
    """A v1.0 msgraph-sdk client reaches the beta report through its own request adapter (the
    authentication, headers and error mapping the product would use), and an aio azure-identity
    credential's sign-in is what the report then shows."""
    app, (secret, _) = _app_with_secrets(quick)
    async with ClientSecretCredential(
        quick.tenant_id, app["appId"], secret["secretText"], authority=quick.authority
    ) as consumer:
        await consumer.get_token(GRAPH_SCOPE)
    quick.advance_clock(3601)
    auditor = make_identity(quick, AUDIT)
    stranger = make_identity(quick, "Application.Read.All")

    async def read(identity: Identity) -> bytes | None:
        async with ClientSecretCredential(
            identity.tenant_id, identity.app_id, identity.secret, authority=quick.authority
        ) as credential:
            client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
            info = RequestInformation()
            info.http_method = Method.GET
            info.url = f"{quick.base_url}{REPORT}?$filter=appId eq '{app['appId']}'"
            info.headers.try_add("Accept", "application/json")
            result: bytes | None = await client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
            return result

    raw = await read(auditor)
    assert raw is not None
    [row] = json.loads(raw)["value"]
    assert row["keyId"] == secret["keyId"]
    with pytest.raises(ODataError) as denied:
        await read(stranger)
    assert denied.value.response_status_code == 403
    assert denied.value.error is not None and denied.value.error.code == "Authorization_RequestDenied"
