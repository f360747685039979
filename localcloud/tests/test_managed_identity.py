"""Managed identities the cloud's user makes, the identity endpoint that picks one per request, and the
admin operations that set up states the wire cannot (for the tests of whoever uses the cloud)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from localcloud.admin import AdminError
from localcloud.cloud import LocalCloud, ManagedIdentity
from localcloud.tls import shared_local_tls

GRAPH = "https://graph.microsoft.com"
VAULT = "https://vault.azure.net"


def _identity_token(cloud: LocalCloud, resource: str = VAULT, **selector: str) -> requests.Response:
    return requests.get(
        cloud.identity_endpoint,
        params={"resource": resource, "api-version": "2019-08-01", **selector},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        verify=cloud.ca_bundle,
        timeout=10,
    )


def _vault_get(cloud: LocalCloud, vault: str, token: str) -> requests.Response:
    return requests.get(
        f"{cloud.vault_url(vault)}/secrets?api-version=7.5",
        headers={"Authorization": f"Bearer {token}"},
        verify=cloud.ca_bundle,
        timeout=10,
    )


@pytest.fixture
def bare() -> Iterator[LocalCloud]:
    """A cloud with no identity at all: what `python -m localcloud serve` starts."""
    local = LocalCloud(tls=shared_local_tls(), vaults=("kv-one", "kv-two")).start()
    yield local
    local.stop()


def test_a_new_cloud_has_no_identity_and_the_endpoint_says_so(bare: LocalCloud) -> None:
    assert bare.managed_identities() == []
    assert "rotator" not in bare.admin("GET", "/state")
    response = _identity_token(bare)
    assert response.status_code == 400
    assert "system-assigned" in response.json()["message"]


def test_without_an_id_the_system_assigned_identity_answers(bare: LocalCloud) -> None:
    user = bare.create_managed_identity("user-assigned")
    assert _identity_token(bare).status_code == 400  # App Service: a user-assigned one must be named
    system = bare.create_managed_identity("system", system_assigned=True)
    assert _identity_token(bare).json()["client_id"] == system.app_id
    assert _identity_token(bare, client_id=user.app_id).json()["client_id"] == user.app_id
    assert _identity_token(bare, principal_id=user.sp_object_id).json()["client_id"] == user.app_id
    assert _identity_token(bare, object_id=user.sp_object_id).json()["client_id"] == user.app_id  # MSAL's name
    unknown = _identity_token(bare, client_id="00000000-0000-0000-0000-000000000001")
    assert unknown.status_code == 400 and "No managed identity matches" in unknown.json()["message"]
    both = _identity_token(bare, client_id=user.app_id, principal_id=user.sp_object_id)
    assert both.status_code == 400
    with pytest.raises(AdminError) as second:
        bare.create_managed_identity("another system", system_assigned=True)
    assert second.value.status == 409


def test_vault_roles_by_name_and_on_every_vault_even_later(bare: LocalCloud) -> None:
    reader = bare.create_managed_identity("reader", vault_roles={"kv-one": ["Key Vault Secrets User"]})
    officer = bare.create_managed_identity("officer", vault_roles={"*": ["Key Vault Secrets Officer"]})
    bare.create_vault("kv-three")
    assignments = {v["name"]: v["roleAssignments"] for v in bare.admin("GET", "/state")["vaults"]}
    assert assignments["kv-one"] == {
        reader.sp_object_id: ["Key Vault Secrets User"],
        officer.sp_object_id: ["Key Vault Secrets Officer"],
    }
    assert assignments["kv-two"] == assignments["kv-three"] == {officer.sp_object_id: ["Key Vault Secrets Officer"]}
    token = _identity_token(bare, client_id=reader.app_id).json()["access_token"]
    assert _vault_get(bare, "kv-one", token).status_code == 200
    assert _vault_get(bare, "kv-two", token).status_code == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"displayName": "x", "vaultRoles": {"kv-nowhere": ["Key Vault Reader"]}}, 404),
        ({"displayName": "x", "vaultRoles": {"kv-one": ["Vault Overlord"]}}, 400),
        ({"displayName": "x", "vaultRoles": {"kv-one": "Key Vault Reader"}}, 400),
        ({"displayName": "x", "graphAppRoles": ["Directory.ReadWrite.All"]}, 400),
        ({"displayName": " "}, 400),
        ({"displayName": "x", "clientSecret": "no"}, 400),
    ],
)
def test_bad_identities_are_refused_and_change_nothing(bare: LocalCloud, body: dict[str, Any], status: int) -> None:
    before = bare.admin("GET", "/state")
    with pytest.raises(AdminError) as refused:
        bare.admin("POST", "/managed-identities", body)
    assert refused.value.status == status
    after = bare.admin("GET", "/state")
    before.pop("now"), after.pop("now")
    assert before == after


def test_graph_app_roles_are_granted_and_travel_in_new_tokens(bare: LocalCloud) -> None:
    identity = bare.create_managed_identity("lister", system_assigned=True)
    bare.admin("POST", "/applications", {"displayName": "someone's app"})

    def listing() -> int:
        token = _identity_token(bare, GRAPH).json()["access_token"]
        response = requests.get(
            f"{bare.graph_url}/applications",
            headers={"Authorization": f"Bearer {token}"},
            verify=bare.ca_bundle,
            timeout=10,
        )
        return response.status_code

    assert listing() == 403
    granted = bare.admin("POST", f"/applications/{identity.app_id}/graph-app-roles", {"role": "Application.Read.All"})
    assert granted["graphAppRoles"] == ["Application.Read.All"]
    assert listing() == 200
    with pytest.raises(AdminError):
        bare.admin("POST", f"/applications/{identity.app_id}/graph-app-roles", {"role": "Everything"})


def test_annotations_add_state_keys_but_never_replace_its_own(bare: LocalCloud) -> None:
    bare.annotate_state("profile", {"name": "mine"})
    assert bare.admin("GET", "/state")["profile"] == {"name": "mine"}
    with pytest.raises(ValueError, match="own keys"):
        bare.annotate_state("vaults", [])


# --- states the wire cannot make ---------------------------------------------------------------
def test_removing_a_password_or_an_owner_by_hand(cloud: LocalCloud, workload: ManagedIdentity) -> None:
    app = cloud.admin("POST", "/applications", {"displayName": "by-hand"})
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": workload.sp_object_id})
    kept = cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": "kept"})
    gone = cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": "gone"})
    assert {p.key_id for p in cloud.passwords(app["appId"])} == {kept["keyId"], gone["keyId"]}
    cloud.admin("DELETE", f"/applications/{app['id']}/passwords/{gone['keyId']}")
    [left] = cloud.passwords(app["id"])
    assert left.key_id == kept["keyId"] and left.display_name == "kept"
    with pytest.raises(AdminError) as missing:
        cloud.admin("DELETE", f"/applications/{app['id']}/passwords/{gone['keyId']}")
    assert missing.value.status == 404
    left.display_name = "changed"  # a copy: the cloud's own credential stays as it was
    assert cloud.passwords(app["id"])[0].display_name == "kept"

    cloud.admin("DELETE", f"/applications/{app['id']}/owners/{workload.sp_object_id}")
    [state] = [a for t in cloud.admin("GET", "/state")["tenants"] for a in t["applications"] if a["id"] == app["id"]]
    assert state["owners"] == []


def test_backdating_a_version_and_reading_versions(private_cloud: Callable[..., LocalCloud]) -> None:
    local = private_cloud(vaults=("kv-back",))
    token = _identity_token(local).json()["access_token"]
    for value in ("one", "two"):
        written = requests.put(
            f"{local.vault_url('kv-back')}/secrets/dated?api-version=7.5",
            json={"value": value},
            headers={"Authorization": f"Bearer {token}"},
            verify=local.ca_bundle,
            timeout=10,
        )
        assert written.status_code == 200
    first, second = local.secret_versions("kv-back", "dated")
    assert (first.value, second.value) == ("one", "two")
    local.admin("POST", "/vaults/kv-back/secrets/dated/backdate", {"seconds": 86400})
    local.admin("POST", "/vaults/kv-back/secrets/dated/backdate", {"seconds": 3600, "version": first.version})
    older_first, older_second = local.secret_versions("kv-back", "dated")
    assert first.created - older_first.created == timedelta(hours=1)
    assert second.created - older_second.created == timedelta(days=1)
    assert second.updated - older_second.updated == timedelta(days=1)
    for bad, status in (({"seconds": -1}, 400), ({"seconds": 1, "version": "nope"}, 404)):
        with pytest.raises(AdminError) as refused:
            local.admin("POST", "/vaults/kv-back/secrets/dated/backdate", bad)
        assert refused.value.status == status
    with pytest.raises(KeyError):
        local.secret_versions("kv-back", "never-written")


def test_expiring_a_token(cloud: LocalCloud) -> None:
    token = _identity_token(cloud).json()["access_token"]
    assert _vault_get(cloud, "kv-local", token).status_code == 200
    cloud.admin("POST", "/tokens/expire", {"token": token})
    assert _vault_get(cloud, "kv-local", token).status_code == 401
    with pytest.raises(AdminError) as unknown:
        cloud.admin("POST", "/tokens/expire", {"token": "never-issued"})
    assert unknown.value.status == 404


def test_moving_the_clock(private_cloud: Callable[..., LocalCloud]) -> None:
    local = private_cloud()
    before = local.now()
    after = local.advance_clock(3600)
    assert timedelta(minutes=59) < after - before < timedelta(minutes=61)
    assert local.now() >= after
