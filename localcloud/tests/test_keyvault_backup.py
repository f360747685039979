"""Key Vault's backup and restore, api-version validation and the limits of attributes and tags, through
the real `SecretClient` (aio and sync) and on the raw wire.

Restore gives the whole secret back as it was (name, version ids, values, tags, created/updated);
a name in use, soft-deleted included, is a 409; a blob that is not one of this cloud's is 400
`Malformed backup blob`, the service's code. An api-version Key Vault does not know is 400
BadParameter; an `exp` outside the dates the service can hold is 400, never a 500.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential as SyncManagedIdentityCredential
from azure.keyvault.secrets import SecretClient as SyncSecretClient

from localcloud.cloud import LocalCloud
from localcloud.tests.test_keyvault import _client, _credential, _error, _identity, _mi_token, _name, _new_vault, _raw

LATEST_API_VERSION = "2026-04-01"


def _versions(cloud: LocalCloud, vault: str, name: str) -> list[tuple[str, str, int, int, dict[str, str] | None]]:
    """(version, value, created, updated, tags) of every version, oldest first."""
    return [
        (v.version, v.value, int(v.created.timestamp()), int(v.updated.timestamp()), v.tags)
        for v in cloud.secret_versions(vault, name)
    ]


# --- backup and restore ----------------------------------------------------------------------------
async def test_restore_gives_back_every_version_with_its_id_and_times(cloud: LocalCloud) -> None:
    vault, url = _new_vault(cloud)
    name = _name("bak")
    async with _client(url) as client:
        first = await client.set_secret(name, "first", tags={"ProviderAddress": "app"})
        second = await client.set_secret(name, "second", content_type="text/plain", expires_on=None)
        await client.update_secret_properties(name, first.properties.version, enabled=False)
        cloud.admin(
            "POST", f"/vaults/{vault}/secrets/{name}/backdate", {"seconds": 3600, "version": first.properties.version}
        )
        before = _versions(cloud, vault, name)
        blob = await client.backup_secret(name)
        assert isinstance(blob, bytes) and len(blob) > 32
        assert b"first" not in blob and b"second" not in blob  # opaque, like the service's blobs

        await client.delete_secret(name)  # the aio client waits for the deletion itself
        await client.purge_deleted_secret(name)
        restored = await client.restore_secret_backup(blob)

        assert restored.name == name and restored.version == second.properties.version
        assert restored.id == second.properties.id and restored.content_type == "text/plain"
        assert restored.created_on == second.properties.created_on
        assert _versions(cloud, vault, name) == before
        assert (await client.get_secret(name)).value == "second"
        enabled = {v.version: v.enabled async for v in client.list_properties_of_secret_versions(name)}
        assert enabled == {first.properties.version: False, second.properties.version: True}


async def test_a_backup_restores_into_another_vault_of_the_cloud(cloud: LocalCloud) -> None:
    source_vault, source = _new_vault(cloud)
    target_vault, target = _new_vault(cloud)
    name = _name("moved")
    async with _client(source) as client:
        made = await client.set_secret(name, "value", tags={"a": "b"})
        blob = await client.backup_secret(name)
    async with _client(target) as client:
        restored = await client.restore_secret_backup(blob)
    assert restored.id == f"{target}/secrets/{name}/{made.properties.version}"
    assert restored.tags == {"a": "b"}
    assert _versions(cloud, target_vault, name) == _versions(cloud, source_vault, name)


async def test_restore_refuses_a_name_in_use_live_or_soft_deleted(cloud: LocalCloud) -> None:
    _, url = _new_vault(cloud)
    name = _name("taken")
    async with _client(url) as client:
        await client.set_secret(name, "v")
        blob = await client.backup_secret(name)
        with pytest.raises(ResourceExistsError) as live:
            await client.restore_secret_backup(blob)
        await client.delete_secret(name)  # the aio client waits for the deletion itself
        with pytest.raises(ResourceExistsError) as deleted:
            await client.restore_secret_backup(blob)
    for caught in (live.value, deleted.value):
        assert caught.status_code == 409
        assert caught.error is not None and caught.error.code == "Conflict"
        assert "There was a conflict restoring the secret" in (caught.error.message or "")


def test_restore_and_backup_on_the_wire(cloud: LocalCloud, private_cloud: Callable[..., LocalCloud]) -> None:
    _, url = _new_vault(cloud)
    token = _mi_token(cloud)
    name = _name("wire")
    assert _raw(cloud, "PUT", f"{url}/secrets/{name}", token, {"value": "v"}).status_code == 200
    backup = _raw(cloud, "POST", f"{url}/secrets/{name}/backup", token)
    assert backup.status_code == 200 and set(backup.json()) == {"value"}
    blob = backup.json()["value"]
    assert "=" not in blob and "+" not in blob and "/" not in blob  # base64url, unpadded

    missing = _raw(cloud, "POST", f"{url}/secrets/{_name('nope')}/backup", token)
    assert missing.status_code == 404 and _error(missing)["code"] == "SecretNotFound"
    for corrupt in ("", "bm90IGEgYmFja3Vw", blob[:-8], 5):
        response = _raw(cloud, "POST", f"{url}/secrets/restore", token, {"value": corrupt})
        assert response.status_code == 400, corrupt
        assert _error(response) == {
            "code": "Malformed backup blob",
            "message": "Backup blob contains invalid or corrupt version.",
        }
    # Another cloud's blob is somebody else's: it does not restore here.
    other = private_cloud()
    other_url = other.vault_url("kv-local")
    other_token = _mi_token(other)
    assert _raw(other, "PUT", f"{other_url}/secrets/{name}", other_token, {"value": "v"}).status_code == 200
    foreign = _raw(other, "POST", f"{other_url}/secrets/{name}/backup", other_token).json()["value"]
    _, fresh = _new_vault(cloud)
    refused = _raw(cloud, "POST", f"{fresh}/secrets/restore", token, {"value": foreign})
    assert refused.status_code == 400 and _error(refused)["code"] == "Malformed backup blob"
    assert base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))  # decodes, yet says nothing


async def test_backup_and_restore_need_their_role(cloud: LocalCloud) -> None:
    vault, url = _new_vault(cloud)
    name = _name("rbac")
    async with _client(url) as client:
        await client.set_secret(name, "v")
        blob = await client.backup_secret(name)
    reader = _identity(cloud, vault, "Key Vault Secrets User")
    async with _client(url, _credential(cloud, reader)) as client:
        with pytest.raises(HttpResponseError) as backup:
            await client.backup_secret(name)
        with pytest.raises(HttpResponseError) as restore:
            await client.restore_secret_backup(blob)
    assert backup.value.status_code == restore.value.status_code == 403
    assert "Microsoft.KeyVault/vaults/secrets/backup/action" in str(backup.value)
    assert "Microsoft.KeyVault/vaults/secrets/restore/action" in str(restore.value)


def test_the_sync_client_backs_up_and_restores(cloud: LocalCloud) -> None:
    _, url = _new_vault(cloud)
    name = _name("sync")
    credential = SyncManagedIdentityCredential()
    client = SyncSecretClient(url, credential, verify_challenge_resource=False)
    try:
        client.set_secret(name, "v")
        blob = client.backup_secret(name)
        client.begin_delete_secret(name).wait()
        client.purge_deleted_secret(name)
        assert client.restore_secret_backup(blob).name == name
        with pytest.raises(ResourceNotFoundError):
            client.backup_secret(_name("absent"))
    finally:
        client.close()
        credential.close()


# --- api-version -----------------------------------------------------------------------------------
def test_an_api_version_key_vault_does_not_know_is_a_bad_parameter(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    token = _mi_token(cloud)
    for version in ("2099-01-01", "7.9", "banana"):
        response = _raw(cloud, "GET", f"{url}/secrets", token, api_version=version)
        assert response.status_code == 400, version
        assert _error(response) == {
            "code": "BadParameter",
            "message": f"The specified version ({version}) is not recognized. Consider using the latest supported "
            f"version ({LATEST_API_VERSION}).",
        }
    for version in ("2016-10-01", "7.0", "7.4", "7.6-preview.2", "2025-07-01", LATEST_API_VERSION):
        assert _raw(cloud, "GET", f"{url}/secrets", token, api_version=version).status_code == 200, version


@pytest.mark.parametrize("api_version", ["7.3", "7.5", "2025-07-01"])
async def test_the_sdk_works_with_every_version_it_offers(cloud: LocalCloud, api_version: str) -> None:
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient

    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(
            cloud.vault_url("kv-local"), credential, api_version=api_version, verify_challenge_resource=False
        ) as client,
    ):
        name = _name("ver")
        assert (await client.set_secret(name, "v")).value == "v"


# --- attribute and tag limits ----------------------------------------------------------------------
@pytest.mark.parametrize("attribute", ["exp", "nbf"])
@pytest.mark.parametrize("value", [10**15, 253402300800, -62135596801])
def test_an_out_of_range_date_is_a_bad_parameter_not_a_500(cloud: LocalCloud, attribute: str, value: int) -> None:
    url = cloud.vault_url("kv-local")
    token = _mi_token(cloud)
    name = _name("range")
    response = _raw(cloud, "PUT", f"{url}/secrets/{name}", token, {"value": "v", "attributes": {attribute: value}})
    assert response.status_code == 400
    assert _error(response) == {"code": "BadParameter", "message": "Property has invalid value\r\n"}
    assert _raw(cloud, "PUT", f"{url}/secrets/{name}", token, {"value": "v"}).status_code == 200
    patched = _raw(cloud, "PATCH", f"{url}/secrets/{name}/", token, {"attributes": {attribute: value}})
    assert patched.status_code == 400 and _error(patched)["code"] == "BadParameter"


def test_the_extreme_dates_key_vault_can_hold_are_accepted(cloud: LocalCloud) -> None:
    url = cloud.vault_url("kv-local")
    token = _mi_token(cloud)
    body = {"value": "v", "attributes": {"nbf": -62135596800, "exp": 253402300799}}
    response = _raw(cloud, "PUT", f"{url}/secrets/{_name('edge')}", token, body)
    assert response.status_code == 200, response.text
    assert response.json()["attributes"]["exp"] == 253402300799
    time.sleep(0.6)  # one tick of the cloud's event loop over the extreme dates, which must not crash it
    assert _raw(cloud, "GET", f"{url}/secrets", token).status_code == 200


async def test_tag_limits_are_the_documented_ones(cloud: LocalCloud) -> None:
    """15 tags, each with a name and a value of up to 512 characters ("About Azure Key Vault secrets")."""
    async with _client(cloud.vault_url("kv-local")) as client:
        made = await client.set_secret(_name(), "v", tags={f"{i:02d}" + "n" * 510: "v" * 512 for i in range(15)})
        assert made.properties.tags is not None and len(made.properties.tags) == 15
        for tags in ({"n" * 513: "v"}, {"t": "v" * 513}, {f"t{i}": "v" for i in range(16)}):
            with pytest.raises(HttpResponseError) as caught:
                await client.set_secret(_name(), "v", tags=tags)
            assert caught.value.status_code == 400 and caught.value.error is not None
            assert caught.value.error.code == "BadParameter"
