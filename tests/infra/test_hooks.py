"""The azd hooks in infra/hooks, run with `sh` against a fake `az`/`azd` (tests/infra/fake_cli.py).

They cannot reach Azure here, so each test gives the answers Azure would (a refusal, a replication
delay, a function not indexed yet) and checks what the hook asked for: which calls, which bodies,
what it printed and its exit status. The PowerShell twins are held to the same names and endpoints
by the static checks in test_bicep_templates.py (there is no pwsh on the build machines).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.fake_cli import FakeCli, install

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "infra" / "hooks"

PRINCIPAL = "11111111-2222-3333-4444-555555555555"
GRAPH_SP = "99999999-8888-7777-6666-555555555555"
OWNED_BY = "18a4783c-866b-4cc7-a460-3d5e5662c884"
AUDIT_LOG = "b0afded3-3588-46d8-8b3d-9842eff778da"  # AuditLog.Read.All, the sign-in evidence
SUBSCRIPTION = "00000000-0000-0000-0000-00000000aaaa"
TOKEN = "abc123def456g"
ENDPOINT = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-rot/providers/Microsoft.Web/sites/func-rotator-{TOKEN}"
    "/functions/on_key_vault_event"
)
EVENTGRID_IDENTITY = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-rot/providers/"
    f"Microsoft.ManagedIdentity/userAssignedIdentities/id-eventgrid-{TOKEN}"
)
STORAGE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-rot/providers/Microsoft.Storage/storageAccounts/st{TOKEN}"


def vault_id(group: str, name: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}"


@dataclass(frozen=True)
class Ran:
    status: int
    stdout: str
    stderr: str


@pytest.fixture
def fake(tmp_path: Path) -> FakeCli:
    return install(tmp_path / "bin")


def run_hook(fake: FakeCli, script: str, env: Mapping[str, str]) -> Ran:
    """Run infra/hooks/<script> with sh, the fakes first on PATH and only `env` from azd."""
    environment = {"PATH": f"{fake.folder}{os.pathsep}{os.environ['PATH']}", "HOME": str(fake.folder)}
    environment.update(env)
    done = subprocess.run(
        ["sh", str(HOOKS / script)], env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def posts(fake: FakeCli) -> list[dict[str, Any]]:
    return [c for c in fake.calls("az") if c["args"][:3] == ["rest", "--method", "POST"]]


def graph_answers(fake: FakeCli, *, granted: bool = False) -> None:
    fake.answer("cloud show", stdout="https://graph.microsoft.com/\n")
    fake.answer("ad sp show --id 00000003-0000-0000-c000-000000000000", stdout=f"{GRAPH_SP}\n")
    fake.answer("--method GET", "appRoleAssignments", stdout="1\n" if granted else "0\n")


# ----------------------------------------------------------------------------- the Graph grant


def test_the_graph_grant_is_off_by_default_and_prints_the_command_an_administrator_runs(fake: FakeCli) -> None:
    graph_answers(fake)
    ran = run_hook(fake, "grant-graph-permission.sh", {"ROTATOR_PRINCIPAL_ID": PRINCIPAL})
    assert ran.status == 0, ran.stderr
    assert posts(fake) == [], "nothing is granted unless ROTATION_GRANT_GRAPH_PERMISSION=true"
    assert "is not granted by this deployment" in ran.stdout
    # The exact command, with this identity filled in, both as az calls and as this script.
    assert f"https://graph.microsoft.com/v1.0/servicePrincipals/{PRINCIPAL}/appRoleAssignments" in ran.stdout
    assert f'\\"appRoleId\\": \\"{OWNED_BY}\\"' in ran.stdout
    assert f"ROTATOR_PRINCIPAL_ID={PRINCIPAL} ROTATION_GRANT_GRAPH_PERMISSION=true sh" in ran.stdout


def test_an_existing_grant_is_reported_and_kept(fake: FakeCli) -> None:
    graph_answers(fake, granted=True)
    for asked in ("true", "false"):
        ran = run_hook(
            fake,
            "grant-graph-permission.sh",
            {"ROTATOR_PRINCIPAL_ID": PRINCIPAL, "ROTATION_GRANT_GRAPH_PERMISSION": asked},
        )
        assert ran.status == 0 and "holds Application.ReadWrite.OwnedBy" in ran.stdout
    assert posts(fake) == []


def test_the_grant_retries_while_entra_replicates_a_new_identity(fake: FakeCli) -> None:
    graph_answers(fake)
    not_replicated = (
        'Not Found({"error":{"code":"Request_ResourceNotFound","message":"Resource '
        f"'{PRINCIPAL}' does not exist or one of its queried reference-property objects are not present.\"}}}})"
    )
    fake.answer("--method POST", stderr=not_replicated, exit=1, times=2)

    ran = run_hook(
        fake,
        "grant-graph-permission.sh",
        {"ROTATOR_PRINCIPAL_ID": PRINCIPAL, "ROTATION_GRANT_GRAPH_PERMISSION": "true"},
    )

    assert ran.status == 0, ran.stderr
    assert "granted Application.ReadWrite.OwnedBy" in ran.stdout
    sent = posts(fake)
    assert len(sent) == 3
    assert all(f"/v1.0/servicePrincipals/{PRINCIPAL}/appRoleAssignments" in " ".join(c["args"]) for c in sent)
    assert json.loads(sent[-1]["body"]) == {"principalId": PRINCIPAL, "resourceId": GRAPH_SP, "appRoleId": OWNED_BY}
    assert fake.commands("sleep") == ["15", "30"]


def test_a_deployer_without_the_entra_role_gets_the_command_and_the_deployment_goes_on(fake: FakeCli) -> None:
    graph_answers(fake)
    denied = (
        'Forbidden({"error":{"code":"Authorization_RequestDenied",'
        '"message":"Insufficient privileges to complete the operation."}})'
    )
    fake.answer("--method POST", stderr=denied, exit=1)
    fake.answer("resource show", stdout="true\n")
    env = {
        "ROTATOR_PRINCIPAL_ID": PRINCIPAL,
        "ROTATION_GRANT_GRAPH_PERMISSION": "true",
        "ROTATION_VAULT_IDS": vault_id("rg-rot", "kv-a"),
    }

    alone = run_hook(fake, "grant-graph-permission.sh", env)
    assert alone.status == 2
    assert len(posts(fake)) == 1 and fake.commands("sleep") == [], "a refusal is not retried"
    assert "may not grant app roles" in alone.stderr and "An administrator" in alone.stderr

    hook = run_hook(fake, "postprovision.sh", env)
    assert hook.status == 0, "a missing grant must not stop `azd up` before the code deploys"
    assert "the deployment goes on" in hook.stderr


# ----------------------------------------------------------------------------- the sign-in evidence grant


def held(fake: FakeCli, role: str, *, granted: bool) -> None:
    """Whether the identity holds ``role``: answers the hook's check for that role only."""
    fake.answer("--method GET", f"appRoleId=='{role}'", stdout="1\n" if granted else "0\n")


def test_the_audit_log_grant_is_off_by_default_and_says_what_auto_does_without_it(fake: FakeCli) -> None:
    graph_answers(fake)
    ran = run_hook(fake, "grant-graph-permission.sh", {"ROTATOR_PRINCIPAL_ID": PRINCIPAL})
    assert ran.status == 0, ran.stderr
    assert posts(fake) == []
    assert "AuditLog.Read.All is not granted by this deployment (ROTATION_GRANT_AUDIT_LOG is not true)" in ran.stdout
    assert "the grace period only, without sign-in evidence" in ran.stdout
    assert (
        f"ROTATOR_PRINCIPAL_ID={PRINCIPAL} ROTATION_GRANT_AUDIT_LOG=true sh infra/hooks/grant-graph-permission.sh"
        in (ran.stdout)
    )

    # Asking for the Graph permission asks for that one only.
    ran = run_hook(
        fake,
        "grant-graph-permission.sh",
        {"ROTATOR_PRINCIPAL_ID": PRINCIPAL, "ROTATION_GRANT_GRAPH_PERMISSION": "true"},
    )
    assert ran.status == 0, ran.stderr
    assert [json.loads(c["body"])["appRoleId"] for c in posts(fake)] == [OWNED_BY]
    assert "AuditLog.Read.All is not granted by this deployment" in ran.stdout


def test_the_audit_log_grant_under_its_switch_retries_like_the_graph_grant(fake: FakeCli) -> None:
    held(fake, OWNED_BY, granted=True)
    graph_answers(fake)
    fake.answer("--method POST", stderr="Bad Request(Request_ResourceNotFound)", exit=1, times=2)

    ran = run_hook(
        fake,
        "grant-graph-permission.sh",
        {"ROTATOR_PRINCIPAL_ID": PRINCIPAL, "ROTATION_GRANT_AUDIT_LOG": "true"},
    )

    assert ran.status == 0, ran.stderr
    assert "holds Application.ReadWrite.OwnedBy" in ran.stdout
    assert f"granted AuditLog.Read.All to the rotator identity ({PRINCIPAL})" in ran.stdout
    sent = posts(fake)
    assert len(sent) == 3 and fake.commands("sleep") == ["15", "30"]
    assert json.loads(sent[-1]["body"]) == {"principalId": PRINCIPAL, "resourceId": GRAPH_SP, "appRoleId": AUDIT_LOG}
    assert all(f"/v1.0/servicePrincipals/{PRINCIPAL}/appRoleAssignments" in " ".join(c["args"]) for c in sent)


def test_an_existing_audit_log_grant_is_reported_and_kept(fake: FakeCli) -> None:
    held(fake, AUDIT_LOG, granted=True)
    graph_answers(fake, granted=True)
    for asked in ("true", "false"):
        ran = run_hook(
            fake,
            "grant-graph-permission.sh",
            {"ROTATOR_PRINCIPAL_ID": PRINCIPAL, "ROTATION_GRANT_AUDIT_LOG": asked},
        )
        assert ran.status == 0 and "the rotator identity holds AuditLog.Read.All" in ran.stdout, ran.stderr
    assert posts(fake) == []


def test_a_deployer_refused_both_grants_asks_once_and_hands_both_commands_to_an_administrator(fake: FakeCli) -> None:
    graph_answers(fake)
    denied = 'Forbidden({"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges."}})'
    fake.answer("--method POST", stderr=denied, exit=1)
    fake.answer("resource show", stdout="true\n")
    env = {
        "ROTATOR_PRINCIPAL_ID": PRINCIPAL,
        "ROTATION_GRANT_GRAPH_PERMISSION": "true",
        "ROTATION_GRANT_AUDIT_LOG": "true",
        "ROTATION_VAULT_IDS": vault_id("rg-rot", "kv-a"),
    }

    alone = run_hook(fake, "grant-graph-permission.sh", env)

    assert alone.status == 2
    assert len(posts(fake)) == 1, "the second grant is not asked for after a refusal"
    assert fake.commands("sleep") == []
    for role, switch in ((OWNED_BY, "ROTATION_GRANT_GRAPH_PERMISSION"), (AUDIT_LOG, "ROTATION_GRANT_AUDIT_LOG")):
        assert f'\\"appRoleId\\": \\"{role}\\"' in alone.stderr, role
        assert (
            f"ROTATOR_PRINCIPAL_ID={PRINCIPAL} {switch}=true sh infra/hooks/grant-graph-permission.sh" in alone.stderr
        )
    assert "AuditLog.Read.All is not tried either (the grant above was refused)" in alone.stderr

    hook = run_hook(fake, "postprovision.sh", env)
    assert hook.status == 0 and "the deployment goes on" in hook.stderr


# ----------------------------------------------------------------------------- RBAC check


def test_postprovision_stops_on_a_brought_vault_that_uses_access_policies(fake: FakeCli) -> None:
    graph_answers(fake)
    fake.answer("resource show --ids", vault_id("rg-rot", "kv-a"), stdout="true\n")
    fake.answer("resource show --ids", vault_id("rg-legacy", "kv-legacy"), stdout="false\n")
    env = {
        "ROTATOR_PRINCIPAL_ID": PRINCIPAL,
        "ROTATION_VAULT_IDS": f"{vault_id('rg-rot', 'kv-a')},{vault_id('rg-legacy', 'kv-legacy')}",
    }

    ran = run_hook(fake, "postprovision.sh", env)

    assert ran.status == 1
    assert "vault kv-legacy (resource group rg-legacy) authorizes with access policies" in ran.stderr
    assert (
        "az keyvault update --name kv-legacy --resource-group rg-legacy --enable-rbac-authorization true" in ran.stderr
    )
    assert "kv-a" not in ran.stderr and "kv-a authorizes with Azure RBAC" in ran.stdout
    # The Graph step still ran, so its command is on screen too.
    assert any("ad sp show" in c for c in fake.commands("az"))


def test_a_vault_the_deployer_cannot_read_fails_the_check_with_the_reason(fake: FakeCli) -> None:
    fake.answer("resource show", stderr="(AuthorizationFailed) no read on the vault\n", exit=1)
    ran = run_hook(fake, "check-vault-rbac.sh", {"ROTATION_VAULT_IDS": vault_id("rg-legacy", "kv-legacy")})
    assert ran.status == 1 and "could not read vault kv-legacy" in ran.stderr and "AuthorizationFailed" in ran.stderr


# ----------------------------------------------------------------------------- event subscriptions

EVENT_ENV = {
    "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
    "AZURE_RESOURCE_GROUP": "rg-rot",
    "FUNCTION_APP_NAME": f"func-rotator-{TOKEN}",
    "ROTATION_EVENT_TOPICS": f"rg-rot/evgt-kv-a-{TOKEN}:created,rg-legacy/their-topic:reused",
    "ROTATION_EVENT_SUBSCRIPTION_NAME": f"rotator-secret-expiry-{TOKEN}",
    "ROTATION_EVENT_ENDPOINT_ID": ENDPOINT,
    "ROTATION_EVENTGRID_IDENTITY_ID": EVENTGRID_IDENTITY,
    "ROTATION_DEAD_LETTER_STORAGE_ID": STORAGE,
    "ROTATION_DEAD_LETTER_CONTAINER": "eventgrid-deadletter",
}


def puts(fake: FakeCli) -> list[dict[str, Any]]:
    return [c for c in fake.calls("az") if c["args"][:3] == ["rest", "--method", "PUT"]]


def url_of(call: dict[str, Any]) -> str:
    args: list[str] = call["args"]
    return args[args.index("--url") + 1]


def event_answers(fake: FakeCli) -> None:
    fake.answer("--method GET", "systemTopics/their-topic?", stdout="Microsoft.KeyVault.vaults\n")
    fake.answer("--method GET", "eventSubscriptions", stdout="Succeeded\n")


def test_postdeploy_creates_exactly_the_event_subscriptions_and_provisions_nothing(fake: FakeCli) -> None:
    event_answers(fake)

    ran = run_hook(fake, "create-event-subscriptions.sh", EVENT_ENV)

    assert ran.status == 0, ran.stderr
    sent = puts(fake)
    assert [url_of(c).split("?")[0] for c in sent] == [
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-rot/providers/Microsoft.EventGrid/systemTopics/"
        f"evgt-kv-a-{TOKEN}/eventSubscriptions/rotator-secret-expiry-{TOKEN}",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-legacy/providers/Microsoft.EventGrid/systemTopics/"
        f"their-topic/eventSubscriptions/rotator-secret-expiry-{TOKEN}",
    ]
    ours, theirs = (json.loads(c["body"])["properties"] for c in sent)
    for body in (ours, theirs):
        assert body["destination"] == {
            "endpointType": "AzureFunction",
            "properties": {"resourceId": ENDPOINT, "maxEventsPerBatch": 1, "preferredBatchSizeInKilobytes": 64},
        }
        assert body["filter"] == {
            "includedEventTypes": ["Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired"]
        }
    assert ours["deadLetterWithResourceIdentity"] == {
        "identity": {"type": "UserAssigned", "userAssignedIdentity": EVENTGRID_IDENTITY},
        "deadLetterDestination": {
            "endpointType": "StorageBlob",
            "properties": {"resourceId": STORAGE, "blobContainerName": "eventgrid-deadletter"},
        },
    }
    # The vault's own topic does not carry the rotator's Event Grid identity: no dead letters there.
    assert "deadLetterWithResourceIdentity" not in theirs
    assert "no dead-lettering" in ran.stdout
    # Only these ARM calls: no deployment, no second provisioning, no app settings.
    assert fake.calls("azd") == []
    assert all(c["args"][0] == "rest" for c in fake.calls("az")), fake.commands("az")


def test_postdeploy_retries_until_event_grid_finds_the_function(fake: FakeCli) -> None:
    event_answers(fake)
    not_yet = (
        'Bad Request({"error":{"code":"InvalidRequest","message":"Function \'on_key_vault_event\' does not exist."}})'
    )
    fake.answer("--method PUT", f"evgt-kv-a-{TOKEN}", stderr=not_yet, exit=1, times=1)

    ran = run_hook(fake, "create-event-subscriptions.sh", EVENT_ENV)

    assert ran.status == 0, ran.stderr
    assert len(puts(fake)) == 3  # one refused, then both topics
    assert fake.commands("sleep") == ["30"]


def test_postdeploy_that_cannot_subscribe_says_how_to_run_it_again(fake: FakeCli) -> None:
    event_answers(fake)
    fake.answer("--method PUT", f"evgt-kv-a-{TOKEN}", stderr="Bad Request(nope)", exit=1)

    ran = run_hook(fake, "create-event-subscriptions.sh", EVENT_ENV)

    assert ran.status == 1
    assert f"not subscribed to: rg-rot/evgt-kv-a-{TOKEN}" in ran.stderr
    assert "azd hooks run postdeploy" in ran.stderr
    assert len([c for c in puts(fake) if f"evgt-kv-a-{TOKEN}" in url_of(c)]) == 5
    assert len([c for c in puts(fake) if "their-topic" in url_of(c)]) == 1  # the other vault is still done


def test_postdeploy_refuses_a_named_topic_that_is_not_a_key_vault_topic(fake: FakeCli) -> None:
    fake.answer("--method GET", "systemTopics/their-topic?", stdout="Microsoft.Storage.StorageAccounts\n")
    fake.answer("--method GET", "eventSubscriptions", stdout="Succeeded\n")

    ran = run_hook(fake, "create-event-subscriptions.sh", EVENT_ENV)

    assert ran.status == 1 and "rg-legacy/their-topic is not a Key Vault system topic" in ran.stderr
    assert all("their-topic" not in url_of(c) for c in puts(fake))


def test_postdeploy_without_the_outputs_of_a_provision_stops_at_once(fake: FakeCli) -> None:
    ran = run_hook(fake, "create-event-subscriptions.sh", {})
    assert ran.status == 1 and "AZURE_SUBSCRIPTION_ID is not set" in ran.stderr
    assert fake.calls() == []


# ----------------------------------------------------------------------------- after azd down


def test_preprovision_hands_this_environments_soft_deleted_vaults_to_the_deployment(fake: FakeCli) -> None:
    fake.answer("keyvault list-deleted", stdout="kv-abc123def456g\nkv-payments-prod\n")

    ran = run_hook(fake, "recover-deleted-vaults.sh", {"AZURE_ENV_NAME": "rotator-prod"})

    assert ran.status == 0, ran.stderr
    (listing,) = [c for c in fake.commands("az") if "list-deleted" in c]
    assert """[?properties.tags."azd-env-name"=='rotator-prod'].name""" in listing
    assert fake.commands("azd") == ['env set ROTATION_RECOVER_VAULT_NAMES ["kv-abc123def456g","kv-payments-prod"]']
    assert "recovering the soft-deleted vault(s) of environment rotator-prod" in ran.stdout


def test_preprovision_with_nothing_deleted_clears_the_list(fake: FakeCli) -> None:
    ran = run_hook(fake, "recover-deleted-vaults.sh", {"AZURE_ENV_NAME": "rotator-prod"})
    assert ran.status == 0 and ran.stdout == ""
    assert fake.commands("azd") == ["env set ROTATION_RECOVER_VAULT_NAMES []"]


def test_postdown_removes_only_this_environments_subscriptions_from_topics_azd_down_left(fake: FakeCli) -> None:
    env = dict(EVENT_ENV)
    env["ROTATION_EVENT_TOPICS"] += f",rg-shared/evgt-kv-s-{TOKEN}:created"
    fake.answer("--method DELETE", "rg-shared", stderr="Not Found(ResourceNotFound)", exit=1)

    ran = run_hook(fake, "remove-event-subscriptions.sh", env)

    assert ran.status == 0, ran.stderr
    deleted = [url_of(c).split("?")[0] for c in fake.calls("az") if c["args"][:3] == ["rest", "--method", "DELETE"]]
    # rg-rot went with azd down; the others lose only the subscription named for this environment.
    assert deleted == [
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-legacy/providers/Microsoft.EventGrid/systemTopics/"
        f"their-topic/eventSubscriptions/rotator-secret-expiry-{TOKEN}",
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-shared/providers/Microsoft.EventGrid/systemTopics/"
        f"evgt-kv-s-{TOKEN}/eventSubscriptions/rotator-secret-expiry-{TOKEN}",
    ]
    assert f"rg-shared/evgt-kv-s-{TOKEN} has no subscription" in ran.stdout
