"""How a certificate reaches its flow: the request's ``kind`` on the queue, the reconciler's routing,
and the sweep's certificate half (list calls only)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from rotation.domain.errors import BadRequestError
from rotation.domain.model import Action, ReconcileRequest, Tag, binding_tag
from rotation.service.certificate_sweep import certificate_work_requests, scan_certificates
from rotation.service.certificates import CertificateReconciler
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings
from tests.certificate_fakes import FakeAssertionProbe, FakeCertificateVault, FakeKeyDirectory
from tests.fakes import FakeClock, FakeDirectory, FakeTokenProbe, FakeVault

from .samples import NOW, TENANT_ID

ENV = {"ROTATION_VAULTS": "kv-unit", "ROTATION_TENANT_ID": TENANT_ID, "ROTATION_CERTIFICATES": "true"}
DAY = timedelta(days=1)


def test_a_certificate_request_says_so_on_the_queue_and_a_secret_request_is_unchanged() -> None:
    secret = ReconcileRequest.new("kv-unit", "db", now=NOW, operation_id="op-1")
    assert "kind" not in secret.to_message()  # what earlier versions wrote, and still read
    assert ReconcileRequest.from_json(secret.to_json()).kind == "secret"
    certificate = ReconcileRequest.new("kv-unit", "api-cert", now=NOW, kind="certificate")
    assert json.loads(certificate.to_json())["kind"] == "certificate"
    assert ReconcileRequest.from_json(certificate.to_json()) == certificate
    with pytest.raises(BadRequestError):
        ReconcileRequest.from_message({**secret.to_message(), "kind": "key"})
    with pytest.raises(BadRequestError):
        ReconcileRequest.new("kv-unit", "db", now=NOW, kind="key")  # type: ignore[arg-type]


def _reconciler(env: dict[str, str], *, certificates: bool) -> tuple[Reconciler, FakeCertificateVault]:
    clock = FakeClock(NOW)
    settings = Settings.from_env(env)
    directory = FakeDirectory(clock)
    vault = FakeCertificateVault("kv-unit", clock)
    keys = FakeKeyDirectory(clock)
    flow = CertificateReconciler(settings, keys, {"kv-unit": vault}, FakeAssertionProbe(keys, clock), clock)
    app_id = keys.add_app()
    keys.set_tags(app_id, [binding_tag("kv-unit.vault.azure.net", "api-cert")])
    keys.add_certificate_now(app_id, vault.seed("api-cert", tags={Tag.ProviderAddress: app_id}).der)
    reconciler = Reconciler(
        settings,
        directory,
        {"kv-unit": FakeVault("kv-unit", clock)},
        FakeTokenProbe(directory, clock),
        clock,
        clock.sleep,
        clock.monotonic,
        certificates=flow if certificates else None,
    )
    return reconciler, vault


async def test_the_reconciler_hands_a_certificate_request_to_the_certificate_flow() -> None:
    reconciler, vault = _reconciler(ENV, certificates=True)
    outcome = await reconciler.reconcile(ReconcileRequest.new("kv-unit", "api-cert", now=NOW, kind="certificate"))
    assert outcome.ok and outcome.action is Action.ADOPTED
    assert vault.latest("api-cert").tags[Tag.RotationState] == "active"


async def test_without_rotation_certificates_a_certificate_request_is_refused_and_nothing_read() -> None:
    reconciler, vault = _reconciler({**ENV, "ROTATION_CERTIFICATES": "false"}, certificates=False)
    outcome = await reconciler.reconcile(ReconcileRequest.new("kv-unit", "api-cert", now=NOW, kind="certificate"))
    assert outcome.error_code == "CertificatesDisabled" and not outcome.retryable
    assert vault.writes == []


async def test_the_sweep_finds_due_certificates_and_rotations_under_way_from_list_calls() -> None:
    clock = FakeClock(NOW)
    settings = Settings.from_env(ENV)
    vault = FakeCertificateVault("kv-unit", clock)
    app = "11111111-2222-3333-4444-555555555555"
    vault.seed("fresh", tags={Tag.ProviderAddress: app}, age=10 * DAY)
    vault.seed("due", tags={Tag.ProviderAddress: app}, age=340 * DAY)
    vault.seed("under-way", tags={Tag.ProviderAddress: app, Tag.RotationId: "20250131T120000Z-1a2b3c4d"})
    vault.seed("unmanaged", tags={}, age=400 * DAY)
    statuses = await scan_certificates(settings, {"kv-unit": vault}, clock.now())
    needs = {s.name: s.needs_work for s in statuses}
    assert set(needs) == {"fresh", "due", "under-way"}
    assert needs["fresh"] is None
    assert needs["due"] is not None and "rotation due" in needs["due"]
    assert needs["under-way"] is not None and "not on the app yet" in needs["under-way"]
    requests = certificate_work_requests(statuses, clock.now(), source="sweep")
    assert {(r.secret, r.kind) for r in requests} == {("due", "certificate"), ("under-way", "certificate")}
