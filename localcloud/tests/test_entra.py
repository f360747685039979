"""Entra ID and managed identity in the local cloud, through the real azure-identity credentials.

Each row of the wire facts' token table is pinned here: status, `error`, code, message start, the
seven body keys and the `\\r\\nTrace ID…` suffix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

import localcloud
from localcloud.cloud import LocalCloud, ManagedIdentity

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SEVEN_KEYS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}


def _app_with_password(cloud: LocalCloud, **password: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    app = cloud.admin("POST", "/applications", {"displayName": "svc-entra-test"})
    credential = cloud.admin("POST", f"/applications/{app['id']}/passwords", password)
    return app, credential


def _raw_token(cloud: LocalCloud, tenant: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{cloud.authority}/{tenant}/oauth2/v2.0/token",
        data={
            "client_id": client_id,
            "client_secret": secret,
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
        },
        verify=cloud.ca_bundle,
        timeout=10,
    )


def _sync_credential(cloud: LocalCloud, tenant: str, client_id: str, secret: str) -> ClientSecretCredential:
    # The authority is not a known Azure host, so MSAL's instance discovery (which would go to
    # login.microsoftonline.com) is off, as any client must for a loopback authority.
    return ClientSecretCredential(tenant, client_id, secret, authority=cloud.authority, disable_instance_discovery=True)


def test_sync_and_aio_credentials_get_tokens(cloud: LocalCloud) -> None:
    app, credential = _app_with_password(cloud)
    sync = _sync_credential(cloud, cloud.tenant_id, app["appId"], credential["secretText"])
    assert sync.get_token(GRAPH_SCOPE).token

    async def aio() -> str:
        async with AsyncClientSecretCredential(
            cloud.tenant_id, app["appId"], credential["secretText"], authority=cloud.authority
        ) as cred:
            return (await cred.get_token(GRAPH_SCOPE)).token

    import asyncio

    assert asyncio.run(aio())


def test_success_body_and_headers(cloud: LocalCloud) -> None:
    app, credential = _app_with_password(cloud)
    response = _raw_token(cloud, cloud.tenant_id, app["appId"], credential["secretText"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["x-ms-request-id"]


@pytest.mark.parametrize(
    ("case", "status", "error", "code", "start"),
    [
        ("wrong-secret", 401, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided."),
        ("key-id", 401, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided."),
        ("expired", 401, "invalid_client", 7000222, "AADSTS7000222: The provided client secret keys for app"),
        ("unknown-app", 400, "unauthorized_client", 700016, "AADSTS700016: Application with identifier"),
        ("malformed-tenant", 400, "invalid_request", 900023, "AADSTS900023: Specified tenant identifier"),
        ("unknown-tenant", 400, "invalid_request", 90002, "AADSTS90002: Tenant"),
    ],
)
def test_error_rows_of_the_wire_facts(
    cloud: LocalCloud, case: str, status: int, error: str, code: int, start: str
) -> None:
    if case == "expired":
        app, credential = _app_with_password(
            cloud, startDateTime="2020-01-01T00:00:00Z", endDateTime="2020-06-01T00:00:00Z"
        )
    else:
        app, credential = _app_with_password(cloud)
    tenant, client_id, secret = cloud.tenant_id, app["appId"], credential["secretText"]
    if case == "wrong-secret":
        secret = secret[:-1] + ("x" if secret[-1] != "x" else "y")
    elif case == "key-id":
        secret = credential["keyId"]  # the classic mistake: the secret ID instead of the value
    elif case == "unknown-app":
        client_id = "11111111-2222-3333-4444-555555555555"
    elif case == "malformed-tenant":
        tenant = "not a tenant!"
    elif case == "unknown-tenant":
        tenant = "99999999-9999-9999-9999-999999999999"
    response = _raw_token(cloud, tenant, client_id, secret)
    assert response.status_code == status
    body = response.json()
    assert set(body) == SEVEN_KEYS
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(start)
    assert "\r\nTrace ID: " in body["error_description"]
    assert "\r\nCorrelation ID: " in body["error_description"]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert len(body["timestamp"]) == len("2026-11-26 23:16:15Z") and body["timestamp"].endswith("Z")
    if code in (7000215, 7000222, 700016):
        assert client_id in body["error_description"]


def test_sync_and_aio_error_forms_carry_the_code(cloud: LocalCloud) -> None:
    app, _ = _app_with_password(cloud)
    sync = _sync_credential(cloud, cloud.tenant_id, app["appId"], "wrong-value-0000000000000000000000000000")
    with pytest.raises(ClientAuthenticationError) as sync_error:
        sync.get_token(GRAPH_SCOPE)
    assert "AADSTS7000215" in str(sync_error.value)

    async def aio() -> ClientAuthenticationError:
        async with AsyncClientSecretCredential(
            cloud.tenant_id, app["appId"], "wrong-value", authority=cloud.authority
        ) as cred:
            try:
                await cred.get_token(GRAPH_SCOPE)
            except ClientAuthenticationError as exc:
                return exc
        raise AssertionError("no error")

    import asyncio

    aio_error = asyncio.run(aio())
    assert "(invalid_client) AADSTS7000215" in str(aio_error)


def test_every_password_expired_is_7000222_even_for_a_wrong_secret(cloud: LocalCloud) -> None:
    app, _ = _app_with_password(cloud, startDateTime="2020-01-01T00:00:00Z", endDateTime="2020-02-01T00:00:00Z")
    body = _raw_token(cloud, cloud.tenant_id, app["appId"], "nothing-like-it").json()
    assert body["error_codes"] == [7000222]


def test_domain_name_names_the_tenant(cloud: LocalCloud) -> None:
    app, credential = _app_with_password(cloud)
    domain = cloud.admin("GET", "/state")["tenants"][0]["defaultDomain"]
    assert _raw_token(cloud, domain, app["appId"], credential["secretText"]).status_code == 200


def test_app_of_another_tenant_is_unknown_here(cloud: LocalCloud) -> None:
    other = cloud.admin("POST", "/tenants", {})
    app = cloud.admin("POST", "/applications", {"displayName": "elsewhere", "tenantId": other["tenantId"]})
    secret = cloud.admin("POST", f"/applications/{app['id']}/passwords", {})["secretText"]
    assert _raw_token(cloud, cloud.tenant_id, app["appId"], secret).json()["error_codes"] == [700016]
    assert _raw_token(cloud, other["tenantId"], app["appId"], secret).status_code == 200


def test_openid_configuration_and_instance_discovery(cloud: LocalCloud) -> None:
    config = requests.get(
        f"{cloud.authority}/{cloud.tenant_id}/v2.0/.well-known/openid-configuration",
        verify=cloud.ca_bundle,
        timeout=10,
    ).json()
    assert config["token_endpoint"] == f"{cloud.authority}/{cloud.tenant_id}/oauth2/v2.0/token"
    assert {"authorization_endpoint", "issuer"} <= set(config)
    unknown = requests.get(
        f"{cloud.authority}/99999999-9999-9999-9999-999999999999/v2.0/.well-known/openid-configuration",
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_tenant"
    discovery = requests.get(
        f"{cloud.authority}/common/discovery/instance?api-version=1.1&authorization_endpoint="
        f"{cloud.authority}/common/oauth2/authorize",
        verify=cloud.ca_bundle,
        timeout=10,
    ).json()
    assert discovery["tenant_discovery_endpoint"].endswith("/v2.0/.well-known/openid-configuration")


def test_propagation_one_success_does_not_prove_the_next(private_cloud: Any) -> None:
    local: LocalCloud = private_cloud(seed=7)
    local.admin("PUT", "/config", {"propagationSeconds": 3600, "replicas": 3})
    app = local.admin("POST", "/applications", {"displayName": "propagating"})
    # One replica knows the new secret already, the other two only in an hour.
    added = local.admin(
        "POST", f"/applications/{app['id']}/passwords", {"displayName": "new", "replicaDelaysSeconds": [-1, 3600, 3600]}
    )
    secret = added["secretText"]
    codes = [_raw_token(local, local.tenant_id, app["appId"], secret).status_code for _ in range(30)]
    assert 200 in codes and 401 in codes  # some replicas know it, others do not yet
    local.admin("POST", "/clock", {"advanceSeconds": 3601})
    assert all(_raw_token(local, local.tenant_id, app["appId"], secret).status_code == 200 for _ in range(10))


def test_managed_identity_sync_and_aio(cloud: LocalCloud) -> None:
    token = ManagedIdentityCredential().get_token("https://vault.azure.net/.default")
    assert token.token and token.expires_on > 0

    async def aio() -> str:
        async with AsyncManagedIdentityCredential() as cred:
            return str((await cred.get_token(GRAPH_SCOPE)).token)

    import asyncio

    assert asyncio.run(aio())
    log = cloud.admin("GET", "/requests?since=0")["requests"]
    assert any(r["service"] == "identity" and r["status"] == 200 for r in log)


@pytest.mark.parametrize("header", [None, "wrong"])
def test_managed_identity_refuses_missing_or_wrong_header(cloud: LocalCloud, header: str | None) -> None:
    headers = {"X-IDENTITY-HEADER": header} if header else {}
    response = requests.get(
        cloud.identity_endpoint,
        params={"resource": "https://vault.azure.net", "api-version": "2019-08-01"},
        headers=headers,
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 401


def test_managed_identity_answer_shape(cloud: LocalCloud, workload: ManagedIdentity) -> None:
    response = requests.get(
        cloud.identity_endpoint,
        params={"resource": "https://vault.azure.net", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["expires_on"].isdigit() and body["resource"] == "https://vault.azure.net"
    assert body["client_id"] == workload.app_id  # no id named: the system-assigned identity


def test_injected_entra_fault_and_request_log(cloud: LocalCloud) -> None:
    app, credential = _app_with_password(cloud)
    since = cloud.admin("GET", "/requests?since=0")["next"]
    cloud.admin("POST", "/faults", {"service": "entra", "status": 503, "count": 1, "pathRegex": "/token$"})
    first = _raw_token(cloud, cloud.tenant_id, app["appId"], credential["secretText"])
    second = _raw_token(cloud, cloud.tenant_id, app["appId"], credential["secretText"])
    assert (first.status_code, second.status_code) == (503, 200)
    assert set(first.json()) == SEVEN_KEYS
    log = cloud.admin("GET", f"/requests?since={since}")["requests"]
    assert [(r["service"], r["status"], r["caller"]) for r in log] == [
        ("entra", 503, None),
        ("entra", 200, app["appId"]),
    ]


def test_issued_secrets_lists_every_value(cloud: LocalCloud) -> None:
    _, credential = _app_with_password(cloud)
    assert credential["secretText"] in cloud.admin("GET", "/issued-secrets")["secrets"]


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        ("POST", "/applications", {}, "'displayName' is required"),
        ("POST", "/applications", {"displayName": "x", "colour": "red"}, "Unknown field(s) colour"),
        ("POST", "/applications", {"displayName": 5}, "wrong type"),
        ("POST", "/applications", {"displayName": "x", "signInAudience": "Everyone"}, "signInAudience"),
        ("PUT", "/config", {"replicas": 0}, "'replicas' must be between"),
        ("PUT", "/config", {"propagationSeconds": True}, "wrong type"),
        ("POST", "/faults", {"service": "dns", "status": 500}, "'service' must be one of"),
        ("POST", "/faults", {"service": "graph"}, "at least one of"),
        ("POST", "/faults", {"service": "graph", "status": 500, "pathRegex": "("}, "not a valid regular"),
        ("POST", "/clock", {"advanceSeconds": -5}, "never goes back"),
        ("POST", "/policies", {"passwordMaxLifetime": "90 days"}, "ISO 8601 duration"),
        ("POST", "/vaults", {"name": "no_underscores_allowed"}, "vault"),
        ("GET", "/requests?since=abc", None, "'since' must be"),
    ],
)
def test_bad_admin_input_is_refused_and_changes_nothing(
    cloud: LocalCloud, method: str, path: str, body: Any, fragment: str
) -> None:
    before = cloud.admin("GET", "/state")
    response = requests.request(method, cloud.admin_url + path, json=body, verify=cloud.ca_bundle, timeout=10)
    assert response.status_code == 400, response.text
    assert fragment.lower() in response.json()["error"]["message"].lower()
    after = cloud.admin("GET", "/state")
    before.pop("now"), after.pop("now")
    assert before == after


def test_serve_prints_one_json_line_with_the_environment(tmp_path: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "serve", "--vault", "kv-a", "--vault", "kv-b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Wherever the package is imported from here (a checkout or site-packages), the child finds it.
        env={**os.environ, "PYTHONPATH": str(Path(localcloud.__file__).resolve().parents[1])},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        described = json.loads(line)
        assert set(described) == {
            "authority",
            "graph",
            "tenantId",
            "managedIdentity",
            "managedIdentities",
            "vaults",
            "caBundle",
            "admin",
            "env",
        }
        assert described["managedIdentities"] == []  # the cloud knows no client until one is made
        assert set(described["vaults"]) == {"kv-a", "kv-b"}
        assert set(described["env"]) == {
            "AZURE_AUTHORITY_HOST",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
        }
        # A second process trusts it through the printed bundle alone, and makes its own identity.
        admin = described["admin"]
        created = requests.post(
            f"{admin}/managed-identities",
            json={"displayName": "app", "systemAssigned": True},
            verify=described["caBundle"],
            timeout=10,
        )
        assert created.status_code == 200, created.text
        identity = requests.get(
            described["managedIdentity"]["endpoint"],
            params={"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"},
            headers={"X-IDENTITY-HEADER": described["managedIdentity"]["header"]},
            verify=described["caBundle"],
            timeout=10,
        )
        assert identity.status_code == 200
        assert identity.json()["client_id"] == created.json()["appId"]
    finally:
        process.terminate()
        process.wait(timeout=10)
