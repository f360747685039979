"""The Event Grid trigger's object (either schema) as the payload parse_event reads."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func

from functions.events import event_payload, typeless_event_hint
from rotation.domain.events import Ignored, KeyVaultEvent, MalformedEvent, parse_event
from tests.functions.harness import key_vault_event

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


def test_an_event_grid_event_becomes_the_envelope_parse_event_reads() -> None:
    event = key_vault_event("kv-local", "app-secret", "0" * 32, event_id="evt-1")
    payload = event_payload(event)
    assert payload["eventType"] == "Microsoft.KeyVault.SecretNearExpiry"
    assert payload["id"] == "evt-1" and payload["subject"] == "app-secret"
    parsed = parse_event(payload, known_vaults={"kv-local"})
    assert isinstance(parsed, KeyVaultEvent) and parsed.schema == "eventgrid"
    assert (parsed.vault_name, parsed.secret_name, parsed.version) == ("kv-local", "app-secret", "0" * 32)


def test_a_cloud_event_becomes_a_cloudevents_payload() -> None:
    event = key_vault_event(
        "kv-local", "app-secret", schema="cloudevents", event_type="Microsoft.KeyVault.SecretExpired"
    )
    assert isinstance(event, func.CloudEvent)
    payload = event_payload(event)
    assert payload["specversion"] == "1.0" and payload["type"] == "Microsoft.KeyVault.SecretExpired"
    parsed = parse_event(payload, known_vaults={"kv-local"})
    assert isinstance(parsed, KeyVaultEvent) and parsed.schema == "cloudevents"


def test_a_cloud_event_decoded_by_the_host_converter_is_understood() -> None:
    """The real decode path: azure-functions' converter turns a CloudEvents body into func.CloudEvent."""
    from azure.functions.eventgrid import EventGridEventInConverter

    body = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-local",
        "type": "Microsoft.KeyVault.SecretNearExpiry",
        "subject": "app-secret",
        "time": "2025-01-31T12:00:00Z",
        "data": {"VaultName": "kv-local", "ObjectType": "Secret", "ObjectName": "app-secret", "EXP": 1738324800},
    }
    datum = func.meta.Datum(type="json", value=json.dumps(body))
    event = EventGridEventInConverter.decode(datum, trigger_metadata={})
    parsed = parse_event(event_payload(event), known_vaults={"kv-local"})
    assert isinstance(parsed, KeyVaultEvent) and parsed.event_id == "ce-1"


def test_an_event_without_a_type_is_malformed_with_a_hint() -> None:
    event = func.EventGridEvent(
        id="x",
        data={"VaultName": "kv-local"},
        topic=None,  # type: ignore[arg-type]
        subject="app-secret",
        event_type=None,  # type: ignore[arg-type]
        event_time=None,
        data_version="1",
    )
    payload = event_payload(event)
    assert isinstance(parse_event(payload), MalformedEvent)
    hint = typeless_event_hint(payload)
    assert hint is not None and "PYTHON_ISOLATE_WORKER_DEPENDENCIES" in hint
    assert typeless_event_hint(event_payload(key_vault_event("kv-local", "s"))) is None


def test_new_version_events_are_ignored() -> None:
    event = key_vault_event("kv-local", "s", event_type="Microsoft.KeyVault.SecretNewVersionCreated")
    assert isinstance(parse_event(event_payload(event)), Ignored)
