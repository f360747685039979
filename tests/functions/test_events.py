"""The Event Grid function: Key Vault events in both schemas become queue messages, or are dropped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import azure.functions as func
import pytest

from demo.story import event_from_wire
from emulator.rotator_profile import RotatorCloud
from rotation.domain.errors import SettingsError
from tests.functions.harness import (
    Collector,
    events_named,
    key_vault_event,
    request_mark,
    requests_since,
)
from tests.integration.seed import seed_managed_secret


async def deliver(handlers: dict[str, Any], event: func.EventGridEvent | func.CloudEvent) -> Collector[str]:
    out: Collector[str] = Collector()
    result = await handlers["on_key_vault_event"](event, out)
    assert result is None
    return out


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
@pytest.mark.parametrize("kind", ["SecretNearExpiry", "SecretExpired"])
async def test_near_expiry_and_expired_enqueue_a_reconcile(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, schema: str, kind: str
) -> None:
    mark = request_mark(cloud)
    event = key_vault_event(
        "kv-local",
        "app-secret",
        "a" * 32,
        event_type=f"Microsoft.KeyVault.{kind}",
        event_id="3c1a2b4d-0000-4000-8000-000000000001",
        schema=schema,
        vault_url=cloud.vault_url("kv-local"),
    )
    out = await deliver(handlers, event)
    (request,) = out.requests()
    assert (request.vault, request.secret, request.mode) == ("kv-local", "app-secret", "normal")
    # The event id is the operation id: Event Grid redelivers with the same id, so duplicates show.
    assert request.operation_id == "3c1a2b4d-0000-4000-8000-000000000001"
    assert kind in request.reason
    (enqueued,) = events_named(logs.records, "RotationEnqueued")
    assert enqueued["schema"] == schema and enqueued["source"] == "event"
    # Events only enqueue: no call to Key Vault, Graph or Entra (Event Grid wants an answer within 30 s).
    assert requests_since(cloud, mark) == []


async def test_the_local_clouds_own_event_is_understood(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    """A SecretNearExpiry emitted by the local Key Vault, exactly as it put it on the wire."""
    since = int(cloud.admin("GET", "/events?since=0")["next"])
    secret = await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=10)
    wire: list[dict[str, Any]] = []
    for _ in range(40):
        wire = [
            e
            for e in cloud.admin("GET", f"/events?since={since}")["events"]
            if e["subject"] == secret.name and e["eventType"].endswith("SecretNearExpiry")
        ]
        if wire:
            break
        await asyncio.sleep(0.1)
    assert wire, "the local cloud emitted no SecretNearExpiry for a secret expiring in 10 days"
    out = await deliver(handlers, event_from_wire(wire[0]))
    (request,) = out.requests()
    assert (request.vault, request.secret) == ("kv-local", secret.name)
    assert secret.version in request.reason


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.KeyVault.SecretNewVersionCreated",
        "Microsoft.KeyVault.CertificateNewVersionCreated",
        "Microsoft.Storage.BlobCreated",
    ],
)
async def test_other_event_types_are_ignored_with_an_info_log(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, event_type: str
) -> None:
    out = await deliver(handlers, key_vault_event("kv-local", "app-secret", event_type=event_type))
    assert out.calls == 0
    (ignored,) = events_named(logs.records, "EventIgnored")
    assert ignored["eventType"] == event_type
    assert all(r.levelno == logging.INFO for r in logs.records if r.getMessage().startswith("EventIgnored"))


async def test_an_event_from_an_unmanaged_vault_is_dropped_with_a_warning(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    out = await deliver(handlers, key_vault_event("kv-someone-else", "app-secret"))
    assert out.calls == 0
    (dropped,) = events_named(logs.records, "EventFromUnmanagedVault")
    assert "kv-someone-else" in dropped["reason"]


def _event(**overrides: Any) -> func.EventGridEvent:
    fields: dict[str, Any] = {
        "id": "evt-malformed",
        "data": {"VaultName": "kv-local", "ObjectName": "app-secret", "ObjectType": "Secret"},
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-local",
        "subject": "app-secret",
        "event_type": "Microsoft.KeyVault.SecretNearExpiry",
        "event_time": None,
        "data_version": "1",
    }
    fields.update(overrides)
    return func.EventGridEvent(**fields)


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (_event(data="not json"), "not JSON"),
        (_event(data=[1, 2]), "must be an object"),
        (_event(subject="other-secret"), "different secrets"),
        (_event(data={"VaultName": "kv-local", "ObjectName": "bad name!"}, subject=None), "not a valid secret name"),
        (_event(data={"VaultName": "kv-local", "ObjectType": "Key", "ObjectName": "k"}), "ObjectType"),
        (_event(data={"VaultName": "kv-local", "ObjectName": "app-secret", "EXP": "soon"}), "EXP"),
        (_event(topic=None, event_type=None), "neither an Event Grid event"),
    ],
)
async def test_a_malformed_event_is_logged_and_dropped_without_raising(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, event: Any, problem: str
) -> None:
    out = await deliver(handlers, event)
    assert out.calls == 0
    (malformed,) = events_named(logs.records, "EventMalformed")
    assert problem in malformed["problem"]


async def test_a_typeless_event_says_how_to_fix_it(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    await deliver(handlers, _event(topic=None, event_type=None))
    (malformed,) = events_named(logs.records, "EventMalformed")
    assert "PYTHON_ISOLATE_WORKER_DEPENDENCIES" in malformed["hint"]


async def test_broken_settings_raise_so_event_grid_redelivers(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ROTATION_VAULTS")
    with pytest.raises(SettingsError):
        await deliver(handlers, key_vault_event("kv-local", "app-secret"))
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert invalid["function"] == "on_key_vault_event"


# --------------------------------------------------------------------------------------------------
# Events are matched to configured vaults by host, never by the alias (finding 16)

PAY_PROD = "https://kv-pay-prod.vault.azure.net"


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
async def test_an_aliased_vault_receives_its_events_under_the_alias(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, schema: str
) -> None:
    """``payments=https://kv-pay-prod.vault.azure.net``: kv-pay-prod's events are the alias's."""
    monkeypatch.setenv("ROTATION_VAULTS", f"payments={PAY_PROD}")
    out = await deliver(handlers, key_vault_event("kv-pay-prod", "app-secret", schema=schema))
    (request,) = out.requests()
    assert (request.vault, request.secret) == ("payments", "app-secret")


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
async def test_an_event_without_an_id_is_matched_by_its_vault_names_host(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, schema: str
) -> None:
    """No ``Id``: ``VaultName`` (or the topic) names ``{name}.vault.azure.net`` and the other clouds' hosts."""
    monkeypatch.setenv("ROTATION_VAULTS", "payments=https://kv-pay-gov.vault.usgovcloudapi.net")
    event = key_vault_event("kv-pay-gov", "app-secret", schema=schema)
    data = event.get_json()
    assert isinstance(data, dict)
    del data["Id"]
    out = await deliver(handlers, event)
    (request,) = out.requests()
    assert (request.vault, request.secret) == ("payments", "app-secret")


async def test_an_event_of_the_vault_named_like_the_alias_is_dropped(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    """A vault that happens to be called ``payments`` is not the aliased one: its events never enqueue."""
    monkeypatch.setenv("ROTATION_VAULTS", f"payments={PAY_PROD}")
    out = await deliver(handlers, key_vault_event("payments", "app-secret"))
    assert out.calls == 0
    (dropped,) = events_named(logs.records, "EventFromUnmanagedVault")
    assert "payments" in dropped["reason"]


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
async def test_a_local_cloud_vault_is_matched_by_the_ids_host_and_port(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    logs: pytest.LogCaptureFixture,
    schema: str,
) -> None:
    local = cloud.vault_url("kv-local")
    monkeypatch.setenv("ROTATION_VAULTS", f"payments={local}")
    out = await deliver(handlers, key_vault_event("kv-local", "app-secret", schema=schema, vault_url=local))
    (request,) = out.requests()
    assert (request.vault, request.secret) == ("payments", "app-secret")

    # The same loopback host on another port is another vault (the local cloud serves one per port).
    host, _, port = local.rpartition(":")
    other = f"{host}:{int(port) + 1 if int(port) < 65535 else int(port) - 1}"
    dropped_out = await deliver(handlers, key_vault_event("kv-local", "app-secret", schema=schema, vault_url=other))
    assert dropped_out.calls == 0
    assert events_named(logs.records, "EventFromUnmanagedVault")
