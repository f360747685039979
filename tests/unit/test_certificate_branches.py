"""Every branch of the certificate flow (`rotation.service.certificates`), as one table, through the
in-memory certificate fakes (real RSA keys, real proof and assertion checks: `tests.certificate_fakes`).

Each case arranges a world (an app bound to a managed Key Vault certificate, the current version's
certificate on the app next to a human's unrelated one), runs one reconcile (or a crash and a rerun),
and checks the outcome and the order of every write to Entra and Key Vault.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from rotation.domain.assertions import sha1_thumbprint
from rotation.domain.errors import KeyVaultError
from rotation.domain.model import Action, Mode, Outcome, ReconcileRequest, RotationState, Tag, binding_tag
from rotation.service.certificates import CertificateReconciler
from rotation.service.ports import HeldLock
from rotation.settings import Settings
from tests.certificate_fakes import FakeAssertionProbe, FakeCertificateVault, FakeKeyDirectory, self_signed
from tests.fakes import FakeClock

from .samples import NOW, TENANT_ID

VAULT = "kv-unit"
HOST = "kv-unit.vault.azure.net"
CERT = "api-cert"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
ENV = {
    "ROTATION_VAULTS": VAULT,
    "ROTATION_TENANT_ID": TENANT_ID,
    "ROTATION_GRACE_HOURS": "24",
    "ROTATION_VALIDATION_SUCCESSES": "2",
    "ROTATION_VALIDATION_DEADLINE_SECONDS": "60",
    "ROTATION_RETIREMENT_EVIDENCE": "off",
    "ROTATION_CERTIFICATES": "true",
}


@dataclass
class World:
    clock: FakeClock
    vault: FakeCertificateVault
    directory: FakeKeyDirectory
    probe: FakeAssertionProbe
    writes: list[tuple[str, ...]]
    env: dict[str, str] = field(default_factory=lambda: dict(ENV))
    app_id: str = ""
    old_key: str = ""  # the current version's key on the app
    human_key: str = ""  # a human's unrelated certificate: never touched
    held: HeldLock | None = None

    async def reconcile(self, mode: Mode = "normal", *, dry_run: bool = False) -> Outcome:
        reconciler = CertificateReconciler(
            Settings.from_env(self.env),
            self.directory,
            {VAULT: self.vault},
            self.probe,
            self.clock,
            self.clock.sleep,
            self.clock.monotonic,
            token_clock=self.clock,  # the fakes check JWT times against the same clock
        )
        request = ReconcileRequest.new(VAULT, CERT, now=self.clock.now(), reason="unit test", mode=mode)
        return await reconciler.reconcile(request, dry_run=dry_run, held=self.held)

    def tags(self) -> dict[str, str]:
        return dict(self.vault.latest(CERT).tags)

    def ops(self) -> list[str]:
        return [w[0] for w in self.writes]

    def key_ids(self) -> set[str]:
        return {k.key_id for k in self.directory.keys(self.app_id)}


def world(
    *,
    age: timedelta = 100 * DAY,
    on_app: bool = True,
    bound: bool = True,
    tags: dict[str, str] | None = None,
) -> World:
    """A certificate valid for a year, ``age`` old (100 days: not due; 340: due), its version's
    certificate on the app (``on_app``), the app binding it (``bound``)."""
    clock = FakeClock(NOW)
    writes: list[tuple[str, ...]] = []
    directory = FakeKeyDirectory(clock, writes=writes)
    w = World(
        clock,
        FakeCertificateVault(VAULT, clock, writes=writes),
        directory,
        FakeAssertionProbe(directory, clock),
        writes,
    )
    w.app_id = directory.add_app()
    directory.set_tags(w.app_id, ["team:payments", *([binding_tag(HOST, CERT)] if bound else [])])
    _, human_der = self_signed("CN=human", NOW - 10 * DAY, NOW + 300 * DAY)
    w.human_key = directory.add_certificate_now(w.app_id, human_der, display_name="CI (a human's)").key_id
    version = w.vault.seed(CERT, tags={Tag.ProviderAddress: w.app_id, **(tags or {})}, age=age)
    if on_app:
        w.old_key = directory.add_certificate_now(w.app_id, version.der).key_id
    return w


def due() -> World:
    return world(age=340 * DAY)


# --- the cases ------------------------------------------------------------------------------------


async def test_first_adoption_without_the_certificate_on_the_app_says_what_a_person_must_do() -> None:
    w = world(on_app=False)
    outcome = await w.reconcile()
    assert outcome.error_code == "NoUsableCertificate" and not outcome.retryable
    assert w.writes == []
    message = outcome.error_message or ""
    assert f"az ad app credential reset --id {w.app_id} --cert {CERT} --keyvault kv-unit --append" in message


async def test_a_version_on_the_app_is_adopted_and_nothing_else_happens_before_it_is_due() -> None:
    w = world()
    outcome = await w.reconcile()
    assert outcome.ok and outcome.action is Action.ADOPTED
    assert w.ops() == ["updateCertificate"]
    assert w.tags()[Tag.CredentialId] == w.old_key and w.tags()[Tag.RotationState] == "active"
    assert outcome.requeue_after is not None and outcome.requeue_after > 200 * DAY


async def test_a_due_certificate_rotates_with_both_keys_kept_for_the_grace_period() -> None:
    w = due()
    first = w.vault.latest(CERT).version
    outcome = await w.reconcile()
    assert outcome.ok and outcome.action is Action.ROTATED, outcome.error_message
    assert w.ops() == ["updateCertificate", "createCertificate", "addKey", "updateCertificate", "updateCertificate"]
    new = w.vault.latest(CERT)
    assert new.version != first and outcome.vault_version == new.version
    tags = w.tags()
    assert tags[Tag.RotationState] == "active" and tags[Tag.CredentialId] == outcome.created_key_id
    assert tags[Tag.RetireCredentialId] == w.old_key
    assert tags[Tag.RetireAfter] == "2025-02-01T12:00:01Z"  # grace from the proof (one 1 s pause)
    assert {w.old_key, w.human_key, outcome.created_key_id} == w.key_ids()
    added = next(k for k in w.directory.keys(w.app_id) if k.key_id == outcome.created_key_id)
    assert added.thumbprint == sha1_thumbprint(new.der)
    assert added.display_name == f"rotator:{HOST}/{CERT}:{tags[Tag.RotationId]}"
    assert outcome.validation_attempts == 2 and outcome.requeue_after == 24 * HOUR


async def test_after_the_grace_period_the_old_key_goes_and_its_version_is_disabled() -> None:
    w = due()
    old_version = w.vault.latest(CERT)
    rotated = await w.reconcile()
    w.clock.advance(25 * HOUR)
    w.writes.clear()
    outcome = await w.reconcile()
    assert outcome.ok and outcome.action is Action.RETIRED and outcome.retired_key_ids == (w.old_key,)
    assert w.ops() == ["removeKey", "updateCertificate", "updateCertificate"]
    assert w.key_ids() == {w.human_key, rotated.created_key_id}
    assert not old_version.enabled and w.vault.latest(CERT).enabled
    assert Tag.RetireCredentialId not in w.tags() and w.tags()[Tag.RotationState] == "active"


async def test_an_emergency_retires_the_old_key_as_soon_as_the_new_one_is_proven() -> None:
    w = world()
    outcome = await w.reconcile("emergency")
    assert outcome.ok and outcome.retired_key_ids == (w.old_key,), outcome.error_message
    assert w.ops().index("removeKey") > w.ops().index("addKey")
    assert w.key_ids() == {w.human_key, outcome.created_key_id}
    assert Tag.Emergency not in w.tags() and Tag.RetireCredentialId not in w.tags()


async def test_forced_rotates_a_certificate_that_is_not_due() -> None:
    w = world()
    outcome = await w.reconcile("forced")
    assert outcome.ok and outcome.action is Action.ROTATED
    assert w.old_key in w.key_ids()


async def test_a_crash_before_addkey_is_finished_with_the_same_version_on_the_next_run() -> None:
    w = due()
    w.directory.faults.fail("add_key", KeyVaultError("crash"))
    failed = await w.reconcile()
    assert not failed.ok and w.ops() == ["updateCertificate", "createCertificate"]
    created = w.vault.latest(CERT).version
    assert Tag.RotationId in w.tags() and Tag.CredentialId not in w.tags()
    outcome = await w.reconcile()
    assert outcome.ok and outcome.action is Action.VALIDATED, outcome.error_message
    assert w.vault.latest(CERT).version == created and w.ops().count("createCertificate") == 1
    assert w.tags()[Tag.RotationState] == "active" and w.tags()[Tag.RetireCredentialId] == w.old_key


async def test_a_crash_after_addkey_records_the_key_on_the_next_run_instead_of_adding_another() -> None:
    w = due()
    calls = {"n": 0}

    def crash_after_add(operation: str) -> None:
        if operation == "add_key" and not calls["n"]:
            calls["n"] += 1
            w.vault.faults.fail("update_certificate", KeyVaultError("crash"))

    w.directory.faults.after_write.append(crash_after_add)
    failed = await w.reconcile()
    assert not failed.ok and w.ops()[-1] == "addKey"
    outcome = await w.reconcile()
    assert outcome.ok, outcome.error_message
    assert w.ops().count("addKey") == 1 and w.ops().count("createCertificate") == 1
    assert w.tags()[Tag.CredentialId] == failed.created_key_id and w.tags()[Tag.RotationState] == "active"


async def test_a_key_that_propagates_slowly_is_proven_with_pauses() -> None:
    w = due()
    w.probe.propagation_probes = 3
    outcome = await w.reconcile()
    assert outcome.ok and outcome.validation_attempts == 5
    assert w.clock.sleeps[:4] == [1.0, 1.0, 1.0, 1.0]


async def test_an_unproven_key_keeps_the_old_key_and_counts_the_failure() -> None:
    w = due()
    w.probe.propagation_probes = 10_000
    outcome = await w.reconcile()
    assert outcome.error_code == "ValidationFailed"
    assert w.old_key in w.key_ids() and "removeKey" not in w.ops()
    tags = w.tags()
    assert tags[Tag.RotationState] == "validating" and tags[Tag.Backoff].startswith("1/")
    again = await w.reconcile()
    assert again.ok and again.action is Action.NONE and "removeKey" not in w.ops()


async def test_a_definitive_refusal_fails_at_once() -> None:
    w = due()
    w.probe.refuse(700016)
    outcome = await w.reconcile()
    assert outcome.error_code == "ValidationFailed" and outcome.validation_attempts == 1
    assert w.old_key in w.key_ids()


async def test_every_key_expired_means_a_person_must_add_the_certificate_once() -> None:
    w = world(age=400 * DAY)
    outcome = await w.reconcile()
    assert outcome.error_code == "NoUsableCertificate"
    assert "expired" in (outcome.error_message or "")
    assert "createCertificate" not in w.ops()


async def test_an_unbound_certificate_is_left_alone() -> None:
    w = world(age=340 * DAY, bound=False)
    outcome = await w.reconcile()
    assert outcome.error_code == "NotBound" and w.writes == []


async def test_a_forged_retire_tag_never_removes_a_humans_key() -> None:
    w = world()
    await w.reconcile()  # adopted
    version = w.vault.latest(CERT)
    version.tags.update({Tag.RetireCredentialId: w.human_key, Tag.RetireAfter: "2025-01-01T00:00:00Z"})
    outcome = await w.reconcile()
    assert outcome.ok and w.human_key in w.key_ids() and "removeKey" not in w.ops()
    assert any("refused to retire" in warning for warning in outcome.warnings)


async def test_an_orphaned_rotator_key_of_this_certificate_is_removed_after_the_margin() -> None:
    w = world()
    await w.reconcile()
    _, der = self_signed("CN=orphan", NOW - 5 * DAY, NOW + 300 * DAY)
    orphan = w.directory.add_certificate_now(w.app_id, der, display_name=f"rotator:{HOST}/{CERT}:20250101T000000Z-1a")
    w.clock.advance(2 * HOUR)
    outcome = await w.reconcile()
    assert outcome.ok and outcome.removed_orphans == (orphan.key_id,)
    assert orphan.key_id not in w.key_ids() and w.human_key in w.key_ids()


async def test_a_dry_run_writes_nothing() -> None:
    w = due()
    outcome = await w.reconcile(dry_run=True)
    assert outcome.ok and w.writes == [] and outcome.warnings


async def test_a_lost_lock_stops_before_the_next_write_and_the_rerun_converges() -> None:
    w = due()
    w.held = HeldLock(f"{VAULT}/{CERT}")

    def lose(operation: str) -> None:
        if operation == "add_key" and w.held is not None:
            w.held.lost = True

    w.directory.faults.after_write.append(lose)
    lost = await w.reconcile()
    assert lost.error_code == "LockLost" and w.ops()[-1] == "addKey"
    w.held = None
    outcome = await w.reconcile()
    assert outcome.ok and w.tags()[Tag.RotationState] == RotationState.ACTIVE.value
    assert w.ops().count("addKey") == 1


async def test_a_deleted_current_key_with_no_other_signer_needs_a_person() -> None:
    w = world()
    await w.reconcile()
    w.directory.remove_now(w.app_id, w.old_key)
    outcome = await w.reconcile()
    assert outcome.error_code == "NoUsableCertificate" and "createCertificate" not in w.ops()


async def test_the_sign_in_report_holds_a_retirement_while_the_old_key_is_in_use() -> None:
    w = due()
    w.env["ROTATION_RETIREMENT_EVIDENCE"] = "auto"
    await w.reconcile()
    w.clock.advance(10 * DAY)  # past the grace period, before the old key expires (in 25 days)
    w.directory.sign_ins = {w.old_key: w.clock.now() - 2 * DAY}
    outcome = await w.reconcile()
    assert outcome.ok and w.old_key in w.key_ids()
    assert Tag.RetirementHeld in w.tags()


@pytest.mark.parametrize("mode", ["normal", "emergency"])
async def test_no_signed_jwt_reaches_a_log_line_or_the_outcome(mode: Mode, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = due()
    outcome = await w.reconcile(mode)
    assert outcome.ok
    text = caplog.text + str(outcome.to_dict())
    signed = [*w.probe.assertions, *w.directory.proofs]
    assert w.probe.assertions and w.directory.proofs
    for jwt in signed:
        signature = jwt.rsplit(".", 1)[1]
        assert signature not in text and jwt not in text


async def test_a_forged_retire_tag_naming_the_current_key_never_removes_it() -> None:
    w = world()
    await w.reconcile()  # adopted: CredentialId = the current version's key
    w.vault.latest(CERT).tags.update(
        {Tag.CredentialId: w.human_key, Tag.RetireCredentialId: w.old_key, Tag.RetireAfter: "2025-01-01T00:00:00Z"}
    )
    outcome = await w.reconcile()
    assert outcome.ok and w.old_key in w.key_ids() and "removeKey" not in w.ops()
    assert any("current version's key" in warning for warning in outcome.warnings)
