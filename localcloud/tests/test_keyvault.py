"""Key Vault in the local cloud, driven by the real aio `SecretClient` and checked on the raw wire.

Every status, error code and message asserted here is the real service's (see `emulator/keyvault.py`).
Tests that move the clock use a private cloud: a moved clock also ages every token the SDKs cache.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from localcloud.cloud import LocalCloud

API_VERSION = "7.5"
VAULT_RESOURCE = "https://vault.azure.net"
VERSION_RE = re.compile(r"^[0-9a-f]{32}$")
NOT_FOUND_TAIL = (
    " was not found in this key vault. If you recently deleted this secret you may be able to recover it "
    "using the correct recovery command. For help resolving this issue, please see "
    "https://go.microsoft.com/fwlink/?linkid=2125182"
)
ATTRIBUTE_KEYS = {"enabled", "created", "updated", "recoveryLevel", "recoverableDays"}


# --- helpers ---------------------------------------------------------------------------------------
def _name(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _new_vault(cloud: LocalCloud) -> tuple[str, str]:
    """A vault of the test's own (so that lists and throttling see only its secrets): (name, url)."""
    created = cloud.admin("POST", "/vaults", {"name": f"kv{uuid.uuid4().hex[:12]}"})
    return created["name"], created["url"]


def _identity(cloud: LocalCloud, vault: str | None, role: str | None, tenant_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"displayName": "kv-test-identity"}
    if tenant_id:
        body["tenantId"] = tenant_id
    identity: dict[str, Any] = cloud.admin("POST", "/identities", body)
    if vault and role:
        cloud.admin("POST", "/role-assignments", {"objectId": identity["objectId"], "vault": vault, "role": role})
    return identity


def _credential(cloud: LocalCloud, identity: dict[str, Any]) -> ClientSecretCredential:
    return ClientSecretCredential(
        identity["tenantId"], identity["appId"], identity["clientSecret"], authority=cloud.authority
    )


@asynccontextmanager
async def _client(vault_url: str, credential: AsyncTokenCredential | None = None) -> AsyncIterator[SecretClient]:
    """The real aio client; only the loopback-specific challenge-resource check is turned off."""
    credential = credential or ManagedIdentityCredential()
    async with credential, SecretClient(vault_url, credential, verify_challenge_resource=False) as client:
        yield client


def _mi_token(cloud: LocalCloud, resource: str = VAULT_RESOURCE) -> str:
    response = requests.get(
        cloud.identity_endpoint,
        params={"resource": resource, "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        verify=cloud.ca_bundle,
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _client_token(cloud: LocalCloud, identity: dict[str, Any], scope: str = f"{VAULT_RESOURCE}/.default") -> str:
    response = requests.post(
        f"{cloud.authority}/{identity['tenantId']}/oauth2/v2.0/token",
        data={
            "client_id": identity["appId"],
            "client_secret": identity["clientSecret"],
            "grant_type": "client_credentials",
            "scope": scope,
        },
        verify=cloud.ca_bundle,
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _raw(
    cloud: LocalCloud,
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    api_version: str | None = API_VERSION,
    **params: str,
) -> requests.Response:
    if api_version is not None:
        params["api-version"] = api_version
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(
        method,
        url,
        params=params,
        json=body,
        headers=headers,
        verify=cloud.ca_bundle,
        timeout=10,
    )


def _error(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


def _events(cloud: LocalCloud, subject: str, event_type: str | None = None) -> list[dict[str, Any]]:
    events = cloud.admin("GET", "/events?since=0")["events"]
    return [e for e in events if e["subject"] == subject and (event_type is None or e["eventType"] == event_type)]


def _world_now(cloud: LocalCloud) -> datetime:
    return cloud.now().replace(microsecond=0)


# --- challenge and authentication ------------------------------------------------------------------
def test_request_without_token_gets_the_bearer_challenge(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    for method in ("GET", "PUT"):  # the SDK's first PUT arrives without its body
        response = _raw(cloud, method, f"{url}/secrets/{_name()}")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == (
            f'Bearer authorization="{cloud.authority}/{cloud.tenant_id}", resource="https://vault.azure.net"'
        )
        assert response.json() == {
            "error": {
                "code": "Unauthorized",
                "message": "AKV10000: Request is missing a Bearer or PoP token.",
            }
        }
        assert response.headers["x-ms-request-id"]


def test_tokens_the_vault_refuses(cloud: LocalCloud) -> None:
    url = f"{cloud.vault_url('kv-local')}/secrets"
    garbage = _raw(cloud, "GET", url, token="not-a-token")
    assert garbage.status_code == 401
    assert "WWW-Authenticate" in garbage.headers
    assert _error(garbage)["message"] == "[AggregatedAuthenticationFailure] Error validating token: 'S2S17001'."

    wrong_audience = _raw(cloud, "GET", url, token=_mi_token(cloud, "https://management.azure.com"))
    assert wrong_audience.status_code == 401
    assert _error(wrong_audience) == {
        "code": "Unauthorized",
        "message": "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com.",
    }

    other_tenant = cloud.admin("POST", "/tenants", {})["tenantId"]
    stranger = _identity(cloud, None, None, tenant_id=other_tenant)
    wrong_issuer = _raw(cloud, "GET", url, token=_client_token(cloud, stranger))
    assert wrong_issuer.status_code == 401
    assert _error(wrong_issuer)["message"] == (
        f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{cloud.tenant_id}/, "
        f"found https://sts.windows.net/{other_tenant}/."
    )


async def test_sdk_surfaces_a_wrong_audience_as_authentication_error(cloud: LocalCloud) -> None:
    class GraphTokenCredential(ManagedIdentityCredential):
        """Asks for a Graph token whatever the vault's challenge says (a misconfigured client)."""

        async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            return await super().get_token("https://graph.microsoft.com/.default")

        async def get_token_info(self, *scopes: str, options: Any = None) -> Any:
            return await super().get_token_info("https://graph.microsoft.com/.default")

    _, url = _new_vault(cloud)
    async with _client(url, GraphTokenCredential()) as client:
        with pytest.raises(ClientAuthenticationError) as caught:
            await client.get_secret("anything")
    assert "AKV10022: Invalid audience" in str(caught.value)


def test_missing_api_version_and_invalid_names_are_bad_parameters(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    token = _mi_token(cloud)
    missing = _raw(cloud, "GET", f"{url}/secrets", token=token, api_version=None)
    assert missing.status_code == 400
    assert _error(missing) == {
        "code": "BadParameter",
        "message": "The 'api-version' query parameter is missing.",
    }

    invalid = _raw(cloud, "PUT", f"{url}/secrets/bad_name", token=token, body={"value": "x"})
    assert invalid.status_code == 400
    assert _error(invalid) == {
        "code": "BadParameter",
        "message": "The request URI contains an invalid name: bad_name",
    }


# --- set, get, update ------------------------------------------------------------------------------
async def test_set_get_and_versions_through_the_sdk(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    name = _name("Rotated")
    nbf = _world_now(cloud) - timedelta(hours=1)
    exp = _world_now(cloud) + timedelta(days=90)
    async with _client(url) as client:
        first = await client.set_secret(name, "value-1", content_type="text/plain", tags={"ProviderAddress": "a"})
        second = await client.set_secret(name, "value-2", not_before=nbf, expires_on=exp, tags={"CredentialId": "k"})
        latest = await client.get_secret(name)
        older = await client.get_secret(name, first.properties.version)
        lower_case = await client.get_secret(name.lower())

    assert first.id == f"{url}/secrets/{name}/{first.properties.version}"
    assert VERSION_RE.match(first.properties.version or "")
    assert first.properties.version != second.properties.version
    assert first.properties.content_type == "text/plain"
    assert first.properties.recovery_level == "Recoverable+Purgeable"
    assert first.properties.recoverable_days == 90
    assert latest.value == "value-2" and latest.properties.version == second.properties.version
    assert latest.properties.not_before == nbf and latest.properties.expires_on == exp
    assert latest.properties.tags == {"CredentialId": "k"}
    assert older.value == "value-1" and older.properties.tags == {"ProviderAddress": "a"}
    assert lower_case.value == "value-2" and lower_case.name == name  # names are case-insensitive


def test_set_and_get_on_the_wire(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    token = _mi_token(cloud)
    name = _name()
    created = _raw(cloud, "PUT", f"{url}/secrets/{name}", token=token, body={"value": "v", "attributes": {}})
    assert created.status_code == 200
    assert created.headers["Content-Type"] == "application/json; charset=utf-8"
    assert created.headers["Cache-Control"] == "no-cache"
    bundle = created.json()
    assert set(bundle) == {"value", "id", "attributes"}  # no contentType or tags unless given
    assert set(bundle["attributes"]) == ATTRIBUTE_KEYS
    assert bundle["attributes"]["enabled"] is True
    assert isinstance(bundle["attributes"]["created"], int)
    assert bundle["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
    version = bundle["id"].rsplit("/", 1)[1]
    assert VERSION_RE.match(version)

    for path in (f"/secrets/{name}/", f"/secrets/{name}", f"/secrets/{name}/{version}"):
        got = _raw(cloud, "GET", f"{url}{path}", token=token)
        assert got.status_code == 200 and got.json() == bundle

    missing_version = _raw(cloud, "GET", f"{url}/secrets/{name}/{'0' * 32}", token=token)
    assert missing_version.status_code == 404
    assert _error(missing_version) == {
        "code": "SecretNotFound",
        "message": f"A secret with (name/id) {name}/{'0' * 32}{NOT_FOUND_TAIL}",
    }


async def test_missing_secret_is_resource_not_found(cloud: LocalCloud) -> None:
    name = _name("absent")
    async with _client(cloud.vault_url("kv-local")) as client:
        with pytest.raises(ResourceNotFoundError) as caught:
            await client.get_secret(name)
        versions = [v async for v in client.list_properties_of_secret_versions(name)]
    assert f"A secret with (name/id) {name}{NOT_FOUND_TAIL}" in str(caught.value)
    assert versions == []  # the service lists no versions for an unknown name


async def test_disabled_version_is_refused_and_update_properties(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    name = _name()
    async with _client(url) as client:
        first = await client.set_secret(name, "old")
        second = await client.set_secret(name, "new", enabled=False)
        with pytest.raises(HttpResponseError) as caught:
            await client.get_secret(name)
        assert caught.value.status_code == 403
        assert "Operation get is not allowed on a disabled secret." in str(caught.value)
        assert (await client.get_secret(name, first.properties.version)).value == "old"

        updated = await client.update_secret_properties(
            name,
            second.properties.version,
            enabled=True,
            content_type="password",
            tags={"RotationState": "active"},
        )
        assert updated.enabled is True and updated.content_type == "password"
        assert updated.tags == {"RotationState": "active"}
        assert updated.updated_on is not None and updated.created_on is not None
        assert updated.updated_on >= updated.created_on
        assert (await client.get_secret(name)).value == "new"

        # No version: the latest one is updated (the SDK sends PATCH /secrets/{name}/).
        latest = await client.update_secret_properties(name, enabled=False)
        assert latest.version == second.properties.version and latest.enabled is False

    raw = _raw(cloud, "GET", f"{url}/secrets/{name}/", token=_mi_token(cloud))
    assert raw.status_code == 403
    assert _error(raw) == {
        "code": "Forbidden",
        "message": "Operation get is not allowed on a disabled secret.",
        "innererror": {"code": "SecretDisabled"},
    }
    patched = _raw(
        cloud,
        "PATCH",
        f"{url}/secrets/{name}/{first.properties.version}",
        token=_mi_token(cloud),
        body={"tags": {"a": "b"}},
    )
    assert patched.status_code == 200
    assert "value" not in patched.json() and patched.json()["tags"] == {"a": "b"}


async def test_expired_and_not_yet_valid_secrets_can_still_be_read(cloud: LocalCloud) -> None:
    # Docs, "Date-time controlled operations": get works outside the nbf/exp window.
    now = _world_now(cloud)
    expired, future = _name(), _name()
    async with _client(cloud.vault_url("kv-local")) as client:
        await client.set_secret(expired, "e", expires_on=now - timedelta(days=1))
        await client.set_secret(future, "f", not_before=now + timedelta(days=1))
        assert (await client.get_secret(expired)).value == "e"
        assert (await client.get_secret(future)).value == "f"


async def test_service_limits(cloud: LocalCloud) -> None:
    async with _client(cloud.vault_url("kv-local")) as client:
        await client.set_secret(_name(), "x" * 25 * 1024, tags={f"t{i}": "v" * 512 for i in range(15)})
        for kwargs in (
            {"value": "x" * (25 * 1024 + 1)},
            {"value": "v", "tags": {f"t{i}": "v" for i in range(16)}},
            {"value": "v", "tags": {"t": "v" * 513}},
            {"value": "v", "content_type": "c" * 256},
        ):
            with pytest.raises(HttpResponseError) as caught:
                await client.set_secret(_name(), **kwargs)
            assert caught.value.status_code == 400
            assert "BadParameter" in str(caught.value)


# --- lists and paging ------------------------------------------------------------------------------
async def test_lists_page_beyond_25(cloud: LocalCloud) -> None:
    _, url = _new_vault(cloud)
    names = sorted(f"s{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(27))
    versioned = _name("many")
    async with _client(url) as client:
        for name in names:
            await client.set_secret(name, "v", tags={"n": name})
        versions = [(await client.set_secret(versioned, f"v{i}")).properties.version for i in range(27)]
        listed = [p async for p in client.list_properties_of_secrets()]
        listed_versions = [p async for p in client.list_properties_of_secret_versions(versioned)]

    assert sorted(str(p.name) for p in listed) == sorted([*names, versioned])
    assert all(p.version is None for p in listed)  # /secrets items carry unversioned ids
    assert {p.name: p.tags for p in listed if p.name != versioned} == {n: {"n": n} for n in names}
    assert sorted(str(p.version) for p in listed_versions) == sorted(str(v) for v in versions)


def test_paging_on_the_wire(cloud: LocalCloud) -> None:
    _, url = _new_vault(cloud)
    token = _mi_token(cloud)
    for i in range(27):
        assert _raw(cloud, "PUT", f"{url}/secrets/p{i:02d}", token=token, body={"value": "secret!"}).ok

    first = _raw(cloud, "GET", f"{url}/secrets", token=token).json()
    assert set(first) == {"value", "nextLink"}
    assert len(first["value"]) == 25
    assert first["nextLink"].startswith(f"{url}/secrets?api-version={API_VERSION}&$skiptoken=")
    item = first["value"][0]
    assert item["id"] == f"{url}/secrets/p00" and "value" not in item
    assert set(item["attributes"]) == ATTRIBUTE_KEYS

    second = requests.get(
        first["nextLink"], headers={"Authorization": f"Bearer {token}"}, verify=cloud.ca_bundle, timeout=10
    ).json()
    assert [i["id"].rsplit("/", 1)[1] for i in second["value"]] == ["p25", "p26"]
    assert second["nextLink"] is None

    small = _raw(cloud, "GET", f"{url}/secrets", token=token, maxresults="5").json()
    assert len(small["value"]) == 5 and small["nextLink"].endswith("&maxresults=5")
    too_many = _raw(cloud, "GET", f"{url}/secrets", token=token, maxresults="26")
    assert too_many.status_code == 400 and _error(too_many)["code"] == "BadParameter"

    for _ in range(26):
        assert _raw(cloud, "PUT", f"{url}/secrets/p00", token=token, body={"value": "again"}).ok
    versions = _raw(cloud, "GET", f"{url}/secrets/p00/versions", token=token).json()
    assert len(versions["value"]) == 25
    assert all(VERSION_RE.match(i["id"].rsplit("/", 1)[1]) for i in versions["value"])
    assert versions["nextLink"].startswith(f"{url}/secrets/p00/versions?api-version={API_VERSION}&$skiptoken=")


# --- soft delete -----------------------------------------------------------------------------------
async def test_delete_recover_purge_through_the_sdk(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    name = _name()
    async with _client(url) as client:
        created = await client.set_secret(name, "keep-me", tags={"ProviderAddress": "x"})
        deleted = await client.delete_secret(name)
        assert deleted.recovery_id == f"{url}/deletedsecrets/{name}"
        assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
        assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
        assert deleted.properties.tags == {"ProviderAddress": "x"}
        assert name in [d.name async for d in client.list_deleted_secrets()]
        assert name not in [p.name async for p in client.list_properties_of_secrets()]
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret(name)
        with pytest.raises(ResourceExistsError) as conflict:
            await client.set_secret(name, "reuse")
        assert "is currently in a deleted but recoverable state" in str(conflict.value)

        recovered = await client.recover_deleted_secret(name)
        assert recovered.version == created.properties.version
        assert (await client.get_secret(name)).value == "keep-me"

        await client.delete_secret(name)
        await client.purge_deleted_secret(name)
        with pytest.raises(ResourceNotFoundError) as gone:
            await client.get_deleted_secret(name)
        assert f"Deleted Secret not found: {name}" in str(gone.value)
        await client.set_secret(name, "fresh start")  # the name is free again after a purge


def test_soft_delete_on_the_wire(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    token = _mi_token(cloud)
    name = _name()
    assert _raw(cloud, "PUT", f"{url}/secrets/{name}", token=token, body={"value": "v"}).ok
    deleted = _raw(cloud, "DELETE", f"{url}/secrets/{name}", token=token)
    assert deleted.status_code == 200
    body = deleted.json()
    assert set(body) == {"recoveryId", "deletedDate", "scheduledPurgeDate", "id", "attributes"}
    assert body["scheduledPurgeDate"] - body["deletedDate"] == 90 * 86400
    assert _raw(cloud, "GET", f"{url}/deletedsecrets/{name}", token=token).json() == body

    conflict = _raw(cloud, "PUT", f"{url}/secrets/{name}", token=token, body={"value": "v"})
    assert conflict.status_code == 409
    assert _error(conflict) == {
        "code": "Conflict",
        "message": f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
        "reused; in this state, the secret can only be recovered or purged.",
        "innererror": {"code": "ObjectIsDeletedButRecoverable"},
    }
    listed = _raw(cloud, "GET", f"{url}/deletedsecrets", token=token).json()
    mine = [d for d in listed["value"] if d["recoveryId"].endswith(f"/{name}")]
    assert len(mine) == 1 and mine[0]["id"] == f"{url}/secrets/{name}"

    purged = _raw(cloud, "DELETE", f"{url}/deletedsecrets/{name}", token=token)
    assert purged.status_code == 204 and purged.content == b""
    again = _raw(cloud, "DELETE", f"{url}/deletedsecrets/{name}", token=token)
    assert again.status_code == 404
    assert _error(again) == {"code": "SecretNotFound", "message": f"Deleted Secret not found: {name}"}


def test_injected_delete_in_flight_conflict_has_the_real_shape(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    name = _name()
    cloud.admin(
        "POST",
        "/faults",
        {
            "service": "keyvault",
            "method": "PUT",
            "pathRegex": f"/secrets/{name}$",
            "status": 409,
            "code": "ObjectIsBeingDeleted",
        },
    )
    response = _raw(cloud, "PUT", f"{url}/secrets/{name}", token=_mi_token(cloud), body={"value": "v"})
    assert response.status_code == 409
    assert _error(response) == {
        "code": "Conflict",
        "message": "Secret is currently being deleted.",
        "innererror": {"code": "ObjectIsBeingDeleted"},
    }


# --- RBAC ------------------------------------------------------------------------------------------
async def test_rbac_roles(cloud: LocalCloud) -> None:
    vault, url = _new_vault(cloud)
    async with _client(url) as client:
        await client.set_secret("shared", "v")
    user = _identity(cloud, vault, "Key Vault Secrets User")
    reader = _identity(cloud, vault, "Key Vault Reader")
    nobody = _identity(cloud, vault, None)

    async with _client(url, _credential(cloud, user)) as client:
        assert (await client.get_secret("shared")).value == "v"
        assert [p.name async for p in client.list_properties_of_secrets()] == ["shared"]
        with pytest.raises(HttpResponseError) as caught:
            await client.set_secret("shared", "mine now")
        assert caught.value.status_code == 403
        assert "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'" in str(caught.value)
        with pytest.raises(HttpResponseError) as caught:
            await client.delete_secret("shared")
        assert caught.value.status_code == 403

    async with _client(url, _credential(cloud, reader)) as client:
        assert [p.name async for p in client.list_properties_of_secrets()] == ["shared"]
        with pytest.raises(HttpResponseError) as caught:
            await client.get_secret("shared")
        assert caught.value.status_code == 403

    async with _client(url, _credential(cloud, nobody)) as client:
        with pytest.raises(HttpResponseError) as caught:
            await client.get_secret("shared")
        assert caught.value.status_code == 403


def test_rbac_refusal_on_the_wire(cloud: LocalCloud) -> None:
    vault, url = _new_vault(cloud)
    nobody = _identity(cloud, vault, None)
    token = _client_token(cloud, nobody)
    response = _raw(cloud, "GET", f"{url}/secrets/Some-Secret/", token=token)
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "Forbidden" and error["innererror"] == {"code": "ForbiddenByRbac"}
    resource = (
        f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-local/providers/"
        f"microsoft.keyvault/vaults/{vault}/secrets/some-secret"
    )
    assert error["message"] == (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, please observe "
        "propagation time.\r\n"
        f"Caller: appid={nobody['appId']};oid={nobody['objectId']};iss=https://sts.windows.net/{cloud.tenant_id}/\r\n"
        "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
        f"Resource: '{resource}'\r\n"
        "Assignment: (not found)\r\n"
        "DenyAssignmentId: null\r\n"
        "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
        f"Vault: {vault};location=eastus\r\n"
    )
    listing = _raw(cloud, "GET", f"{url}/secrets", token=token)
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'" in _error(listing)["message"]
    # The request log names the caller.
    requests_log = cloud.admin("GET", "/requests?since=0")["requests"]
    assert any(r["caller"] == nobody["appId"] and r["status"] == 403 for r in requests_log)


# --- events ----------------------------------------------------------------------------------------
async def test_new_version_event(cloud: LocalCloud) -> None:
    vault = "kv-second"
    url = cloud.vault_url(vault)
    name = _name()
    exp = _world_now(cloud) + timedelta(days=200)
    async with _client(url) as client:
        secret = await client.set_secret(name, "v", expires_on=exp)
    [event] = _events(cloud, name, "Microsoft.KeyVault.SecretNewVersionCreated")
    assert set(event) == {
        "id",
        "topic",
        "subject",
        "eventType",
        "eventTime",
        "data",
        "dataVersion",
        "metadataVersion",
    }
    assert event["topic"] == (
        f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-local/providers/"
        f"Microsoft.KeyVault/vaults/{vault}"
    )
    assert event["dataVersion"] == "1" and event["metadataVersion"] == "1"
    assert datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).tzinfo is not None
    assert event["data"] == {
        "Id": secret.id,
        "VaultName": vault,
        "ObjectType": "Secret",
        "ObjectName": name,
        "Version": secret.properties.version,
        "NBF": None,
        "EXP": int(exp.timestamp()),
    }


async def test_expiry_events_follow_the_clock(private_cloud: Callable[..., LocalCloud]) -> None:
    cloud = private_cloud(vaults=("kv-clock",))
    officer = _identity(cloud, "kv-clock", "Key Vault Secrets Officer")
    now = _world_now(cloud)
    async with _client(cloud.vault_url("kv-clock"), _credential(cloud, officer)) as client:
        watched = await client.set_secret("watched", "v", expires_on=now + timedelta(days=40))
        # Only the current version counts: the first version's expiry is superseded.
        await client.set_secret("superseded", "v1", expires_on=now + timedelta(days=35))
        await client.set_secret("superseded", "v2")
        await client.set_secret("disabled", "v", expires_on=now + timedelta(days=35), enabled=False)

    cloud.admin("POST", "/clock", {"advanceSeconds": 9 * 86400})
    assert _events(cloud, "watched", "Microsoft.KeyVault.SecretNearExpiry") == []
    cloud.admin("POST", "/clock", {"advanceSeconds": 2 * 86400})
    [near] = _events(cloud, "watched", "Microsoft.KeyVault.SecretNearExpiry")
    assert near["data"]["Version"] == watched.properties.version
    assert near["data"]["EXP"] == int((now + timedelta(days=40)).timestamp())
    assert _events(cloud, "watched", "Microsoft.KeyVault.SecretExpired") == []

    cloud.admin("POST", "/clock", {"advanceSeconds": 30 * 86400})
    cloud.admin("POST", "/clock", {"advanceSeconds": 86400})
    assert len(_events(cloud, "watched", "Microsoft.KeyVault.SecretNearExpiry")) == 1  # once per version
    [expired] = _events(cloud, "watched", "Microsoft.KeyVault.SecretExpired")
    assert expired["data"]["Id"] == watched.id
    for subject in ("superseded", "disabled"):
        kinds = {e["eventType"] for e in _events(cloud, subject)}
        assert kinds == {"Microsoft.KeyVault.SecretNewVersionCreated"}


async def test_ticker_emits_without_being_asked(private_cloud: Callable[..., LocalCloud]) -> None:
    cloud = private_cloud(vaults=("kv-ticker",))
    officer = _identity(cloud, "kv-ticker", "Key Vault Secrets Officer")
    async with _client(cloud.vault_url("kv-ticker"), _credential(cloud, officer)) as client:
        await client.set_secret("soon", "v", expires_on=_world_now(cloud) + timedelta(days=10))
    cloud.advance_clock(11 * 86400, emit_events=False)  # only the cloud's 0.5 s ticker can notice

    deadline = time.monotonic() + 5
    types: list[str] = []
    while time.monotonic() < deadline:
        events = cloud.admin("GET", "/events?since=0&emitDue=false")["events"]
        types = [e["eventType"] for e in events if e["subject"] == "soon"]
        if "Microsoft.KeyVault.SecretExpired" in types:
            break
        await asyncio.sleep(0.1)
    assert types == [
        "Microsoft.KeyVault.SecretNewVersionCreated",
        "Microsoft.KeyVault.SecretNearExpiry",
        "Microsoft.KeyVault.SecretExpired",
    ]


async def test_expired_tokens_are_refused_and_retention_purges(private_cloud: Callable[..., LocalCloud]) -> None:
    cloud = private_cloud(vaults=("kv-aging",))
    url = cloud.vault_url("kv-aging")
    token = _mi_token(cloud)
    assert _raw(cloud, "PUT", f"{url}/secrets/doomed", token=token, body={"value": "v"}).ok
    assert _raw(cloud, "DELETE", f"{url}/secrets/doomed", token=token).ok

    # Moving the clock does not age tokens (their lifetime runs on real time, like the SDK caches).
    cloud.admin("POST", "/clock", {"advanceSeconds": 2 * 3600})
    assert _raw(cloud, "GET", f"{url}/deletedsecrets/doomed", token=token).ok
    cloud.admin("POST", "/tokens/expire", {"token": token})
    stale = _raw(cloud, "GET", f"{url}/deletedsecrets/doomed", token=token)
    assert stale.status_code == 401 and "WWW-Authenticate" in stale.headers
    assert _error(stale)["message"] == "[TokenExpired] Error validating token: 'S2S12086'."

    cloud.admin("POST", "/clock", {"advanceSeconds": 90 * 86400})
    gone = _raw(cloud, "GET", f"{url}/deletedsecrets/doomed", token=_mi_token(cloud))
    assert gone.status_code == 404  # the retention is over: the service purged it itself


# --- throttling ------------------------------------------------------------------------------------
def test_secret_creates_are_throttled_with_retry_after(cloud: LocalCloud) -> None:
    _, url = _new_vault(cloud)
    token = _mi_token(cloud)
    cloud.admin("PUT", "/config", {"throttle": {"enabled": True, "vaultCreates": 2, "vaultWindowSeconds": 60}})
    statuses = [_raw(cloud, "PUT", f"{url}/secrets/t{i}", token=token, body={"value": "v"}) for i in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    throttled = statuses[2]
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"].isdigit() and int(throttled.headers["Retry-After"]) >= 1
    assert _error(throttled) == {
        "code": "Throttled",
        "message": "Request was not processed because too many requests were received. "
        "Reason: VaultRequestTypeLimitReached",
    }
    # Reads are not creates.
    assert _raw(cloud, "GET", f"{url}/secrets/t0", token=token).ok


# --- admin view ------------------------------------------------------------------------------------
async def test_admin_state_shows_metadata_never_values(cloud: LocalCloud) -> None:
    vault, url = _new_vault(cloud)
    value = f"never-shown-{uuid.uuid4().hex}"
    async with _client(url) as client:
        await client.set_secret("listed", value, tags={"RotationState": "active"})
        await client.set_secret("removed", value)
        await client.delete_secret("removed")
    state = cloud.admin("GET", "/state")
    assert value not in json.dumps(state)
    [mine] = [v for v in state["vaults"] if v["name"] == vault]
    assert mine["url"] == url
    [secret] = mine["secrets"]
    assert secret["name"] == "listed"
    assert secret["versions"][0]["tags"] == {"RotationState": "active"}
    assert [d["name"] for d in mine["deletedSecrets"]] == ["removed"]


def test_vault_names_are_validated(cloud: LocalCloud) -> None:
    from localcloud.admin import AdminError

    for bad in ("ab", "1vault", "vault-", "va--ult", "v" * 25, "under_score"):
        with pytest.raises(AdminError):
            cloud.admin("POST", "/vaults", {"name": bad})


def test_second_vault_has_its_own_port(cloud: LocalCloud) -> None:
    first, second = cloud.vault_url("kv-local"), cloud.vault_url("kv-second")
    assert first != second
    token = _mi_token(cloud)
    name = _name()
    assert _raw(cloud, "PUT", f"{second}/secrets/{name}", token=token, body={"value": "v"}).ok
    assert _raw(cloud, "GET", f"{first}/secrets/{name}", token=token).status_code == 404
