"""How a certificate reaches its flow: the request's ``kind`` on the queue, the reconciler's routing,
and the sweep's certificate half (list calls only)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from rotation.domain.errors import BadRequestError
from rotation.domain.events import (
    CERTIFICATE_EXPIRED,
    CERTIFICATE_NEAR_EXPIRY,
    KeyVaultEvent,
    MalformedEvent,
    parse_event,
)
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
    probe = FakeAssertionProbe(keys, clock)
    flow = CertificateReconciler(settings, keys, {"kv-unit": vault}, probe, clock, token_clock=clock)
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


def _certificate_event(event_type: str, **data: object) -> dict[str, object]:
    version = "ee059b2bb5bc48398a53b168c6cdcb10"
    body: dict[str, object] = {
        "Id": f"https://kv-unit.vault.azure.net/certificates/api-cert/{version}",
        "VaultName": "kv-unit",
        "ObjectType": "Certificate",
        "ObjectName": "api-cert",
        "Version": version,
        "NBF": 1559081980,
        "EXP": 1559082102,
        **data,
    }
    return {
        "id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
        "topic": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-unit",
        "subject": "api-cert",
        "eventType": event_type,
        "data": body,
    }


@pytest.mark.parametrize("event_type", [CERTIFICATE_NEAR_EXPIRY, CERTIFICATE_EXPIRED])
def test_a_certificate_expiry_event_becomes_a_certificate_request(event_type: str) -> None:
    parsed = parse_event(_certificate_event(event_type), known_vaults={"kv-unit": "https://kv-unit.vault.azure.net"})
    assert isinstance(parsed, KeyVaultEvent) and parsed.about_certificate
    request = parsed.to_request(NOW)
    assert (request.vault, request.secret, request.kind) == ("kv-unit", "api-cert", "certificate")


def test_a_certificate_event_must_name_a_certificate() -> None:
    wrong = parse_event(_certificate_event(CERTIFICATE_NEAR_EXPIRY, ObjectType="Secret"))
    assert isinstance(wrong, MalformedEvent) and "expected 'Certificate'" in wrong.message
    secret_id = _certificate_event(
        CERTIFICATE_NEAR_EXPIRY, Id="https://kv-unit.vault.azure.net/secrets/api-cert/ee059b2bb5bc48398a53b168c6cdcb10"
    )
    malformed = parse_event(secret_id)
    assert isinstance(malformed, MalformedEvent) and "certificate id" in malformed.message
