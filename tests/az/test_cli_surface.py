"""The unmodified Azure CLI's other dealings with the local cloud (marker ``az``): what the
troubleshooting guide's neighbours do — owners, credential reset without `--append`, service
principal lookups, app tags, Key Vault by `--id`, a tenant that does not exist — and what az itself
does on top (its token cache, `--add tags`). Each pins a fact a reader of the guide relies on.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from tests.az.harness import az_bin, az_cli, clean_environment

pytestmark = [
    pytest.mark.az,
    pytest.mark.skipif(az_cli() is None, reason="set ROTATION_AZ_CLI to an az executable (make az-test does)"),
]


@dataclass
class Az:
    """`az` with a profile of its own, registered with and signed in to the local cloud."""

    env: dict[str, str]
    cwd: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["az", *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def ok(self, *args: str) -> Any:
        result = self.run(*args, "--output", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    def fails(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode != 0, result.stdout
        return result.stderr

    def login(self, app_id: str, secret: str, tenant: str) -> None:
        self.ok(
            "login", "--service-principal", "-u", app_id, "-p", secret, "--tenant", tenant, "--allow-no-subscriptions"
        )


@pytest.fixture
def az(cloud: RotatorCloud, tmp_path: Path) -> Iterator[Az]:
    path = az_cli()
    assert path is not None
    env = clean_environment(
        az_bin(tmp_path, path), {"AZURE_CONFIG_DIR": str(tmp_path / "az"), "REQUESTS_CA_BUNDLE": cloud.ca_bundle}
    )
    cli = Az(env, tmp_path)
    cli.ok("config", "set", "core.instance_discovery=false", "--only-show-errors")
    cli.ok("cloud", "register", "--name", "LocalCloud", "--endpoint-resource-manager", f"{cloud.base_url}/")
    cli.ok("cloud", "set", "--name", "LocalCloud")
    yield cli


def _operator(cloud: RotatorCloud, az: Az) -> dict[str, Any]:
    operator: dict[str, Any] = cloud.admin(
        "POST", "/identities", {"displayName": "az operator", "graphAppRoles": ["Application.ReadWrite.All"]}
    )
    az.login(operator["appId"], operator["clientSecret"], cloud.tenant_id)
    return operator


def _app(cloud: RotatorCloud, name: str, *passwords: str) -> dict[str, Any]:
    app: dict[str, Any] = cloud.admin("POST", "/applications", {"displayName": name})
    app["passwords"] = [
        cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": p}) for p in passwords
    ]
    return app


def test_owners_add_list_and_remove(cloud: RotatorCloud, az: Az) -> None:
    operator = _operator(cloud, az)
    app = _app(cloud, "az-owned")
    az.ok("ad", "app", "owner", "add", "--id", app["appId"], "--owner-object-id", operator["objectId"])
    az.ok("ad", "app", "owner", "add", "--id", app["appId"], "--owner-object-id", operator["objectId"])  # idempotent
    assert [o["id"] for o in az.ok("ad", "app", "owner", "list", "--id", app["appId"])] == [operator["objectId"]]
    az.ok("ad", "app", "owner", "remove", "--id", app["appId"], "--owner-object-id", operator["objectId"])
    assert az.ok("ad", "app", "owner", "list", "--id", app["appId"]) == []
    assert az.ok("ad", "sp", "owner", "list", "--id", app["appId"]) == []


def test_credential_reset_without_append_replaces_every_secret(cloud: RotatorCloud, az: Az) -> None:
    _operator(cloud, az)
    app = _app(cloud, "az-reset", "one", "two")
    reset = az.ok(
        "ad", "app", "credential", "reset", "--id", app["appId"], "--display-name", "only", "--only-show-errors"
    )
    assert reset["appId"] == app["appId"] and reset["tenant"] == cloud.tenant_id and reset["password"]
    assert [c["displayName"] for c in az.ok("ad", "app", "credential", "list", "--id", app["appId"])] == ["only"]
    az.ok(
        "ad",
        "app",
        "credential",
        "reset",
        "--id",
        app["appId"],
        "--append",
        "--display-name",
        "more",
        "--only-show-errors",
    )
    names = sorted(c["displayName"] for c in az.ok("ad", "app", "credential", "list", "--id", app["appId"]))
    assert names == ["more", "only"]
    # The new value signs in (a fresh profile entry: nothing of it is cached yet).
    az.login(app["appId"], reset["password"], cloud.tenant_id)


def test_service_principal_lookups(cloud: RotatorCloud, az: Az) -> None:
    _operator(cloud, az)
    app = _app(cloud, "az-sp-lookup")
    sp = az.ok("ad", "sp", "show", "--id", app["appId"])
    assert (sp["appId"], sp["servicePrincipalType"]) == (app["appId"], "Application")
    assert az.ok("ad", "sp", "show", "--id", sp["id"])["appId"] == app["appId"]  # by object id too
    assert [s["id"] for s in az.ok("ad", "sp", "list", "--spn", app["appId"])] == [sp["id"]]
    assert az.ok("ad", "sp", "credential", "list", "--id", app["appId"]) == []
    assert [a["appId"] for a in az.ok("ad", "app", "list", "--app-id", app["appId"])] == [app["appId"]]
    missing = az.fails("ad", "sp", "show", "--id", "11111111-2222-3333-4444-555555555555")
    assert "does not exist or one of its queried reference-property objects are not present" in missing


def test_app_tags_are_set_whole_and_add_fails_in_the_cli(cloud: RotatorCloud, az: Az) -> None:
    _operator(cloud, az)
    app = _app(cloud, "az-tags")
    tags = ["team:orders", "rotator-binding:kv-prod.vault.azure.net/orders-api"]
    az.ok("ad", "app", "update", "--id", app["appId"], "--set", f"tags={json.dumps(tags)}")
    assert az.ok("ad", "app", "show", "--id", app["appId"], "--query", "tags") == tags
    # azure-cli applies `--add` to the empty PATCH body it builds: it stops before sending anything.
    assert "Couldn't find 'tags'" in az.fails("ad", "app", "update", "--id", app["appId"], "--add", "tags", "x")
    assert cloud.application_tags(app["id"]) == tags


def test_key_vault_by_id(cloud: RotatorCloud, az: Az, tmp_path: Path) -> None:
    operator = _operator(cloud, az)
    cloud.admin(
        "POST",
        "/role-assignments",
        {"objectId": operator["objectId"], "vault": "kv-local", "role": "Key Vault Secrets Officer"},
    )
    vault = cloud.vault_url("kv-local")
    secret = f"{vault}/secrets/az-by-id"
    put = ["--method", "put", "--url", f"{secret}?api-version=7.4", "--body", json.dumps({"value": "v1"})]
    az.ok("rest", *put, "--resource", "https://vault.azure.net")
    assert az.ok("keyvault", "secret", "show", "--id", secret)["value"] == "v1"
    updated = az.ok("keyvault", "secret", "set-attributes", "--id", secret, "--tags", "ProviderAddress=x")
    assert updated["tags"] == {"ProviderAddress": "x"}
    assert "az-by-id" in [s["name"] for s in az.ok("keyvault", "secret", "list", "--id", vault)]
    backup = tmp_path / "secret.bak"
    az.ok("keyvault", "secret", "backup", "--id", secret, "--file", str(backup))
    assert backup.stat().st_size > 0
    az.ok("keyvault", "secret", "delete", "--id", secret, "--only-show-errors")
    assert "az-by-id" in [s["name"] for s in az.ok("keyvault", "secret", "list-deleted", "--id", vault)]
    # Without a role the vault refuses, with Key Vault's RBAC text.
    cloud.admin(
        "DELETE",
        "/role-assignments",
        {"objectId": operator["objectId"], "vault": "kv-local", "role": "Key Vault Secrets Officer"},
    )
    refused = az.fails("keyvault", "secret", "list", "--id", vault)
    assert "Caller is not authorized to perform action on resource" in refused


def test_tokens_az_hands_out(cloud: RotatorCloud, az: Az) -> None:
    _operator(cloud, az)
    arm = az.ok("account", "get-access-token")
    graph = az.ok("account", "get-access-token", "--resource-type", "ms-graph")
    vault = az.ok("account", "get-access-token", "--resource", "https://vault.azure.net")
    assert {arm["tokenType"], graph["tokenType"], vault["tokenType"]} == {"Bearer"}
    assert az.ok("account", "show")["environmentName"] == "LocalCloud"
    # Graph and Resource Manager share the cloud's origin: `az rest` needs to be told Graph's audience.
    url = f"{cloud.graph_url}/servicePrincipals?$top=1&$select=id"
    assert "InvalidAuthenticationToken" in az.fails("rest", "--method", "get", "--url", url)
    assert "value" in az.ok("rest", "--method", "get", "--url", url, "--resource", f"{cloud.base_url}/")


def test_a_cached_token_hides_a_wrong_secret_until_the_account_is_cleared(cloud: RotatorCloud, az: Az) -> None:
    """What a reader testing secrets must know: az answers `az login` from its token cache."""
    app = _app(cloud, "az-cache", "prod")
    good, key_id = app["passwords"][0]["secretText"], app["passwords"][0]["keyId"]
    az.login(app["appId"], good, cloud.tenant_id)
    az.login(app["appId"], key_id, cloud.tenant_id)  # the Secret ID "works": the token came from the cache
    az.ok("account", "clear")
    login = ["login", "--service-principal", "-u", app["appId"], "--allow-no-subscriptions"]
    assert "AADSTS7000215" in az.fails(*login, "-p", key_id, "--tenant", cloud.tenant_id)


def test_sign_in_errors_the_guide_names(cloud: RotatorCloud, az: Az) -> None:
    app = _app(cloud, "az-errors", "prod")
    secret = app["passwords"][0]["secretText"]
    login = ["login", "--service-principal", "-u", app["appId"], "-p", secret]
    unknown_tenant = az.fails(*login, "--tenant", "99999999-9999-9999-9999-999999999999", "--allow-no-subscriptions")
    # az shows it inside a traceback, as it does against Entra (Azure/azure-cli#22145).
    assert "Unable to get authority configuration" in unknown_tenant
    no_subscriptions = az.fails(*login, "--tenant", cloud.tenant_id)
    assert "No subscriptions found" in no_subscriptions
    log = cloud.admin("GET", "/requests?since=0")["requests"]
    assert [r for r in log if r["status"] >= 500] == []
