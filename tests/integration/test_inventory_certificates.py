"""`python -m rotation inventory` with managed certificates (issue 15), against a local cloud of its own
through the real SDKs: the rotator's own forced rotation makes a managed key and a retiring one, and the
inventory classifies every key credential by the vault's certificates (list calls only, one per 25),
says when a certificate listing is refused, and says so when ``ROTATION_CERTIFICATES`` is off.

The rotator's identity gets "Key Vault Certificates Officer" and "Key Vault Crypto User" on the vault
(what ``rotationCertificates=true`` grants in Azure), as in ``test_certificate_rotation``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from localcloud.keyvault_certificates import IssuedCertificate
from rotation.cli import main
from rotation.domain.model import ReconcileRequest, vault_host
from rotation.runtime import open_runtime
from rotation.tools.inventory.classify import CERTIFICATES_OFF
from tests.integration.reconcile_helpers import make_settings
from tests.integration.seed import bind_async, create_owned_app

VAULT = "kv-local"
CERTIFICATE_ROLES = ("Key Vault Certificates Officer", "Key Vault Crypto User")
ROTATION_ID = "20250101T000000Z-0badc0de"
HELD = "signed in on 2026-12-01 (sign-in report)"
BULK = 25  # with the scenario's 5 certificates: 30, two list pages of at most 25


@dataclass
class Scenario:
    cloud: RotatorCloud
    keys: dict[str, str] = field(default_factory=dict)  # role -> keyId
    apps: dict[str, str] = field(default_factory=dict)  # role -> appId
    issued: list[IssuedCertificate] = field(default_factory=list)


def _grant(cloud: RotatorCloud, method: str, *roles: str) -> None:
    assert cloud.rotator is not None
    for role in roles:
        cloud.admin(method, "/role-assignments", {"objectId": cloud.rotator.sp_object_id, "vault": VAULT, "role": role})


def _issue(scenario: Scenario, name: str, tags: dict[str, str] | None = None) -> IssuedCertificate:
    issued = scenario.cloud.create_certificate(VAULT, name, validity_months=12, tags=tags)
    scenario.issued.append(issued)
    return issued


async def _tag_latest(name: str, extra: dict[str, str]) -> None:
    """Add ``extra`` to the latest version's tags, as the rotator's identity through the real SDK."""
    async with open_runtime() as runtime:
        vault = runtime.certificate_vaults[VAULT]
        latest = await vault.get_certificate(name)
        assert latest is not None and latest.version is not None
        await vault.update_certificate(name, latest.version, tags={**latest.tags, **extra})


async def _rotate(name: str) -> None:
    """A forced rotation by the rotator itself: a new version whose key is managed, the old one retiring."""
    settings = make_settings({**os.environ, "ROTATION_RETIREMENT_EVIDENCE": "off"}, grace_hours=24)
    async with open_runtime(settings) as runtime:
        request = ReconcileRequest.new(
            VAULT, name, now=datetime.now(UTC), reason="inventory test", mode="forced", kind="certificate"
        )
        outcome = await runtime.reconciler.reconcile(request)
    assert outcome.ok, outcome.to_dict()


def seed(cloud: RotatorCloud) -> Scenario:
    scenario = Scenario(cloud)
    host = vault_host(cloud.vault_url(VAULT))

    # Reports signer: its certificate rotated by the rotator (the first key retiring, held), a crash's
    # orphaned key, and a person's certificate.
    signer = create_owned_app(cloud, "Reports signer")
    scenario.apps["signer"] = signer["appId"]
    first = _issue(scenario, "signer", {"ProviderAddress": signer["appId"]})
    scenario.keys["retiring"] = cloud.add_key_credential(signer["appId"], first.der, display_name="CN=signer")
    asyncio.run(bind_async(cloud, signer["appId"], VAULT, "signer"))
    asyncio.run(_rotate("signer"))
    latest = cloud.certificate_versions(VAULT, "signer")[-1]
    scenario.issued.append(latest)
    scenario.keys["managed"] = (latest.tags or {})["CredentialId"]
    asyncio.run(_tag_latest("signer", {"RetirementHeld": HELD}))
    spare = _issue(scenario, "spare")
    scenario.keys["orphaned"] = cloud.add_key_credential(
        signer["appId"], spare.der, display_name=f"rotator:{host}/signer:{ROTATION_ID}"
    )
    human = _issue(scenario, "human")
    scenario.keys["unmanaged"] = cloud.add_key_credential(signer["appId"], human.der, display_name="CI (a human's)")

    # Partner signer: tagged in the vault, never bound by the app's owners.
    partner = create_owned_app(cloud, "Partner signer")
    scenario.apps["unbound"] = partner["appId"]
    unbound = _issue(scenario, "unbound", {"ProviderAddress": partner["appId"]})
    scenario.keys["unbound"] = cloud.add_key_credential(partner["appId"], unbound.der, display_name="CN=partner")
    asyncio.run(_tag_latest("unbound", {"CredentialId": scenario.keys["unbound"]}))

    # A managed certificate whose key is gone from the app (removed in Entra, not in the vault).
    scenario.keys["dangling"] = str(uuid.uuid4())
    _issue(scenario, "gone", {"ProviderAddress": signer["appId"], "CredentialId": scenario.keys["dangling"]})
    return scenario


@pytest.fixture
def local(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> Iterator[RotatorCloud]:
    cloud = private_cloud(vaults=(VAULT,))
    with cloud.environment():
        monkeypatch.setenv("ROTATION_CERTIFICATES", "true")
        _grant(cloud, "POST", *CERTIFICATE_ROLES)
        yield cloud


@pytest.fixture
def scenario(local: RotatorCloud) -> Scenario:
    return seed(local)


def inventory_json(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> dict[str, Any]:
    code = main(["inventory", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_no_key_material(scenario, out + err)
    data: dict[str, Any] = json.loads(out)
    return data


def assert_no_key_material(scenario: Scenario, text: str) -> None:
    """No certificate body, private key, PFX or signed token reaches the output (a thumbprint may)."""
    assert "BEGIN" not in text and "eyJ" not in text and "MII" not in text
    for issued in scenario.issued:
        assert base64.b64encode(issued.der).decode()[:64] not in text


def by_key(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["keyId"]: row for row in data["credentials"] if row["kind"] == "certificate"}


def certificate_lists(cloud: RotatorCloud, since: int) -> list[dict[str, Any]]:
    """The certificate requests Key Vault answered (not its 401 challenge, which the SDK may cache)."""
    requests: list[dict[str, Any]] = cloud.admin("GET", f"/requests?since={since}")["requests"]
    return [r for r in requests if r["service"] == "keyvault" and "/certificates" in r["path"] and r["status"] != 401]


# --------------------------------------------------------------------------------------------------


def test_key_credentials_are_classified_by_the_vaults_certificates_with_list_calls_only(
    capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    cloud = scenario.cloud
    for number in range(BULK):
        _issue(scenario, f"bulk-{number:02d}")
    since = cloud.admin("GET", "/requests?since=0")["next"]

    data = inventory_json(capsys, scenario)

    rows = by_key(data)
    keys = scenario.keys
    managed = rows[keys["managed"]]
    assert (managed["standing"], managed["vault"], managed["secret"]) == ("managed", VAULT, "signer")
    assert managed["note"] == "" and managed["appName"] == "Reports signer"
    assert managed["credentialName"].startswith(f"rotator:{vault_host(cloud.vault_url(VAULT))}/signer:")
    retiring = rows[keys["retiring"]]
    assert (retiring["standing"], retiring["vault"], retiring["secret"]) == ("retiring", VAULT, "signer")
    assert retiring["note"] == f"retirement held: {HELD}"
    orphaned = rows[keys["orphaned"]]
    assert (orphaned["standing"], orphaned["secret"]) == ("orphaned", "signer")
    assert orphaned["note"].startswith(f"created by rotation {ROTATION_ID} for ")
    assert (rows[keys["unmanaged"]]["standing"], rows[keys["unmanaged"]]["note"]) == ("unmanaged", "")
    unbound = rows[keys["unbound"]]
    assert (unbound["standing"], unbound["secret"]) == ("managed", "unbound")
    assert unbound["note"] == f"not bound: python -m rotation adopt {VAULT} unbound --app {scenario.apps['unbound']}"
    dangling = rows[keys["dangling"]]
    assert (dangling["standing"], dangling["secret"], dangling["appId"]) == (
        "dangling",
        "gone",
        scenario.apps["signer"],
    )
    assert all("not rotated" not in row["note"] for row in data["credentials"])
    assert data["vaultCertificates"] == 5 + BULK and data["warnings"] == []

    # One list call per 25 certificates (30: two pages), nothing else of a certificate: no version
    # list, no certificate body, no key, no secret of a certificate.
    lists = certificate_lists(cloud, since)
    assert [r["method"] for r in lists] == ["GET", "GET"], lists
    assert all(re.match(r"^/certificates\?", r["path"]) for r in lists), [r["path"] for r in lists]
    requests = cloud.admin("GET", f"/requests?since={since}")["requests"]
    vault_paths = [r["path"] for r in requests if r["service"] == "keyvault"]
    assert all(re.match(r"^/(secrets|certificates)\?", p) for p in vault_paths), vault_paths


def test_a_refused_certificate_listing_is_a_warning_not_a_failure(
    capsys: pytest.CaptureFixture[str], scenario: Scenario
) -> None:
    _grant(scenario.cloud, "DELETE", "Key Vault Certificates Officer")

    data = inventory_json(capsys, scenario)

    assert any(
        w.startswith(f"certificates of vault '{VAULT}' could not be listed (PermissionDenied)")
        for w in data["warnings"]
    ), data["warnings"]
    assert "Key Vault Certificates Officer" in " ".join(data["warnings"])
    rows = by_key(data)
    # Without the certificates' tags a managed key looks unmanaged (the warning says why), and one the
    # rotator added is not called an orphan to remove without saying its vault went unread.
    assert (rows[scenario.keys["unbound"]]["standing"], rows[scenario.keys["unbound"]]["note"]) == ("unmanaged", "")
    managed = rows[scenario.keys["managed"]]
    assert managed["standing"] == "orphaned"
    assert managed["note"].endswith("; that vault's certificates could not be listed, so a tag may name it")
    assert scenario.keys["dangling"] not in rows
    assert data["vaultCertificates"] == 0


def test_with_certificates_off_the_inventory_says_so_and_lists_none(
    capsys: pytest.CaptureFixture[str], scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_CERTIFICATES", "false")
    since = scenario.cloud.admin("GET", "/requests?since=0")["next"]

    data = inventory_json(capsys, scenario)

    rows = by_key(data)
    assert {(row["standing"], row["note"]) for row in rows.values()} == {("unmanaged", CERTIFICATES_OFF)}
    assert scenario.keys["dangling"] not in rows and data["vaultCertificates"] is None
    assert certificate_lists(scenario.cloud, since) == []
