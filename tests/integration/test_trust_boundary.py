"""The trust boundary, attacked: an identity with nothing but "Key Vault Secrets Officer" on one
managed vault, writing tags with the real azure-keyvault-secrets SDK, and the real command line
(`python -m rotation`) as the rotator against the local cloud.

The app's owners decide where its secret may live (its `tags` name the binding); nothing written in
a Key Vault tag can make the rotator create a credential for an app that did not bind that secret, or
remove a credential it did not create for this vault host and secret.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator.rotator_profile import RotatorCloud
from localcloud.cloud import ManagedIdentity
from rotation.cli import main
from rotation.domain.model import vault_host
from tests.integration.seed import seed_managed_secret, unique

FAST = {"ROTATION_VALIDATION_SUCCESSES": "1", "ROTATION_GRACE_HOURS": "0", "ROTATION_ORPHAN_MARGIN_MINUTES": "0"}
OFFICER = "Key Vault Secrets Officer"


@pytest.fixture(autouse=True)
def _fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def mark(cloud: RotatorCloud) -> int:
    return int(cloud.admin("GET", "/requests?since=0")["next"])


def graph_writes_since(cloud: RotatorCloud, since: int) -> list[str]:
    log = cloud.admin("GET", f"/requests?since={since}")["requests"]
    return [r["path"] for r in log if r["service"] == "graph" and r["method"] != "GET"]


def keys(cloud: RotatorCloud, object_id: str) -> set[str]:
    return {p.key_id for p in cloud.passwords(object_id)}


def attacker(cloud: RotatorCloud, vault: str = "kv-second", **extra: Any) -> ManagedIdentity:
    """A user-assigned managed identity with Key Vault Secrets Officer on ONE vault and nothing else."""
    return cloud.create_managed_identity(unique("attacker"), vault_roles={vault: [OFFICER]}, **extra)


async def attacker_writes(
    cloud: RotatorCloud,
    who: ManagedIdentity,
    vault: str,
    name: str,
    value: str,
    tags: dict[str, str],
    expires: datetime | None = None,
) -> None:
    """The attacker writes a version (its own rights, the real SDK)."""
    async with (
        ManagedIdentityCredential(client_id=who.app_id) as credential,
        SecretClient(cloud.vault_url(vault), credential, verify_challenge_resource=False) as client,
    ):
        await client.set_secret(name, value, tags=tags, expires_on=expires)


async def attacker_retags(
    cloud: RotatorCloud, who: ManagedIdentity, vault: str, name: str, tags: dict[str, str]
) -> None:
    async with (
        ManagedIdentityCredential(client_id=who.app_id) as credential,
        SecretClient(cloud.vault_url(vault), credential, verify_challenge_resource=False) as client,
    ):
        current = await client.get_secret(name)
        await client.update_secret_properties(
            name, current.properties.version, tags={**(current.properties.tags or {}), **tags}
        )


def test_a_planted_provider_address_mints_nothing_and_reports_not_bound(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # The victim team's app, owned by the rotator, bound to the team's own secret in kv-local.
    victim = seed_managed_secret(cloud, vault="kv-local", expires_in_days=60)
    human = next(p for p in cloud.passwords(victim.object_id) if p.key_id == victim.key_id)
    mallory = attacker(cloud)
    planted = unique("planted")
    end = datetime.now(UTC) + timedelta(days=1)
    # Due at once (expires tomorrow), with a forged retirement and hint+expiry adoption bait too.
    asyncio.run(
        attacker_writes(
            cloud,
            mallory,
            "kv-second",
            planted,
            (human.hint or "abc") + "x" * 37,
            {
                "ProviderAddress": victim.app_id,
                "RetireCredentialId": victim.key_id,
                "RetireAfter": "2020-01-01T00:00:00Z",
            },
            expires=end.replace(microsecond=0),
        )
    )
    before = keys(cloud, victim.object_id)
    since = mark(cloud)

    status, out, _ = run(capsys, "rotate", "kv-second", planted, "--emergency", "--json")
    outcome = json.loads(out)
    assert status != 0 and outcome["error"]["code"] == "NotBound", outcome
    assert f"python -m rotation adopt kv-second {planted} --app {victim.app_id}" in outcome["error"]["message"]

    status, out, _ = run(capsys, "sweep", "--json")
    swept = json.loads(out)
    mine = [o for o in swept["outcomes"] if o["secret"] == planted]
    assert mine and mine[0]["error"]["code"] == "NotBound", swept

    status, out, _ = run(capsys, "status", "--json")
    row = next(r for r in json.loads(out)["secrets"] if r["secret"] == planted)
    assert (
        row["bound"] is False
        and row["bindCommand"] == f"python -m rotation adopt kv-second {planted} --app {victim.app_id}"
    )
    assert next(r for r in json.loads(out)["secrets"] if r["secret"] == victim.name)["bound"] is True
    status, out, _ = run(capsys, "status", "kv-second")
    assert status == 0 and f"not bound: python -m rotation adopt kv-second {planted}" in out

    # No addPassword, no removePassword, no write to the app at all; no value written where Mallory reads.
    # (The sweep may rotate other tests' bound secrets on the shared cloud: only the victim's app counts.)
    assert [p for p in graph_writes_since(cloud, since) if victim.object_id in p or victim.app_id in p] == []
    assert keys(cloud, victim.object_id) == before
    assert len(cloud.secret_versions("kv-second", planted)) == 1


def test_a_forged_retirement_of_another_teams_credential_is_refused(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed_managed_secret(cloud, vault="kv-local", expires_in_days=60)
    other_team = cloud.admin(
        "POST", f"/applications/{seeded.object_id}/passwords", {"displayName": "another team's CI credential"}
    )
    mallory = attacker(cloud, vault="kv-local")
    asyncio.run(
        attacker_retags(
            cloud,
            mallory,
            "kv-local",
            seeded.name,
            {"RetireCredentialId": other_team["keyId"], "RetireAfter": "2020-01-01T00:00:00Z"},
        )
    )

    status, out, _ = run(capsys, "rotate", "kv-local", seeded.name, "--json")

    outcome = json.loads(out)
    assert status == 0, outcome
    assert other_team["keyId"] in keys(cloud, seeded.object_id)
    assert outcome["retiredKeyIds"] == [] and any("refused to retire" in w for w in outcome["warnings"]), outcome


def test_two_deployments_sharing_an_alias_never_remove_each_others_credentials(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One app, one secret name, two vaults; deployment A calls kv-local "kv-prod", so does deployment B
    # for kv-second. Both are bound by the app's owners.
    seeded = seed_managed_secret(cloud, vault="kv-local", expires_in_days=1)
    from tests.integration.seed import bind, write_secret

    bind(cloud, seeded.app_id, "kv-second", seeded.name)
    asyncio.run(
        write_secret(
            cloud,
            "kv-second",
            seeded.name,
            seeded.value,
            {"ProviderAddress": seeded.app_id, "CredentialId": seeded.key_id},
            datetime.now(UTC).replace(microsecond=0) + timedelta(days=60),
        )
    )
    deployment_a = f"kv-prod={cloud.vault_url('kv-local')}"
    deployment_b = f"kv-prod={cloud.vault_url('kv-second')}"

    monkeypatch.setenv("ROTATION_GRACE_HOURS", "24")
    monkeypatch.setenv("ROTATION_VAULTS", deployment_a)
    status, out, _ = run(capsys, "rotate", "kv-prod", seeded.name, "--json")
    created = json.loads(out)["createdKeyId"]
    assert status == 0 and created
    name = next(p.display_name for p in cloud.passwords(seeded.object_id) if p.key_id == created)
    assert name is not None and name.startswith(f"rotator:{vault_host(cloud.vault_url('kv-local'))}/")

    monkeypatch.setenv("ROTATION_VAULTS", deployment_b)
    status, out, _ = run(capsys, "rotate", "kv-prod", seeded.name, "--json")
    assert status == 0, out
    assert json.loads(out)["removedOrphans"] == []
    assert created in keys(cloud, seeded.object_id)  # A's live credential survives B's orphan sweep


def test_a_tenant_outside_the_allow_list_is_refused_and_nothing_is_done(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    other = cloud.admin("POST", "/tenants", {})
    seeded = seed_managed_secret(cloud, vault="kv-local", expires_in_days=1, tags={"TenantId": other["tenantId"]})
    since = mark(cloud)

    status, out, _ = run(capsys, "rotate", "kv-local", seeded.name, "--json")

    outcome = json.loads(out)
    assert status != 0 and outcome["error"]["code"] == "BadTags", outcome
    assert "ROTATION_ALLOWED_TENANTS" in outcome["error"]["message"]
    assert graph_writes_since(cloud, since) == []
    assert len(cloud.secret_versions("kv-local", seeded.name)) == 1


def test_adopt_by_a_caller_who_is_no_owner_is_refused_and_writes_nothing(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_managed_secret(cloud, vault="kv-local", expires_in_days=60, bound=False)
    tags_before = cloud.application_tags(seeded.object_id)
    # Mallory may read apps (Application.Read.All) and write kv-local, but owns no app.
    mallory = attacker(cloud, vault="kv-local", graph_app_roles=["Application.Read.All"])
    monkeypatch.setenv("AZURE_CLIENT_ID", mallory.app_id)
    versions_before = len(cloud.secret_versions("kv-local", seeded.name))
    tags_of_version = dict(cloud.secret_versions("kv-local", seeded.name)[-1].tags or {})

    status, _out, err = run(capsys, "adopt", "kv-local", seeded.name, "--app", seeded.app_id)

    assert status != 0
    assert f"you must be an owner of app {seeded.app_id} or an admin" in err
    assert f"python -m rotation adopt kv-local {seeded.name} --app {seeded.app_id}" in err
    # The by-hand way names the whole list (azure-cli refuses `--add tags` on an app without tags).
    by_hand = re.search(rf"az ad app update --id {seeded.app_id} --set tags='(\[.*?\])'", err)
    assert by_hand is not None, err
    host = vault_host(cloud.vault_url("kv-local"))
    assert json.loads(by_hand.group(1)) == [*tags_before, f"rotator-binding:{host}/{seeded.name}#{seeded.key_id}"]
    assert cloud.application_tags(seeded.object_id) == tags_before
    assert len(cloud.secret_versions("kv-local", seeded.name)) == versions_before
    assert dict(cloud.secret_versions("kv-local", seeded.name)[-1].tags or {}) == tags_of_version


def test_adopt_by_an_owner_binds_and_the_rotator_then_rotates(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = seed_managed_secret(cloud, vault="kv-local", expires_in_days=1, bound=False)
    cloud.set_application_tags(seeded.object_id, ["team:payments"])
    status, out, _ = run(capsys, "rotate", "kv-local", seeded.name, "--json")
    assert status != 0 and json.loads(out)["error"]["code"] == "NotBound"

    # The CLI runs as the caller: here the rotator's identity, an owner of the app.
    status, out, err = run(capsys, "adopt", "kv-local", seeded.name, "--app", seeded.app_id, "--json")
    assert status == 0, err
    host = vault_host(cloud.vault_url("kv-local"))
    expected = f"rotator-binding:{host}/{seeded.name}#{seeded.key_id}".lower()
    assert json.loads(out)["binding"] == expected
    assert cloud.application_tags(seeded.object_id) == ["team:payments", expected]  # other tags kept

    status, out, _ = run(capsys, "rotate", "kv-local", seeded.name, "--json")
    assert status == 0 and json.loads(out)["action"] == "rotated", out


def test_the_rotators_own_app_is_never_rotated(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mallory = attacker(cloud)
    name = unique("own")
    asyncio.run(attacker_writes(cloud, mallory, "kv-second", name, "x" * 40, {"ProviderAddress": cloud.rotator.app_id}))
    monkeypatch.setenv("AZURE_CLIENT_ID", cloud.rotator.app_id)
    since = mark(cloud)

    status, out, _ = run(capsys, "rotate", "kv-second", name, "--json")

    outcome = json.loads(out)
    assert status != 0 and outcome["error"]["code"] == "OwnIdentity", outcome
    assert graph_writes_since(cloud, since) == []
