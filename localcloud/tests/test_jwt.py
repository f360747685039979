"""Access tokens are RS256 JWTs with Entra's v2.0 claims, verifiable with the keys at the `jwks_uri`
the OpenID configuration names; APIs registered in the cloud get tokens whose `roles` are the app
roles assigned to the caller. Verified with PyJWT, fetched with the real azure-identity credentials."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
import requests
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from localcloud.admin import AdminError
from localcloud.cloud import LocalCloud, ManagedIdentity

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _get(cloud: LocalCloud, path: str) -> requests.Response:
    return requests.get(f"{cloud.authority}{path}", verify=cloud.ca_bundle, timeout=10)


def _signing_keys(cloud: LocalCloud) -> dict[str, Any]:
    config = _get(cloud, f"/{cloud.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["jwks_uri"] == f"{cloud.authority}/{cloud.tenant_id}/discovery/v2.0/keys"
    keys = requests.get(config["jwks_uri"], verify=cloud.ca_bundle, timeout=10).json()
    assert isinstance(keys, dict)
    return keys


def _verify(cloud: LocalCloud, token: str, audience: str) -> dict[str, Any]:
    """Verify like a resource server does: the key by `kid` from the jwks, RS256 only, iss, aud, exp."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    (key,) = [k for k in _signing_keys(cloud)["keys"] if k["kid"] == header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=audience,
        issuer=f"{cloud.authority}/{cloud.tenant_id}/v2.0",
        options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]},
    )
    return claims


def _client(cloud: LocalCloud, name: str) -> dict[str, Any]:
    body: dict[str, Any] = cloud.admin("POST", "/identities", {"displayName": name, "graphAppRoles": []})
    return body


def _credential(cloud: LocalCloud, client: dict[str, Any]) -> ClientSecretCredential:
    return ClientSecretCredential(
        cloud.tenant_id,
        client["appId"],
        client["clientSecret"],
        authority=cloud.authority,
        disable_instance_discovery=True,
    )


def _api(cloud: LocalCloud, uri: str) -> dict[str, Any]:
    app = cloud.admin("POST", "/applications", {"displayName": "an api"})
    exposed = cloud.expose_api(app["appId"], identifier_uris=[uri], app_roles=["Data.Read", "Data.Write"])
    assert exposed["appId"] == app["appId"] and [r["value"] for r in exposed["appRoles"]] == ["Data.Read", "Data.Write"]
    return exposed


def test_the_jwks_is_served_where_the_openid_configuration_says(cloud: LocalCloud) -> None:
    keys = _signing_keys(cloud)["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["e"] == "AQAB" and key["kid"]
    assert key["issuer"] == f"{cloud.authority}/{cloud.tenant_id}/v2.0"
    assert "d" not in key and "p" not in key  # the public half only
    # The same key for every tenant (and common), as Entra's keys are shared.
    other = cloud.admin("POST", "/tenants")
    assert [k["kid"] for k in _get(cloud, f"/{other['tenantId']}/discovery/v2.0/keys").json()["keys"]] == [key["kid"]]
    assert _get(cloud, "/common/discovery/v2.0/keys").json()["keys"][0]["n"] == key["n"]
    unknown = _get(cloud, "/99999999-9999-9999-9999-999999999999/discovery/v2.0/keys")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_tenant"


def test_client_credentials_tokens_are_v2_jwts_with_the_callers_graph_roles(cloud: LocalCloud) -> None:
    client = cloud.admin("POST", "/identities", {"displayName": "reader", "graphAppRoles": ["Application.Read.All"]})
    before = int(time.time())
    token = _credential(cloud, client).get_token(GRAPH_SCOPE).token
    claims = _verify(cloud, token, "https://graph.microsoft.com")
    assert claims["ver"] == "2.0" and claims["tid"] == cloud.tenant_id
    assert claims["oid"] == claims["sub"] == client["objectId"]
    assert claims["azp"] == claims["appid"] == client["appId"] and claims["idtyp"] == "app"
    assert claims["roles"] == ["Application.Read.All"]
    assert before - 1 <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 3599
    # A vault token: no roles claim (Key Vault's data-plane RBAC is not in the token).
    vault = _verify(
        cloud, _credential(cloud, client).get_token("https://vault.azure.net/.default").token, "https://vault.azure.net"
    )
    assert "roles" not in vault and vault["oid"] == client["objectId"]


def test_managed_identity_tokens_are_v2_jwts_and_still_open_key_vault(
    cloud: LocalCloud, workload: ManagedIdentity
) -> None:
    token = ManagedIdentityCredential().get_token("https://vault.azure.net/.default").token
    claims = _verify(cloud, token, "https://vault.azure.net")
    assert claims["oid"] == workload.sp_object_id and claims["appid"] == workload.app_id
    graph = _verify(cloud, ManagedIdentityCredential().get_token(GRAPH_SCOPE).token, "https://graph.microsoft.com")
    assert graph["roles"] == ["Application.ReadWrite.OwnedBy"]

    async def aio() -> str:
        async with AsyncManagedIdentityCredential() as credential:
            return str((await credential.get_token("https://vault.azure.net/.default")).token)

    assert _verify(cloud, asyncio.run(aio()), "https://vault.azure.net")["tid"] == cloud.tenant_id
    # The services still recognise the tokens they were issued.
    client = SecretClient(cloud.vault_url("kv-local"), ManagedIdentityCredential(), verify_challenge_resource=False)
    client.set_secret("jwt-check", "a value only the workload reads")
    assert client.get_secret("jwt-check").value == "a value only the workload reads"


def test_a_registered_api_gets_tokens_with_its_app_id_as_audience_and_the_assigned_roles(cloud: LocalCloud) -> None:
    api = _api(cloud, "api://local-orders")
    client = _client(cloud, "orders client")
    credential = _credential(cloud, client)
    # Not assigned yet: a token, without roles.
    claims = _verify(cloud, credential.get_token("api://local-orders/.default").token, api["appId"])
    assert "roles" not in claims
    assignment = cloud.assign_app_role(api["appId"], client["objectId"], "Data.Read")
    assert assignment["principalId"] == client["objectId"] and assignment["appRole"] == "Data.Read"
    # A fresh credential (MSAL caches the first token); by identifier URI and by app id alike.
    for scope in ("api://local-orders/.default", f"{api['appId']}/.default"):
        claims = _verify(cloud, _credential(cloud, client).get_token(scope).token, api["appId"])
        assert claims["roles"] == ["Data.Read"] and claims["azp"] == client["appId"]
    # Another client holds nothing there.
    other = _verify(
        cloud, _credential(cloud, _client(cloud, "stranger")).get_token(f"{api['appId']}/.default").token, api["appId"]
    )
    assert "roles" not in other
    state = next(
        a for t in cloud.admin("GET", "/state")["tenants"] for a in t["applications"] if a["appId"] == api["appId"]
    )
    assert state["identifierUris"] == ["api://local-orders"]
    assert state["appRoleAssignments"] == {client["objectId"]: ["Data.Read"]}
    cloud.admin(
        "DELETE",
        f"/applications/{api['appId']}/app-role-assignments",
        {"principalId": client["appId"], "appRole": "Data.Read"},
    )
    assert "roles" not in _verify(
        cloud, _credential(cloud, client).get_token(f"{api['appId']}/.default").token, api["appId"]
    )


def test_a_managed_identity_may_hold_an_api_role(cloud: LocalCloud, workload: ManagedIdentity) -> None:
    api = _api(cloud, "api://local-mi-api")
    cloud.assign_app_role(api["id"], workload.app_id, "Data.Write")
    claims = _verify(cloud, ManagedIdentityCredential().get_token("api://local-mi-api/.default").token, api["appId"])
    assert claims["roles"] == ["Data.Write"] and claims["oid"] == workload.sp_object_id


def test_an_unknown_resource_still_gets_no_token(cloud: LocalCloud) -> None:
    client = _client(cloud, "no api")
    response = requests.post(
        f"{cloud.authority}/{cloud.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": client["appId"],
            "client_secret": client["clientSecret"],
            "grant_type": "client_credentials",
            "scope": "api://nobody-registered-this/.default",
        },
        verify=cloud.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/applications/{app}/api", {"identifierUris": ["not a uri"]}, 400),
        ("/applications/{app}/api", {"appRoles": [{"value": "has space"}]}, 400),
        ("/applications/{app}/api", {"appRoles": [{"value": "A"}, {"value": "A"}]}, 400),
        ("/applications/{app}/api", {"appRoles": [{"value": "A", "allowedMemberTypes": ["Robot"]}]}, 400),
        ("/applications/{app}/app-role-assignments", {"principalId": "{client}", "appRole": "Nope"}, 400),
        (
            "/applications/{app}/app-role-assignments",
            {"principalId": "00000000-0000-0000-0000-000000000001", "appRole": "Data.Read"},
            404,
        ),
    ],
)
def test_bad_api_admin_input_is_refused(cloud: LocalCloud, path: str, body: dict[str, Any], status: int) -> None:
    api = _api(cloud, f"api://local-bad-{abs(hash(path + str(body)))}")
    client = _client(cloud, "bad input client")
    filled = {k: (v.replace("{client}", client["objectId"]) if isinstance(v, str) else v) for k, v in body.items()}
    method = "PUT" if path.endswith("/api") else "POST"
    with pytest.raises(AdminError) as caught:
        cloud.admin(method, path.replace("{app}", api["appId"]), filled)
    assert caught.value.status == status


def test_an_identifier_uri_belongs_to_one_app(cloud: LocalCloud) -> None:
    _api(cloud, "api://local-taken")
    other = cloud.admin("POST", "/applications", {"displayName": "squatter"})
    with pytest.raises(AdminError) as caught:
        cloud.expose_api(other["id"], identifier_uris=["api://local-taken"])
    assert caught.value.status == 409


def test_msal_itself_accepts_the_tokens(cloud: LocalCloud, workload: ManagedIdentity) -> None:
    """MSAL directly (what azure-identity and az build on): client credentials and managed identity."""
    import msal  # type: ignore[import-untyped]

    api = _api(cloud, "api://local-msal")
    client = _client(cloud, "msal client")
    cloud.assign_app_role(api["appId"], client["objectId"], "Data.Read")
    app = msal.ConfidentialClientApplication(
        client["appId"],
        client_credential=client["clientSecret"],
        authority=f"{cloud.authority}/{cloud.tenant_id}",
        instance_discovery=False,
        verify=cloud.ca_bundle,
    )
    result = app.acquire_token_for_client(scopes=["api://local-msal/.default"])
    assert "access_token" in result, result.get("error_description")
    assert _verify(cloud, result["access_token"], api["appId"])["roles"] == ["Data.Read"]
    # Cached by MSAL and handed out again as is.
    again = app.acquire_token_for_client(scopes=["api://local-msal/.default"])
    assert again["access_token"] == result["access_token"]
    identity = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
    token = identity.acquire_token_for_client(resource="https://vault.azure.net")
    assert "access_token" in token, token
    assert _verify(cloud, token["access_token"], "https://vault.azure.net")["oid"] == workload.sp_object_id
