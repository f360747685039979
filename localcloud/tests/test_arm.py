"""Resource Manager's sign-in surface and the token endpoint's resources, as the Azure CLI and the
SDKs meet them: Resource Manager audiences, the local cloud's own Graph audience, AADSTS500011 for a
resource nobody knows, client authentication decided before the scope, and `GET /subscriptions`,
`GET /tenants` and `GET /metadata/endpoints` with Resource Manager's envelopes and errors.

Through raw HTTPS, azure-identity's credentials and MSAL (what the Azure CLI builds on).
"""

from __future__ import annotations

from typing import Any

import jwt
import msal  # type: ignore[import-untyped]
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential

from localcloud.cloud import LocalCloud, ManagedIdentity

CLI_ARM_SCOPE = "https://management.core.windows.net//.default"  # what `az login` asks for
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SEVEN_KEYS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}
SUBSCRIPTIONS_API = "2022-12-01"  # the Azure CLI's


def _identity(cloud: LocalCloud, *roles: str) -> dict[str, Any]:
    body: dict[str, Any] = cloud.admin(
        "POST", "/identities", {"displayName": "arm caller", "graphAppRoles": list(roles)}
    )
    return body


def _token_response(
    cloud: LocalCloud, client_id: str, secret: str, scope: str | None, tenant: str = ""
) -> requests.Response:
    data = {"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return requests.post(
        f"{cloud.authority}/{tenant or cloud.tenant_id}/oauth2/v2.0/token",
        data=data,
        verify=cloud.ca_bundle,
        timeout=10,
    )


def _token(cloud: LocalCloud, identity: dict[str, Any], scope: str) -> str:
    response = _token_response(cloud, identity["appId"], identity["clientSecret"], scope)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _arm(
    cloud: LocalCloud, path: str, token: str | None, api_version: str | None = SUBSCRIPTIONS_API
) -> requests.Response:
    params = {"api-version": api_version} if api_version else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{cloud.base_url}{path}", params=params, headers=headers, verify=cloud.ca_bundle, timeout=10)


def _arm_error(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["x-ms-request-id"] and response.headers["x-ms-correlation-request-id"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


# --- the token endpoint's resources ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        (CLI_ARM_SCOPE, "https://management.core.windows.net/"),
        (ARM_SCOPE, "https://management.azure.com"),
        ("https://management.azure.com//.default", "https://management.azure.com/"),
    ],
)
def test_resource_manager_audiences_get_tokens(cloud: LocalCloud, scope: str, audience: str) -> None:
    identity = _identity(cloud, "Application.Read.All")
    claims = _claims(_token(cloud, identity, scope))
    assert claims["aud"] == audience
    assert "roles" not in claims  # Graph app roles travel in Graph tokens only
    assert _arm(cloud, "/subscriptions", _token(cloud, identity, scope)).status_code == 200


def test_the_clouds_own_origin_is_a_graph_audience(cloud: LocalCloud) -> None:
    """What `az ad …` asks for once the cloud is registered with `--endpoint-microsoft-graph-resource-id
    {origin}/`: a Graph token, with the caller's Graph roles, that Graph accepts."""
    reader = _identity(cloud, "Application.Read.All")
    token = _token(cloud, reader, f"{cloud.base_url}//.default")
    claims = _claims(token)
    assert claims["aud"] == cloud.base_url and claims["roles"] == ["Application.Read.All"]
    listed = requests.get(
        f"{cloud.graph_url}/applications",
        params={"$top": "1"},
        headers={"Authorization": f"Bearer {token}"},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    # The same origin without the trailing slash is the same resource.
    assert _claims(_token(cloud, reader, f"{cloud.base_url}/.default"))["aud"] == cloud.base_url


def test_a_graph_token_does_not_open_resource_manager_nor_the_reverse(cloud: LocalCloud) -> None:
    reader = _identity(cloud, "Application.Read.All")
    message = _arm_error(
        _arm(cloud, "/subscriptions", _token(cloud, reader, GRAPH_SCOPE)), 401, "InvalidAuthenticationTokenAudience"
    )
    assert "https://graph.microsoft.com" in message and "https://management.core.windows.net/" in message
    graph = requests.get(
        f"{cloud.graph_url}/applications",
        headers={"Authorization": f"Bearer {_token(cloud, reader, CLI_ARM_SCOPE)}"},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert graph.status_code == 401 and graph.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_an_unknown_resource_is_aadsts500011(cloud: LocalCloud) -> None:
    identity = _identity(cloud)
    response = _token_response(
        cloud, identity["appId"], identity["clientSecret"], "https://nobody.example.com/.default"
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == SEVEN_KEYS
    assert (body["error"], body["error_codes"]) == ("invalid_resource", [500011])
    assert body["error_description"].startswith(
        f"AADSTS500011: The resource principal named https://nobody.example.com was not found in the tenant "
        f"named {cloud.tenant_id}."
    )
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=500011"


def test_scope_errors_come_after_a_good_secret(cloud: LocalCloud) -> None:
    identity = _identity(cloud)
    missing = _token_response(cloud, identity["appId"], identity["clientSecret"], None).json()
    assert missing["error_codes"] == [900144] and "'scope'" in missing["error_description"]
    no_default = _token_response(
        cloud, identity["appId"], identity["clientSecret"], "https://graph.microsoft.com/User.Read"
    )
    assert no_default.status_code == 400 and no_default.json()["error_codes"] == [1002012]


SCOPES = [
    CLI_ARM_SCOPE,
    GRAPH_SCOPE,
    "https://nobody.example.com/.default",
    "https://graph.microsoft.com/User.Read",
    None,
]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("secret-id", 401, 7000215),
        ("expired", 401, 7000222),
        ("unknown-app", 400, 700016),
        ("unknown-tenant", 400, 90002),
        ("malformed-tenant", 400, 900023),
    ],
)
def test_client_authentication_decides_whatever_the_scope(
    cloud: LocalCloud, scope: str | None, case: str, status: int, code: int
) -> None:
    app = cloud.admin("POST", "/applications", {"displayName": "scope-independent"})
    dates = (
        {"startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2020-06-01T00:00:00Z"} if case == "expired" else {}
    )
    credential = cloud.admin("POST", f"/applications/{app['id']}/passwords", dates)
    client_id, secret, tenant = app["appId"], credential["secretText"], cloud.tenant_id
    if case == "secret-id":
        secret = credential["keyId"]
    elif case == "unknown-app":
        client_id = "11111111-2222-3333-4444-555555555555"
    elif case == "unknown-tenant":
        tenant = "99999999-9999-9999-9999-999999999999"
    elif case == "malformed-tenant":
        tenant = "not_a_tenant"
    response = _token_response(cloud, client_id, secret, scope, tenant=tenant)
    assert response.status_code == status
    assert response.json()["error_codes"] == [code]


def test_msal_and_azure_identity_get_resource_manager_tokens(cloud: LocalCloud) -> None:
    identity = _identity(cloud)
    app = msal.ConfidentialClientApplication(
        identity["appId"],
        client_credential=identity["clientSecret"],
        authority=f"{cloud.authority}/{cloud.tenant_id}",
        instance_discovery=False,
        verify=cloud.ca_bundle,
    )
    result = app.acquire_token_for_client(scopes=[CLI_ARM_SCOPE])
    assert "access_token" in result, result.get("error_description")
    assert _arm(cloud, "/tenants", result["access_token"]).status_code == 200
    credential = ClientSecretCredential(
        cloud.tenant_id,
        identity["appId"],
        identity["clientSecret"],
        authority=cloud.authority,
        disable_instance_discovery=True,
    )
    try:
        token = credential.get_token(ARM_SCOPE).token
        assert _arm(cloud, "/subscriptions", token).status_code == 200
        with pytest.raises(ClientAuthenticationError) as unknown:
            credential.get_token("https://nobody.example.com/.default")
        assert "AADSTS500011" in str(unknown.value)
    finally:
        credential.close()


def test_managed_identity_gets_resource_manager_tokens(cloud: LocalCloud, workload: ManagedIdentity) -> None:
    """`az login --identity` asks the identity endpoint for `https://management.core.windows.net/`."""
    response = requests.get(
        cloud.identity_endpoint,
        params={"resource": "https://management.core.windows.net/", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resource"] == "https://management.core.windows.net/"
    claims = _claims(body["access_token"])
    assert claims["aud"] == "https://management.core.windows.net/" and claims["oid"] == workload.sp_object_id
    assert _arm(cloud, "/tenants", body["access_token"]).json()["value"][0]["tenantId"] == cloud.tenant_id
    sdk = ManagedIdentityCredential().get_token(ARM_SCOPE)
    assert _arm(cloud, "/subscriptions", sdk.token).status_code == 200
    unknown = requests.get(
        cloud.identity_endpoint,
        params={"resource": "https://nobody.example.com", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert unknown.status_code == 400 and "AADSTS500011" in unknown.json()["message"]


# --- Resource Manager ------------------------------------------------------------------------------
def test_subscriptions_and_tenants_envelopes(cloud: LocalCloud) -> None:
    token = _token(cloud, _identity(cloud), CLI_ARM_SCOPE)
    subscriptions = _arm(cloud, "/subscriptions", token)
    assert subscriptions.status_code == 200
    assert subscriptions.headers["Content-Type"] == "application/json; charset=utf-8"
    assert subscriptions.json() == {"value": [], "count": {"type": "Total", "value": 0}}
    tenants = _arm(cloud, "/tenants", token).json()
    [tenant] = tenants["value"]
    domain = cloud.admin("GET", "/state")["tenants"][0]["defaultDomain"]
    assert tenant == {
        "id": f"/tenants/{cloud.tenant_id}",
        "tenantId": cloud.tenant_id,
        "countryCode": "US",
        "displayName": tenant["displayName"],
        "domains": [domain],
        "tenantCategory": "Home",
        "defaultDomain": domain,
        "tenantType": "AAD",
    }
    missing = _arm(cloud, "/subscriptions/00000000-0000-0000-0000-000000000000", token)
    assert "could not be found" in _arm_error(missing, 404, "SubscriptionNotFound")


def test_a_token_of_another_tenant_lists_that_tenant(cloud: LocalCloud) -> None:
    other = cloud.admin("POST", "/tenants", {})["tenantId"]
    identity = cloud.admin("POST", "/identities", {"displayName": "elsewhere", "tenantId": other})
    response = _token_response(cloud, identity["appId"], identity["clientSecret"], CLI_ARM_SCOPE, tenant=other)
    tenants = _arm(cloud, "/tenants", response.json()["access_token"]).json()["value"]
    assert [t["tenantId"] for t in tenants] == [other]


def test_resource_manager_refusals(cloud: LocalCloud) -> None:
    token = _token(cloud, _identity(cloud), CLI_ARM_SCOPE)
    anonymous = _arm(cloud, "/subscriptions", None)
    assert "'Authorization' header is missing" in _arm_error(anonymous, 401, "AuthenticationFailed")
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer authorization_uri="https://login.windows.net/"')
    _arm_error(_arm(cloud, "/subscriptions", "not-a-token"), 401, "InvalidAuthenticationToken")
    cloud.admin("POST", "/tokens/expire", {"token": token})
    _arm_error(_arm(cloud, "/subscriptions", token), 401, "ExpiredAuthenticationToken")
    fresh = _token(cloud, _identity(cloud), CLI_ARM_SCOPE)
    assert "(?api-version=)" in _arm_error(_arm(cloud, "/tenants", fresh, None), 400, "MissingApiVersionParameter")
    message = _arm_error(_arm(cloud, "/subscriptions", fresh, "2099-01-01"), 400, "InvalidApiVersionParameter")
    assert message.startswith("The api-version '2099-01-01' is invalid. The supported versions are '2022-12-01,")


def test_metadata_endpoints_describe_the_cloud_for_az_cloud_register(cloud: LocalCloud) -> None:
    # `az cloud register --endpoint-resource-manager {origin}/` asks with a doubled slash.
    response = requests.get(
        f"{cloud.base_url}//metadata/endpoints",
        params={"api-version": "2022-09-01"},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["authentication"]["loginEndpoint"] == cloud.authority
    assert body["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert body["resourceManager"] == f"{cloud.base_url}/"
    assert body["microsoftGraphResourceId"] == f"{cloud.base_url}/"
    assert body["suffixes"]["keyVaultDns"] == "vault.azure.net"
    unknown = requests.get(
        f"{cloud.base_url}/metadata/endpoints", params={"api-version": "1999-01-01"}, verify=cloud.ca_bundle, timeout=10
    )
    _arm_error(unknown, 400, "InvalidApiVersionParameter")


def test_resource_manager_in_the_request_log_and_faults(cloud: LocalCloud) -> None:
    token = _token(cloud, _identity(cloud), CLI_ARM_SCOPE)
    since = cloud.admin("GET", "/requests?since=0")["next"]
    cloud.admin("POST", "/faults", {"service": "arm", "status": 429, "count": 1, "pathRegex": "^/subscriptions"})
    throttled = _arm(cloud, "/subscriptions", token)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert _arm(cloud, "/subscriptions", token).status_code == 200
    log = cloud.admin("GET", f"/requests?since={since}")["requests"]
    assert [(r["service"], r["status"]) for r in log] == [("arm", 429), ("arm", 200)]
