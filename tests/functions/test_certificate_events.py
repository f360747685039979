"""The Event Grid function and managed certificates: CertificateNearExpiry/CertificateExpired become
certificate requests while ROTATION_CERTIFICATES is on, and are dropped (logged) while it is off."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from emulator.rotator_profile import RotatorCloud
from tests.functions.harness import Collector, events_named, request_mark, requests_since


def certificate_event(cloud: RotatorCloud, name: str, event_type: str) -> func.EventGridEvent:
    version = uuid.uuid4().hex
    data: dict[str, object] = {
        "Id": f"{cloud.vault_url('kv-local')}/certificates/{name}/{version}",
        "VaultName": "kv-local",
        "ObjectType": "Certificate",
        "ObjectName": name,
        "Version": version,
        "NBF": None,
        "EXP": int(datetime.now(UTC).timestamp()) + 10 * 86400,
    }
    return func.EventGridEvent(
        id=str(uuid.uuid4()),
        data=data,
        topic="/subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-local",
        subject=name,
        event_type=event_type,
        event_time=datetime.now(UTC),
        data_version="1",
    )


@pytest.mark.parametrize(
    "event_type", ["Microsoft.KeyVault.CertificateNearExpiry", "Microsoft.KeyVault.CertificateExpired"]
)
async def test_a_certificate_event_enqueues_a_certificate_request_when_certificates_are_on(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, event_type: str
) -> None:
    monkeypatch.setenv("ROTATION_CERTIFICATES", "true")
    mark = request_mark(cloud)
    out: Collector[str] = Collector()
    await handlers["on_key_vault_event"](certificate_event(cloud, "api-cert", event_type), out)
    (request,) = out.requests()
    assert (request.vault, request.secret, request.kind) == ("kv-local", "api-cert", "certificate")
    assert requests_since(cloud, mark) == []  # events only enqueue


async def test_a_certificate_event_is_dropped_while_certificates_are_off(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ROTATION_CERTIFICATES", raising=False)
    out: Collector[str] = Collector()
    await handlers["on_key_vault_event"](
        certificate_event(cloud, "api-cert", "Microsoft.KeyVault.CertificateNearExpiry"), out
    )
    assert out.requests() == []
    assert events_named(logs.records, "EventFromUnmanagedVault") == []
    (dropped,) = events_named(logs.records, "EventIgnored")
    assert "ROTATION_CERTIFICATES" in dropped["reason"]


async def test_the_status_routes_show_a_managed_certificate_as_one_while_certificates_are_on(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functions.harness import body_of, http_request

    assert cloud.rotator is not None
    grants = [
        {"objectId": cloud.rotator.sp_object_id, "vault": vault, "role": role}
        for vault in ("kv-local", "kv-second")
        for role in ("Key Vault Certificates Officer", "Key Vault Crypto User")
    ]
    for grant in grants:
        cloud.admin("POST", "/role-assignments", grant)
    try:
        name = f"api-cert-{uuid.uuid4().hex[:8]}"
        app_id = str(uuid.uuid4())
        cloud.create_certificate("kv-local", name, tags={"ProviderAddress": app_id})
        monkeypatch.setenv("ROTATION_CERTIFICATES", "true")
        answer = body_of(await handlers["list_secrets"](http_request("GET", "/api/secrets")))
        assert "secrets" in answer, answer
        listed = answer["secrets"]
        (certificate,) = [s for s in listed if s["secret"] == name]
        assert certificate["kind"] == "certificate" and certificate["appId"] == app_id
        # Other tests' certificates share the vaults: each entry's kind is what its vault says.
        certificates = cloud.edit(lambda world: {(v, c) for v in world.vaults for c in world.vaults[v].certificates})
        assert all((s["kind"] == "certificate") == ((s["vault"], s["secret"]) in certificates) for s in listed)

        route = {"vault": "kv-local", "name": name}
        one = await handlers["secret_status"](http_request("GET", f"/api/secrets/kv-local/{name}", route_params=route))
        assert one.status_code == 200, one.get_body()
        status = body_of(one)
        assert (status["kind"], status["secret"], status["appId"]) == ("certificate", name, app_id)

        monkeypatch.setenv("ROTATION_CERTIFICATES", "false")
        off = await handlers["secret_status"](http_request("GET", f"/api/secrets/kv-local/{name}", route_params=route))
        assert off.status_code == 409 and body_of(off)["error"]["code"] == "CertificatesDisabled"
        answer = body_of(await handlers["list_secrets"](http_request("GET", "/api/secrets")))
        assert "secrets" in answer, answer
        listed = answer["secrets"]
        assert name not in {s["secret"] for s in listed}
    finally:
        for grant in grants:
            cloud.admin("DELETE", "/role-assignments", grant)
