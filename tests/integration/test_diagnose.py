"""`python -m rotation diagnose` against the local cloud: every check, triggered by data seeded for it.

The command runs in-process through `rotation.cli.main` with the shared cloud's environment, so
the production wiring (settings, managed identity, msgraph-sdk, the Key Vault aio client, the token
probe) is what is tested. Every output is scanned for every secret value the cloud ever issued and
for every value a test stored.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator.rotator_profile import RotatorCloud
from rotation.cli import main
from rotation.domain.model import is_guid, vault_host
from rotation.tools.diagnose import Status, render_text
from tests.integration.seed import bind, create_owned_app, unique, write_secret

VAULT = "kv-local"
ROTATION_ID = "20250101T000000Z-0badc0de"

#: Every value a test stored in a vault; outputs are scanned for each (GUID-shaped ones excepted:
#: a keyId stored by mistake is a public id that Graph lists, and the reports name keyIds).
STORED: set[str] = set()


# --------------------------------------------------------------------------------------------------
# Seeding


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def add_password(
    cloud: RotatorCloud,
    app: dict[str, Any],
    *,
    days: float = 60,
    started_days_ago: float = 1,
    name: str = "made by a human",
) -> dict[str, Any]:
    """A password that started a while ago (so no propagation warning) and ends in `days`."""
    now = datetime.now(UTC)
    body = {
        "displayName": name,
        "startDateTime": iso(now - timedelta(days=started_days_ago)),
        "endDateTime": iso(now + timedelta(days=days)),
    }
    password: dict[str, Any] = cloud.admin("POST", f"/applications/{app['id']}/passwords", body)
    return password


def new_app(cloud: RotatorCloud, **password: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    app = create_owned_app(cloud, unique("svc"))
    return app, add_password(cloud, app, **password)


def store(
    cloud: RotatorCloud,
    value: str,
    tags: dict[str, str] | None = None,
    *,
    expires: datetime | None = None,
    name: str | None = None,
    vault: str = VAULT,
) -> str:
    name = name or unique("secret")
    STORED.add(value)
    asyncio.run(write_secret(cloud, vault, name, value, tags, expires))
    return name


def managed_tags(app: dict[str, Any], password: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"ProviderAddress": app["appId"], "CredentialId": password["keyId"], **extra}


def end_of(password: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(password["endDateTime"].replace("Z", "+00:00"))


def remove_credential(cloud: RotatorCloud, app: dict[str, Any], key_id: str) -> None:
    """What a person deleting the secret in the portal (or a rotation elsewhere) leaves behind."""
    cloud.admin("DELETE", f"/applications/{app['id']}/passwords/{key_id}")


def backdate_latest_version(cloud: RotatorCloud, name: str, delta: timedelta, vault: str = VAULT) -> None:
    cloud.admin("POST", f"/vaults/{vault}/secrets/{name}/backdate", {"seconds": delta.total_seconds()})


async def _vault_client_call(cloud: RotatorCloud, vault: str, action: str, name: str, version: str = "") -> None:
    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(cloud.vault_url(vault), credential, verify_challenge_resource=False) as client,
    ):
        if action == "delete":
            await client.delete_secret(name)
        elif action == "disable":
            await client.update_secret_properties(name, version, enabled=False)


def latest_version(cloud: RotatorCloud, name: str, vault: str = VAULT) -> str:
    return cloud.secret_versions(vault, name)[-1].version


# --------------------------------------------------------------------------------------------------
# Running the command


def assert_no_secret_value(cloud: RotatorCloud, text: str) -> None:
    issued: list[str] = cloud.admin("GET", "/issued-secrets")["secrets"]
    stored = [v.strip() for v in STORED if not is_guid(v.strip())]
    for value in [*issued, *stored]:
        if len(value) >= 8:
            assert value not in text, "a secret value reached the output"


def run(capsys: pytest.CaptureFixture[str], cloud: RotatorCloud, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert_no_secret_value(cloud, out + err)
    return code, out, err


def diagnose_json(
    capsys: pytest.CaptureFixture[str], cloud: RotatorCloud, secret: str, *flags: str
) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, cloud, "diagnose", VAULT, secret, *flags, "--json")
    result = json.loads(out)  # stdout is exactly one JSON document
    assert result["ok"] is (code == 0)
    return code, result


def status(result: dict[str, Any], check_id: str) -> str:
    return str(next(c for c in result["checks"] if c["id"] == check_id)["status"])


def check(result: dict[str, Any], check_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in result["checks"] if c["id"] == check_id)
    return found


@pytest.fixture
def healthy(cloud: RotatorCloud) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))
    bind(cloud, app["appId"], VAULT, name, password["keyId"])
    yield app, password, name


# --------------------------------------------------------------------------------------------------
# A healthy secret


def test_a_healthy_managed_secret_passes_and_signs_in(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    app, password, name = healthy
    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 0
    failing = [c for c in result["checks"] if c["status"] in ("fail", "warn")]
    assert failing == []
    assert result["appId"] == app["appId"] and result["appIdSource"] == "ProviderAddress tag"
    assert result["tenantIdSource"] == "ROTATION_TENANT_ID"
    assert result["value"]["length"] == 40 and result["value"]["currentFormat"] is True
    assert result["value"]["hint"] == password["secretText"][:3]
    assert check(result, "credential.match")["evidence"].startswith(password["keyId"])
    assert result["probe"] == {"ok": True, "code": None, "message": "token issued"}
    assert result["mostLikelyCause"] is None


def test_a_managed_but_unbound_secret_fails_the_binding_check_with_the_command(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))

    _, result = diagnose_json(capsys, cloud, name)

    binding = check(result, "binding")
    assert binding["status"] == "warn" and binding["evidence"].startswith("not bound")
    assert f"python -m rotation adopt {VAULT} {name} --app {app['appId']}" in binding["remedy"]
    bind(cloud, app["appId"], VAULT, name, password["keyId"])
    _, result = diagnose_json(capsys, cloud, name)
    assert check(result, "binding")["status"] == "pass"


def test_human_output_lists_checks_then_cause_and_remedy(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["keyId"], {"ProviderAddress": app["appId"]})

    code, out, _ = run(capsys, cloud, "diagnose", VAULT, name)

    assert code == 1
    assert "✘ Value is a client secret value, not a Secret ID" in out
    assert "✔ Secret exists" in out
    lines = out.splitlines()
    cause = next(i for i, line in enumerate(lines) if line.startswith("Most likely cause:"))
    assert "Secret ID (keyId)" in lines[cause] and "[value.secret_id]" in lines[cause]
    assert any(line.startswith("What to do: Store that credential's VALUE") for line in lines[cause:])
    assert lines[-1].startswith("Result: ")
    assert "Run with --probe" not in out  # only said when nothing failed


def test_plain_ascii_when_the_terminal_is_not_utf8(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    from rotation.runtime import open_runtime
    from rotation.tools.diagnose import diagnose

    _, _, name = healthy

    async def run_it() -> str:
        async with open_runtime() as runtime:
            return render_text(await diagnose(runtime, VAULT, name), unicode=False)

    text = asyncio.run(run_it())
    assert text.isascii()
    assert "PASS Secret exists" in text and "SKIP Sign-in" in text


# --------------------------------------------------------------------------------------------------
# 1. The secret in Key Vault


def test_missing_secret(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = diagnose_json(capsys, cloud, unique("nothing"))
    assert code == 1
    assert status(result, "secret.exists") == "fail"
    assert "none deleted" in check(result, "secret.exists")["evidence"]
    assert result["mostLikelyCause"]["id"] == "secret.exists"
    assert status(result, "value.secret_id") == "skip"


def test_soft_deleted_secret_says_recover_or_purge(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    _, _, name = healthy
    asyncio.run(_vault_client_call(cloud, VAULT, "delete", name))

    code, result = diagnose_json(capsys, cloud, name)

    assert code == 1
    exists = check(result, "secret.exists")
    assert exists["status"] == "fail"
    assert "soft-deleted" in exists["evidence"]
    assert "az keyvault secret recover" in exists["remedy"] and "purge" in exists["remedy"]


def test_disabled_latest_version(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    _, _, name = healthy
    asyncio.run(_vault_client_call(cloud, VAULT, "disable", name, latest_version(cloud, name)))

    code, result = diagnose_json(capsys, cloud, name)

    assert code == 1
    assert status(result, "secret.exists") == "pass"  # its attributes came from the version list
    assert status(result, "secret.enabled") == "fail"
    assert "403" in check(result, "secret.enabled")["cause"]
    assert result["mostLikelyCause"]["id"] == "secret.enabled"


def test_version_past_its_expiry(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = store(
        cloud, password["secretText"], managed_tags(app, password), expires=datetime.now(UTC) - timedelta(days=2)
    )
    _, result = diagnose_json(capsys, cloud, name)
    assert status(result, "secret.validity") == "fail"
    assert "expired on" in check(result, "secret.validity")["evidence"]


def test_version_without_expiry_warns(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"], managed_tags(app, password))
    code, result = diagnose_json(capsys, cloud, name)
    assert code == 0
    assert status(result, "secret.validity") == "warn"


# --------------------------------------------------------------------------------------------------
# 2. The value's shape


def test_secret_id_stored_as_value(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["keyId"], {"ProviderAddress": app["appId"]})

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 1
    found = check(result, "value.secret_id")
    assert found["status"] == "fail"
    assert "Secret ID (keyId) of credential 'made by a human'" in found["evidence"]
    assert "secret ID was stored, not the value" in found["cause"]
    assert result["mostLikelyCause"]["id"] == "value.secret_id"
    assert result["whatToDo"].startswith("Store that credential's VALUE")
    assert result["probe"]["code"] == 7000215  # Entra agrees


def test_any_guid_is_not_a_secret_value(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, _ = new_app(cloud)
    name = store(cloud, app["appId"], {"ProviderAddress": app["appId"]})
    _, result = diagnose_json(capsys, cloud, name)
    found = check(result, "value.secret_id")
    assert found["status"] == "fail"
    assert "equal to the app's Application (client) ID" in found["evidence"]


@pytest.mark.parametrize(
    ("wrap", "expected"),
    [
        (lambda v: v + "\n", "a trailing line break"),
        (lambda v: v + "\r\n", "a trailing line break"),
        (lambda v: "  " + v, "leading whitespace"),
        (lambda v: v + " ", "trailing whitespace"),
        (lambda v: v[:20] + " " + v[20:], "inside"),
    ],
    ids=["newline", "crlf", "leading-spaces", "trailing-space", "inner-space"],
)
def test_whitespace_and_line_breaks(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], wrap: Any, expected: str
) -> None:
    app, password = new_app(cloud)
    name = store(cloud, wrap(password["secretText"]), managed_tags(app, password), expires=end_of(password))

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 1
    found = check(result, "value.whitespace")
    assert found["status"] == "fail" and expected in found["evidence"]
    assert result["mostLikelyCause"]["id"] == "value.whitespace"
    assert result["probe"]["code"] == 7000215
    # The hint is taken from the value without the whitespace, so the credential is still recognised.
    assert status(result, "credential.match") == "pass"


def test_a_truncated_value_in_the_current_format_fails_and_entra_refuses_it(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Entra's current values are all 40 characters: a shorter one is a definite failure, the lead
    cause even without --probe (the hint still matches the tagged credential)."""
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"][:30], managed_tags(app, password), expires=end_of(password))

    code, result = diagnose_json(capsys, cloud, name)

    length = check(result, "value.length")
    assert length["status"] == "fail" and "truncated, 10 character(s) missing" in length["evidence"]
    assert "30 characters" in length["evidence"] and "exactly 40 characters long" in length["cause"]
    assert code == 1 and result["mostLikelyCause"]["id"] == "value.length"
    code, result = diagnose_json(capsys, cloud, name, "--probe")
    assert code == 1 and result["probe"]["code"] == 7000215


def test_too_short_value_in_the_current_format_fails(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"][:12], managed_tags(app, password), expires=end_of(password))
    code, result = diagnose_json(capsys, cloud, name)
    assert code == 1 and status(result, "value.length") == "fail"


def test_too_short_value_of_an_older_format_warns(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, _ = new_app(cloud)
    name = store(cloud, "abcdefghijkl", {"ProviderAddress": app["appId"]})
    _, result = diagnose_json(capsys, cloud, name)
    assert status(result, "value.length") == "warn"
    assert "at least 16" in check(result, "value.length")["cause"]


def test_characters_that_shells_and_forms_mangle(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, _ = new_app(cloud)
    name = store(cloud, "Ab$cd!ef+gh&ij%kl`mn=op\\qr", {"ProviderAddress": app["appId"]})
    _, result = diagnose_json(capsys, cloud, name)
    found = check(result, "value.characters")
    assert found["status"] == "warn"
    for fragment in ("'$'", "'!'", "'`'", "'\\'", "'%'", "'+'", "'&'", "'='"):
        assert fragment in found["evidence"], fragment
    assert result["value"]["shellCharacters"] == ["$", "`", "!", "\\", "%"]


# --------------------------------------------------------------------------------------------------
# 3. Tenant and app


def test_malformed_tenant(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: Any) -> None:
    _, _, name = healthy
    code, result = diagnose_json(capsys, cloud, name, "--tenant", "contoso/oauth2")
    assert code == 1
    assert status(result, "tenant.format") == "fail"
    assert "AADSTS900023" in check(result, "tenant.format")["evidence"]
    assert status(result, "tenant.exists") == "skip"
    assert result["mostLikelyCause"]["id"] == "tenant.format"


def test_unknown_tenant(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: Any) -> None:
    _, _, name = healthy
    code, result = diagnose_json(capsys, cloud, name, "--tenant", str(uuid.uuid4()), "--probe")
    assert code == 1
    found = check(result, "tenant.exists")
    assert found["status"] == "fail" and "AADSTS90002" in found["evidence"]
    assert result["mostLikelyCause"]["id"] == "tenant.exists"
    assert result["probe"]["code"] == 90002


def test_multi_tenant_alias_is_not_a_tenant(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: Any
) -> None:
    _, _, name = healthy
    _, result = diagnose_json(capsys, cloud, name, "--tenant", "common")
    assert status(result, "tenant.format") == "fail"


def test_tenant_by_domain_resolves_to_the_rotators_tenant(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: Any
) -> None:
    _, _, name = healthy
    state = cloud.admin("GET", "/state")
    domain = next(t["defaultDomain"] for t in state["tenants"] if t["tenantId"] == cloud.tenant_id)
    code, result = diagnose_json(capsys, cloud, name, "--tenant", domain)
    assert code == 0
    assert cloud.tenant_id in check(result, "tenant.exists")["evidence"]
    assert status(result, "app.exists") == "pass"


def test_unknown_app_is_the_700016_family(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: Any
) -> None:
    _, _, name = healthy
    code, result = diagnose_json(capsys, cloud, name, "--app", str(uuid.uuid4()), "--probe")
    assert code == 1
    found = check(result, "app.exists")
    assert found["status"] == "fail" and "Application (client) ID" in found["remedy"]
    assert result["mostLikelyCause"]["id"] == "app.exists"
    assert result["probe"]["code"] == 700016


def test_object_id_instead_of_app_id(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"], {"ProviderAddress": app["id"]}, expires=end_of(password))
    code, result = diagnose_json(capsys, cloud, name)
    assert code == 1
    found = check(result, "app.exists")
    assert found["status"] == "fail"
    assert "Object ID" in found["evidence"] and app["appId"] in found["remedy"]


def test_app_id_that_is_no_guid(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], healthy: Any) -> None:
    _, _, name = healthy
    _, result = diagnose_json(capsys, cloud, name, "--app", "my-service")
    assert status(result, "app.id") == "fail"
    assert status(result, "app.exists") == "skip"


def test_app_the_rotator_does_not_own_is_read_all_the_same(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Application.ReadWrite.OwnedBy reads every app of the tenant (the Graph permissions reference);
    only writing needs ownership, and diagnose writes nothing."""
    foreign = cloud.admin("POST", "/applications", {"displayName": unique("foreign")})
    password = add_password(cloud, foreign)
    name = store(cloud, password["secretText"], {"ProviderAddress": foreign["appId"]}, expires=end_of(password))
    code, result = diagnose_json(capsys, cloud, name, "--probe")
    assert status(result, "app.exists") == "pass"
    assert status(result, "credential.match") == "pass"
    assert code == 0 and result["probe"]["ok"] is True


def test_app_graph_refuses_to_show_is_a_warning(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    """A Graph that refuses the read (an identity without any Application.* permission) leaves the
    credential checks undone, says so, and the probe still tests the sign-in."""
    app = cloud.admin("POST", "/applications", {"displayName": unique("unreadable")})
    password = add_password(cloud, app)
    name = store(cloud, password["secretText"], {"ProviderAddress": app["appId"]}, expires=end_of(password))
    cloud.admin(
        "POST",
        "/faults",
        {"service": "graph", "method": "GET", "pathRegex": "/applications", "status": 403, "count": 10},
    )
    code, result = diagnose_json(capsys, cloud, name, "--probe")
    assert status(result, "app.exists") == "warn"
    assert "owner" in check(result, "app.exists")["remedy"]
    assert status(result, "credential.match") == "skip"
    assert code == 0 and result["probe"]["ok"] is True  # the sign-in itself still works


def test_app_in_another_tenant_is_checked_by_the_probe(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    other = cloud.admin("POST", "/tenants", {})
    app = cloud.admin("POST", "/applications", {"displayName": unique("elsewhere"), "tenantId": other["tenantId"]})
    password = add_password(cloud, app)
    name = store(cloud, password["secretText"], {"ProviderAddress": app["appId"], "TenantId": other["tenantId"]})

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert result["tenantIdSource"] == "TenantId tag"
    assert status(result, "tenant.exists") == "pass"
    found = check(result, "app.exists")
    assert found["status"] == "skip" and "its own tenant" in found["evidence"]
    assert code == 0 and result["probe"]["ok"] is True


# --------------------------------------------------------------------------------------------------
# 4. The app's credentials


def test_rotated_in_entra_but_not_in_the_vault(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, old = new_app(cloud)
    add_password(cloud, app, name="the new one")
    name = store(cloud, old["secretText"], managed_tags(app, old), expires=end_of(old))
    remove_credential(cloud, app, old["keyId"])

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 1
    found = check(result, "credential.match")
    assert found["status"] == "fail"
    assert "no longer a credential of the app" in found["evidence"]
    assert "rotated or deleted in Entra but not in the vault" in found["cause"]
    assert result["mostLikelyCause"]["id"] == "credential.match"
    assert result["probe"]["code"] == 7000215


def test_unmanaged_secret_needs_the_app_flag_and_then_matches_by_hint(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app, old = new_app(cloud)
    name = store(cloud, old["secretText"])  # an operator's secret: no tags at all

    code, result = diagnose_json(capsys, cloud, name)
    assert code == 0
    assert status(result, "app.id") == "skip" and status(result, "rotation.tags") == "skip"

    code, result = diagnose_json(capsys, cloud, name, "--app", app["appId"])
    assert code == 0
    assert check(result, "credential.match")["evidence"].endswith("(by hint)")

    remove_credential(cloud, app, old["keyId"])
    add_password(cloud, app, name="replacement")
    code, result = diagnose_json(capsys, cloud, name, "--app", app["appId"], "--probe")
    assert code == 1
    found = check(result, "credential.match")
    assert found["status"] == "fail" and "rotated or deleted in Entra" in found["cause"]
    assert result["probe"]["code"] == 7000215


def test_value_of_another_app(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, _ = new_app(cloud)
    _, other_password = new_app(cloud)
    name = store(cloud, other_password["secretText"], {"ProviderAddress": app["appId"]})
    code, result = diagnose_json(capsys, cloud, name, "--probe")
    assert code == 1
    assert status(result, "credential.match") == "fail"
    assert "another app's secret" in check(result, "credential.match")["cause"]
    assert result["probe"]["code"] == 7000215


def test_tag_names_a_credential_but_the_value_is_another(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app, tagged = new_app(cloud)
    other = add_password(cloud, app, name="someone else's")
    name = store(cloud, other["secretText"], managed_tags(app, tagged), expires=end_of(tagged))
    if other["hint"] == tagged["hint"]:
        pytest.skip("the two random hints collided")
    _, result = diagnose_json(capsys, cloud, name)
    assert status(result, "credential.match") == "fail"
    assert "starts differently" in check(result, "credential.match")["evidence"]


def test_expired_credential_is_7000222(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud, days=-1, started_days_ago=100)
    name = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 1
    assert status(result, "credential.validity") == "fail"
    everything = check(result, "app.credentials")
    assert everything["status"] == "fail" and "all 1 secret(s) expired" in everything["evidence"]
    assert "AADSTS7000222" in everything["cause"]
    assert status(result, "secret.validity") == "fail"
    assert result["mostLikelyCause"]["id"] == "app.credentials"  # no value could work: Entra says 7000222
    assert result["probe"]["code"] == 7000222


def test_credential_not_yet_valid(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud, started_days_ago=-2)
    name = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))
    _, result = diagnose_json(capsys, cloud, name)
    assert status(result, "credential.validity") == "fail"
    assert "starts only at" in check(result, "credential.validity")["evidence"]


def test_brand_new_credential_warns_about_propagation(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud, started_days_ago=0)
    name = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))
    code, result = diagnose_json(capsys, cloud, name)
    assert code == 0
    found = check(result, "credential.validity")
    assert found["status"] == "warn" and "replicas" in found["cause"]


def test_certificate_only_app(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app = create_owned_app(cloud, unique("cert-only"))
    cloud.admin("POST", f"/applications/{app['id']}/certificates", {"displayName": "CN=cert-only"})
    name = store(cloud, "Xy28Q~" + "a" * 34, {"ProviderAddress": app["appId"]})

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 1
    found = check(result, "app.credentials")
    assert found["status"] == "fail"
    assert "1 certificate(s)" in found["evidence"] and "certificates (keyCredentials)" in found["cause"]
    assert result["probe"]["code"] == 7000215


# --------------------------------------------------------------------------------------------------
# 5. Rotation state


def test_inconsistent_tags(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    tags = managed_tags(app, password, RotationState="sideways", RetireAfter="tomorrow")
    name = store(cloud, password["secretText"], tags, expires=end_of(password))
    code, result = diagnose_json(capsys, cloud, name)
    assert code == 1
    found = check(result, "rotation.tags")
    assert found["status"] == "fail"
    assert "RotationState='sideways'" in found["evidence"] and "RetireAfter" in found["evidence"]


def test_provider_address_with_the_wrong_case(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = store(cloud, password["secretText"], {"providerAddress": app["appId"]}, expires=end_of(password))
    _, result = diagnose_json(capsys, cloud, name)
    found = check(result, "rotation.tags")
    assert found["status"] == "warn" and "'providerAddress'" in found["evidence"]


def test_stuck_in_validating(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    tags = managed_tags(app, password, RotationState="validating", RotationId=ROTATION_ID)
    name = store(cloud, password["secretText"], tags, expires=end_of(password))

    code, result = diagnose_json(capsys, cloud, name)
    assert code == 0 and status(result, "rotation.state") == "warn"  # still within the deadline

    backdate_latest_version(cloud, name, timedelta(hours=1))
    code, result = diagnose_json(capsys, cloud, name)
    assert code == 1
    found = check(result, "rotation.state")
    assert found["status"] == "fail" and "validating since" in found["evidence"]
    assert f"python -m rotation rotate {VAULT} {name}" in found["remedy"]


def test_failed_rotation_warns_with_its_reason(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    tags = managed_tags(app, password, RotationState="failed", FailureReason="PolicyBlocked: no passwords")
    name = store(cloud, password["secretText"], tags, expires=end_of(password))
    _, result = diagnose_json(capsys, cloud, name)
    assert status(result, "rotation.state") == "warn"
    assert "PolicyBlocked" in check(result, "rotation.state")["evidence"]


def test_overdue_retirement(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, current = new_app(cloud)
    old = add_password(cloud, app, name="previous", days=20)
    overdue = iso(datetime.now(UTC) - timedelta(days=3))
    tags = managed_tags(
        app,
        current,
        RotationState="active",
        RotationId=ROTATION_ID,
        RetireCredentialId=old["keyId"],
        RetireAfter=overdue,
    )
    name = store(cloud, current["secretText"], tags, expires=end_of(current))

    code, result = diagnose_json(capsys, cloud, name)

    assert code == 0
    found = check(result, "rotation.retirement")
    assert found["status"] == "warn" and old["keyId"] in found["evidence"]


def test_a_retirement_held_on_evidence_says_which_credential_still_signs_in(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app, current = new_app(cloud)
    old = add_password(cloud, app, name="previous", days=20)
    reason = f"credential {old['keyId']} signed in on 2026-11-30: something still uses it"
    tags = managed_tags(
        app,
        current,
        RotationState="active",
        RotationId=ROTATION_ID,
        RetireCredentialId=old["keyId"],
        RetireAfter=iso(datetime.now(UTC) - timedelta(days=3)),
        RetirementHeld=reason,
    )
    name = store(cloud, current["secretText"], tags, expires=end_of(current))

    _, result = diagnose_json(capsys, cloud, name)

    found = check(result, "rotation.retirement")
    assert found["status"] == "warn" and found["evidence"] == f"retirement held: {reason}"
    assert "--emergency" in found["remedy"]


def test_orphaned_rotator_credential(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app, password = new_app(cloud)
    name = unique("secret")
    host = vault_host(cloud.vault_url(VAULT))  # the record of intent names the vault host
    orphan = add_password(cloud, app, name=f"rotator:{host}/{name}:{ROTATION_ID}", started_days_ago=2)
    store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password), name=name)

    _, result = diagnose_json(capsys, cloud, name)

    found = check(result, "rotation.orphans")
    assert found["status"] == "warn" and orphan["keyId"] in found["evidence"]


def test_older_enabled_version_names_a_removed_credential(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app, old = new_app(cloud)
    current = add_password(cloud, app, name="current")
    name = store(cloud, old["secretText"], managed_tags(app, old), expires=end_of(old))
    store(cloud, current["secretText"], managed_tags(app, current), expires=end_of(current), name=name)
    remove_credential(cloud, app, old["keyId"])

    code, result = diagnose_json(capsys, cloud, name)

    assert code == 0
    found = check(result, "secret.versions")
    assert found["status"] == "warn" and old["keyId"] in found["evidence"]


# --------------------------------------------------------------------------------------------------
# Read-only, errors


def _requests_during(cloud: RotatorCloud, action: Any) -> list[dict[str, Any]]:
    since = cloud.admin("GET", "/requests?since=0")["next"]
    action()
    requests: list[dict[str, Any]] = cloud.admin("GET", f"/requests?since={since}")["requests"]
    return requests


@pytest.mark.parametrize("probe", [False, True], ids=["reads-only", "with-probe"])
def test_diagnose_only_reads(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], probe: bool) -> None:
    """The request log proves it: Graph and Key Vault see only GETs; Entra sees the OpenID document
    read and, with --probe, exactly one token request per diagnosis."""
    app, password = new_app(cloud)
    add_password(cloud, app, name=f"rotator:{VAULT}/orphaned:{ROTATION_ID}", started_days_ago=2)
    healthy = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))
    by_object_id = store(cloud, password["secretText"], {"ProviderAddress": app["id"]})
    missing = unique("missing")
    disabled = store(cloud, password["secretText"], managed_tags(app, password))
    asyncio.run(_vault_client_call(cloud, VAULT, "disable", disabled, latest_version(cloud, disabled)))
    flags = ["--probe"] if probe else []

    for name in (healthy, by_object_id, missing, disabled):
        requests = _requests_during(cloud, lambda name=name: run(capsys, cloud, "diagnose", VAULT, name, *flags))
        touched = {(r["service"], r["method"]) for r in requests}
        assert {method for service, method in touched if service in ("graph", "keyvault", "identity")} <= {"GET"}
        posts = [r for r in requests if r["method"] != "GET"]
        sign_ins = 1 if probe and name in (healthy, by_object_id) else 0
        assert len(posts) == sign_ins, (name, posts)
        assert all(r["service"] == "entra" and r["path"].endswith("/oauth2/v2.0/token") for r in posts)
        assert any(r["service"] == "keyvault" for r in requests)


def test_unknown_vault_is_one_json_error(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, cloud, "diagnose", "kv-nowhere", "x", "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "UnknownVault" and "ROTATION_VAULTS" in error["message"]


def test_every_status_symbol_is_known() -> None:
    assert {s.value for s in Status} == {"pass", "warn", "fail", "skip"}
