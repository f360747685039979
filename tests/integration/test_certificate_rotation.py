"""Managed certificates end to end (issue 15): the real azure-keyvault-certificates, azure-keyvault-keys
(CryptographyClient.sign), msgraph-sdk (addKey/removeKey) and azure-identity (ClientAssertionCredential)
against the local cloud, which checks every proof and assertion's signature, audience and lifetime.

The rotator's identity gets "Key Vault Certificates Officer" and "Key Vault Crypto User" on the vault for
these tests (what ``rotationCertificates=true`` grants in Azure) and loses them afterwards, so the shared
cloud keeps the secrets-only grant the other tests expect. Every test ends with nothing signed (a proof,
an assertion, a signature) in the logs or the outcome.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from emulator.rotator_profile import RotatorCloud
from localcloud.keyvault_certificates import IssuedCertificate
from rotation.domain.assertions import client_assertion
from rotation.domain.model import Action, Outcome, ReconcileRequest, vault_host
from rotation.runtime import open_runtime
from rotation.service.certificate_sweep import scan_certificates
from rotation.service.sweep import scan
from rotation.settings import Settings
from tests.integration.reconcile_helpers import (
    CloudClock,
    add_fault,
    capture_logs,
    clear_faults,
    make_settings,
    mark,
    matching,
    requests_since,
    start_private_cloud,
    writes,
)
from tests.integration.seed import bind_async, create_owned_app, unique

VAULT = "kv-local"
CERTIFICATE_ROLES = ("Key Vault Certificates Officer", "Key Vault Crypto User")
HEX32 = "[0-9a-f]{32}"
DUE = {"ValidityPeriodDays": "400", "RotateBeforeDays": "365"}


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    capture_logs(caplog)


@pytest.fixture
def certificate_roles(cloud: RotatorCloud) -> Iterator[None]:
    assert cloud.rotator is not None
    grants = [{"objectId": cloud.rotator.sp_object_id, "vault": VAULT, "role": role} for role in CERTIFICATE_ROLES]
    for grant in grants:
        cloud.admin("POST", "/role-assignments", grant)
    yield
    for grant in grants:
        cloud.admin("DELETE", "/role-assignments", grant)


@dataclass
class Managed:
    """A managed certificate: its first version's certificate on a bound app, next to a human's."""

    cloud: RotatorCloud
    name: str
    app_id: str
    object_id: str
    first: IssuedCertificate
    first_key: str
    human_key: str

    def keys(self) -> dict[str, Any]:
        return {k.key_id: k for k in self.cloud.key_credentials(self.app_id)}

    def versions(self) -> list[IssuedCertificate]:
        return self.cloud.certificate_versions(VAULT, self.name)

    def latest(self) -> IssuedCertificate:
        return self.versions()[-1]


async def manage(cloud: RotatorCloud, *, tags: dict[str, str] | None = None) -> Managed:
    app = create_owned_app(cloud, unique("svc"))
    name = unique("cert")
    first = cloud.create_certificate(
        VAULT, name, validity_months=12, tags={"ProviderAddress": app["appId"], **(tags or {})}
    )
    first_key = cloud.add_key_credential(app["appId"], first.der, display_name=f"CN={name} (added by a person)")
    human = cloud.create_certificate(VAULT, unique("human"), validity_months=12)
    human_key = cloud.add_key_credential(app["appId"], human.der, display_name="CI (a human's)")
    await bind_async(cloud, app["appId"], VAULT, name)
    return Managed(cloud, name, app["appId"], app["id"], first, first_key, human_key)


def tags(version: IssuedCertificate) -> dict[str, str]:
    return dict(version.tags or {})


def settings_for(**overrides: Any) -> Settings:
    base = {**os.environ, "ROTATION_CERTIFICATES": "true", "ROTATION_RETIREMENT_EVIDENCE": "off"}
    return make_settings(base, **overrides)


async def reconcile(
    settings: Settings,
    managed: Managed,
    mode: Literal["normal", "forced", "emergency"] = "normal",
    *,
    clock: CloudClock | None = None,
) -> Outcome:
    async with open_runtime(settings, clock=clock) as runtime:
        request = ReconcileRequest.new(
            VAULT, managed.name, now=datetime.now(UTC), reason="integration test", mode=mode, kind="certificate"
        )
        return await runtime.reconciler.reconcile(request)


async def signs_in(settings: Settings, managed: Managed, version: IssuedCertificate) -> bool:
    """Whether a client assertion signed in Key Vault by ``version``'s key gets a token now."""
    async with open_runtime(settings) as runtime:
        vault = runtime.certificate_vaults[VAULT]
        flow = runtime.reconciler.certificates
        assert flow is not None
        probe = flow.probe
        tenant = settings.tenant_id or ""
        draft = client_assertion(managed.app_id, probe.token_endpoint(tenant), version.der, datetime.now(UTC))
        signature = await vault.sign(managed.name, version.version, draft.digest)
        result = await probe.probe_assertion(tenant, managed.app_id, draft.signed(signature))
        return result.ok


def assert_nothing_signed_leaked(outcome: Outcome, caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text + str(outcome.to_dict())
    for record in caplog.records:
        text += str(getattr(record, "args", ""))
    assert "eyJ" not in text, "a JWT (proof or assertion) reached a log line or the outcome"


# --- the happy paths ------------------------------------------------------------------------------


@pytest.mark.usefixtures("certificate_roles")
async def test_a_forced_rotation_adds_proves_and_keeps_the_old_key_for_the_grace_period(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    managed = await manage(cloud)
    settings = settings_for(grace_hours=24, validation_successes=2)

    outcome = await reconcile(settings, managed, "forced")

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    new = managed.latest()
    assert new.version == outcome.vault_version != managed.first.version
    keys = managed.keys()
    assert outcome.created_key_id is not None
    assert set(keys) == {managed.first_key, managed.human_key, outcome.created_key_id}
    added = keys[outcome.created_key_id]
    rotation_id = tags(new)["RotationId"]
    assert added.display_name == f"rotator:{vault_host(cloud.vault_url(VAULT))}/{managed.name}:{rotation_id}"
    assert tags(new)["CredentialId"] == outcome.created_key_id and tags(new)["RotationState"] == "active"
    assert tags(new)["RetireCredentialId"] == managed.first_key and "RetireAfter" in tags(new)
    assert tags(new)["ProviderAddress"] == managed.app_id
    assert outcome.validation_attempts >= 2
    assert await signs_in(settings, managed, new) and await signs_in(settings, managed, managed.first)
    # Converged: the next run has nothing to do and writes nothing.
    since = mark(cloud)
    again = await reconcile(settings, managed)
    assert again.ok and again.action is Action.NONE, again.to_dict()
    assert writes(requests_since(cloud, since)) == []


@pytest.mark.usefixtures("certificate_roles")
async def test_an_emergency_removes_the_old_key_with_a_proof_signed_by_the_new_one(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    managed = await manage(cloud)
    settings = settings_for(grace_hours=24)

    outcome = await reconcile(settings, managed, "emergency")

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.ok and outcome.retired_key_ids == (managed.first_key,), outcome.to_dict()
    assert set(managed.keys()) == {managed.human_key, outcome.created_key_id}
    first = next(v for v in managed.versions() if v.version == managed.first.version)
    assert not first.enabled  # nothing signs in with it any more
    assert "Emergency" not in tags(managed.latest()) and "RetireCredentialId" not in tags(managed.latest())
    assert await signs_in(settings, managed, managed.latest())


@pytest.mark.usefixtures("certificate_roles")
async def test_a_certificate_not_on_the_app_is_left_alone_with_the_command_a_person_runs_once(
    cloud: RotatorCloud,
) -> None:
    app = create_owned_app(cloud, unique("svc"))
    name = unique("cert")
    cloud.create_certificate(VAULT, name, validity_months=12, tags={"ProviderAddress": app["appId"]})
    await bind_async(cloud, app["appId"], VAULT, name)
    since = mark(cloud)
    settings = settings_for()

    async with open_runtime(settings) as runtime:
        request = ReconcileRequest.new(VAULT, name, now=datetime.now(UTC), mode="forced", kind="certificate")
        outcome = await runtime.reconciler.reconcile(request)

    assert outcome.error_code == "NoUsableCertificate", outcome.to_dict()
    assert f"az ad app credential reset --id {app['appId']} --cert {name} --keyvault" in (outcome.error_message or "")
    assert writes(requests_since(cloud, since)) == []


async def test_without_the_certificate_roles_the_rotator_says_which_role_to_grant(cloud: RotatorCloud) -> None:
    managed = await manage(cloud)
    outcome = await reconcile(settings_for(), managed, "forced")
    assert outcome.error_code == "PermissionDenied", outcome.to_dict()
    assert "Key Vault Certificates Officer" in (outcome.error_message or "")


# --- a crash at each call -------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashPoint:
    service: str
    method: str
    path: str  # "{name}" is the certificate's name
    drop: bool = False

    def fault(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"method": self.method, "path_regex": self.path.replace("{name}", name), "count": 1000}
        if self.drop:
            spec["drop"] = True
        else:
            spec["status"] = 500
        return spec


CRASH_POINTS = {
    "create-version": CrashPoint("keyvault", "POST", r"^/certificates/{name}/create$", drop=True),
    "list-versions": CrashPoint("keyvault", "GET", r"^/certificates/{name}/versions$"),
    "sign": CrashPoint("keyvault", "POST", rf"^/keys/{{name}}/{HEX32}/sign$"),
    "addKey": CrashPoint("graph", "POST", r"/addKey$", drop=True),
    "tags-write": CrashPoint("keyvault", "PATCH", rf"^/certificates/{{name}}/{HEX32}$"),
    "token-request": CrashPoint("entra", "POST", r"/oauth2/v2.0/token$"),
    "removeKey": CrashPoint("graph", "POST", r"/removeKey$", drop=True),
}


@pytest.mark.usefixtures("certificate_roles")
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_rotation_that_dies_at_any_call_converges_and_never_leaves_the_app_without_a_working_key(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture, point: str
) -> None:
    # Due now: a 365-day window on a one-year certificate (the rotator's own next version is not: its
    # window shrinks to a third of its lifetime, as for a password whose lifetime a policy clamped).
    managed = await manage(cloud, tags=DUE)
    settings = settings_for(
        throttle_retry_seconds=1, orphan_margin_minutes=0, validation_deadline_seconds=5, grace_hours=0
    )
    crash = CRASH_POINTS[point]
    add_fault(cloud, crash.service, **crash.fault(managed.name))
    since = mark(cloud)

    failed = await reconcile(settings, managed)

    assert_nothing_signed_leaked(failed, caplog)
    assert not failed.ok, failed.to_dict()
    hit = matching(requests_since(cloud, since), crash.service, crash.method)
    assert any(r["status"] in (0, 500) for r in hit), "the fault never fired"
    clear_faults(cloud)
    # Half-done or not, some version in the vault still signs in: the app never lacks a working key.
    usable = [
        v
        for v in managed.versions()
        if v.enabled and any(k.thumbprint == v.thumbprint for k in managed.keys().values())
    ]
    assert usable and any([await signs_in(settings, managed, v) for v in usable])

    outcome = await reconcile(settings, managed)

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.ok, outcome.to_dict()
    latest = managed.latest()
    assert tags(latest).get("RotationState") == "active" and "RetireCredentialId" not in tags(latest)
    keys = managed.keys()
    assert {k.thumbprint for k in keys.values()} >= {latest.thumbprint}
    assert managed.human_key in keys and managed.first_key not in keys  # grace 0: the old key went
    assert len(keys) == 2, {k: v.display_name for k, v in keys.items()}  # no orphan left behind
    assert await signs_in(settings, managed, latest)
    since = mark(cloud)
    again = await reconcile(settings, managed)
    assert again.ok and again.action is Action.NONE, again.to_dict()
    assert writes(requests_since(cloud, since)) == []
    logging.getLogger(__name__).debug("converged after a crash at %s", point)


async def test_a_proof_graph_refuses_is_said_as_such_and_the_old_key_stays(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rotator whose clock is far behind Entra's signs with a certificate that Entra already takes
    for expired: 401, reported as a refused proof (not as a missing Graph permission); nothing removed."""
    cloud = start_private_cloud(private_cloud, monkeypatch, vaults=(VAULT,))
    assert cloud.rotator is not None
    for role in CERTIFICATE_ROLES:
        cloud.admin("POST", "/role-assignments", {"objectId": cloud.rotator.sp_object_id, "vault": VAULT, "role": role})
    managed = await manage(cloud)
    cloud.advance_clock(400 * 86400, emit_events=False)  # past the one-year certificates' end

    outcome = await reconcile(settings_for(), managed, "forced")

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.error_code == "ProofRefused" and not outcome.retryable, outcome.to_dict()
    assert {managed.first_key, managed.human_key} <= set(managed.keys())


@pytest.mark.usefixtures("certificate_roles")
async def test_the_sweep_lists_the_certificate_and_leaves_its_secret_to_it(cloud: RotatorCloud) -> None:
    managed = await manage(cloud, tags=DUE)
    settings = settings_for()
    now = datetime.now(UTC)
    async with open_runtime(settings) as runtime:
        secrets = await scan(settings, runtime.vaults, now, only=VAULT)
        certificates = await scan_certificates(settings, runtime.certificate_vaults, now, only=VAULT)
    assert managed.name not in {s.name for s in secrets}  # Key Vault's own secret of the certificate
    found = [s for s in certificates if s.name == managed.name]
    assert found and found[0].needs_work and "rotation due" in found[0].needs_work


@pytest.mark.usefixtures("certificate_roles")
async def test_a_create_retried_while_its_first_attempt_is_pending_waits_for_it_instead_of_a_second_version(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """Key Vault takes a moment to issue; the poller's first status read fails, so the create is retried,
    Key Vault answers 409 (a pending operation), and the retry waits for the first one: one new version."""
    managed = await manage(cloud)
    cloud.set_certificate_issuance_delay(VAULT, 2)
    try:
        add_fault(
            cloud, "keyvault", status=500, count=1, method="GET", path_regex=rf"^/certificates/{managed.name}/pending$"
        )
        since = mark(cloud)
        outcome = await reconcile(settings_for(throttle_retry_seconds=30), managed, "forced")
        creates = [r["status"] for r in matching(requests_since(cloud, since), "keyvault", "POST", "/create")]
    finally:
        cloud.set_certificate_issuance_delay(VAULT, 0)
        clear_faults(cloud)

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert creates == [202, 409], creates  # the retry found the first create pending
    assert len(managed.versions()) == 2  # the first and exactly one new one
    assert tags(managed.latest())["CredentialId"] == outcome.created_key_id


async def test_on_a_cloud_whose_clock_moved_days_ahead_the_jwts_still_carry_real_time(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's situation: the rotator decides on the cloud's clock (days pass in seconds), while
    Graph and Entra check a proof's and an assertion's lifetime against real time."""
    cloud = start_private_cloud(private_cloud, monkeypatch, vaults=(VAULT,))
    assert cloud.rotator is not None
    for role in CERTIFICATE_ROLES:
        cloud.admin("POST", "/role-assignments", {"objectId": cloud.rotator.sp_object_id, "vault": VAULT, "role": role})
    managed = await manage(cloud)
    cloud.advance_clock(10 * 86400, emit_events=False)

    outcome = await reconcile(settings_for(), managed, "emergency", clock=CloudClock(cloud))

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.ok and outcome.retired_key_ids == (managed.first_key,), outcome.to_dict()


# --- the trust boundary: a vault's certificate writer is no authority over an app ---------------------


@pytest.mark.usefixtures("certificate_roles")
async def test_a_certificate_writer_cannot_make_the_rotator_add_a_key_to_another_teams_app(
    cloud: RotatorCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """An identity with every certificate and key right on the vault (but none on Entra) creates its own
    certificate through the real SDK, tags it with another team's appId and that team's keyId, and asks
    for an emergency. The app binds only its own certificate, so nothing is signed, added or removed."""
    from azure.identity.aio import ClientSecretCredential
    from azure.keyvault.certificates import CertificatePolicy
    from azure.keyvault.certificates.aio import CertificateClient

    victim = await manage(cloud)
    attacker = cloud.admin("POST", "/identities", {"displayName": "vault writer"})
    for role in ("Key Vault Certificates Officer", "Key Vault Crypto Officer"):
        cloud.admin("POST", "/role-assignments", {"objectId": attacker["objectId"], "vault": VAULT, "role": role})
    planted = unique("planted")
    async with (
        ClientSecretCredential(
            cloud.tenant_id, attacker["appId"], attacker["clientSecret"], authority=cloud.authority
        ) as credential,
        CertificateClient(cloud.vault_url(VAULT), credential, verify_challenge_resource=False) as client,
    ):
        await client.create_certificate(
            planted,
            CertificatePolicy(issuer_name="Self", subject=f"CN={planted}", validity_in_months=12),
            tags={"ProviderAddress": victim.app_id, "CredentialId": victim.first_key, **DUE},
        )
    keys_before = set(victim.keys())
    since = mark(cloud)

    outcome = await reconcile(
        settings_for(),
        Managed(cloud, planted, victim.app_id, victim.object_id, victim.first, victim.first_key, victim.human_key),
        "emergency",
    )

    assert_nothing_signed_leaked(outcome, caplog)
    assert outcome.error_code == "NotBound", outcome.to_dict()
    assert writes(requests_since(cloud, since)) == [], "no sign, addKey, removeKey or tag write"
    assert set(victim.keys()) == keys_before
    assert len(cloud.certificate_versions(VAULT, planted)) == 1, "no new version of the planted certificate"


# --- what people see: status and the list route -------------------------------------------------------


@pytest.mark.usefixtures("certificate_roles")
def test_status_lists_a_managed_certificate_as_such_with_its_binding(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import json

    from rotation.cli import main

    managed = asyncio.run(manage(cloud))
    monkeypatch.setenv("ROTATION_CERTIFICATES", "true")

    assert main(["status", VAULT, "--json"]) == 0
    listed = {s["secret"]: s for s in json.loads(capsys.readouterr().out)["secrets"]}
    assert listed[managed.name]["kind"] == "certificate" and listed[managed.name]["appId"] == managed.app_id
    assert listed[managed.name]["bound"] is True
    # The shared vault holds other tests' certificates too: each entry's kind is what the vault says.
    certificates = cloud.edit(lambda world: set(world.vaults[VAULT].certificates))
    assert all((s["kind"] == "certificate") == (name in certificates) for name, s in listed.items())

    assert main(["status", VAULT]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if managed.name in line)
    assert f"{VAULT}/{managed.name} (certificate)" in row

    monkeypatch.setenv("ROTATION_CERTIFICATES", "false")  # off: the rotator does not look at certificates
    assert main(["status", VAULT, "--json"]) == 0
    assert managed.name not in {s["secret"] for s in json.loads(capsys.readouterr().out)["secrets"]}


@pytest.mark.usefixtures("certificate_roles")
def test_adopt_puts_a_certificate_under_management_and_the_next_forced_run_rotates_it(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`adopt` on a certificate's name: the binding on the app and the management tags on the
    certificate's latest version (Key Vault refuses writes to the secret behind it), its CredentialId
    the app's key credential with that thumbprint; one not on the app yet is adopted with what a
    person must do once."""
    import asyncio
    import json

    from rotation.cli import main

    app = create_owned_app(cloud, unique("svc"))
    name = unique("cert")
    first = cloud.create_certificate(VAULT, name, validity_months=12, tags={"team": "payments"})
    key_id = cloud.add_key_credential(app["appId"], first.der, display_name="added by a person")
    monkeypatch.setenv("ROTATION_CERTIFICATES", "true")
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "1")

    assert main(["adopt", VAULT, name, "--app", app["appId"], "--grace-hours", "0", "--json"]) == 0
    adopted = json.loads(capsys.readouterr().out)
    assert adopted["credentialId"] == key_id.lower(), adopted
    written = tags(cloud.certificate_versions(VAULT, name)[-1])
    assert written["ProviderAddress"] == app["appId"] and written["CredentialId"] == key_id.lower()
    assert written["team"] == "payments" and written["GracePeriodHours"] == "0"
    host = vault_host(cloud.vault_url(VAULT))
    assert f"rotator-binding:{host}/{name}#{key_id.lower()}" in cloud.application_tags(app["appId"])

    managed = Managed(cloud, name, app["appId"], app["id"], first, key_id, key_id)
    outcome = asyncio.run(reconcile(settings_for(), managed, "forced"))
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.retired_key_ids == (key_id.lower(),), "grace 0: the adopted key retires at once"
    assert asyncio.run(signs_in(settings_for(), managed, managed.latest()))

    # A certificate not on any app yet: adopted, with the command a person runs once.
    other = unique("cert")
    cloud.create_certificate(VAULT, other, validity_months=12)
    assert main(["adopt", VAULT, other, "--app", app["appId"], "--json"]) == 0
    pending = json.loads(capsys.readouterr().out)
    assert pending["credentialId"] is None
    assert any("az ad app credential reset" in w for w in pending["warnings"]), pending

    monkeypatch.setenv("ROTATION_CERTIFICATES", "false")  # off: refused, and nothing is written
    third = unique("cert")
    cloud.create_certificate(VAULT, third, validity_months=12)
    assert main(["adopt", VAULT, third, "--app", app["appId"], "--json"]) != 0
    assert "CertificatesDisabled" in "".join(capsys.readouterr())
    assert "ProviderAddress" not in tags(cloud.certificate_versions(VAULT, third)[-1])


@pytest.mark.usefixtures("certificate_roles")
async def test_a_rotation_reads_each_signing_key_once_however_many_times_it_signs(cloud: RotatorCloud) -> None:
    """Every validation attempt signs a fresh assertion and every removal a fresh proof; the key behind
    a version is read once per run (CryptographyClient learns what it may do locally on first use)."""
    managed = await manage(cloud)
    since = mark(cloud)

    outcome = await reconcile(settings_for(grace_hours=24, validation_successes=3), managed, "emergency")

    assert outcome.ok and outcome.validation_attempts >= 3, outcome.to_dict()
    log = requests_since(cloud, since)
    signs = matching(log, "keyvault", "POST", r"^/keys/[^?]+/sign(\?|$)", status=200)
    reads = matching(log, "keyvault", "GET", r"^/keys/", status=200)
    assert len(signs) >= 4  # the addKey proof, three assertions, the removeKey proof
    paths = [r["path"].split("?")[0] for r in reads]
    assert len(paths) == len(set(paths)) == len({s["path"].split("?")[0].rsplit("/", 1)[0] for s in signs}), paths
