from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rotation.domain.events import (
    SECRET_EXPIRED,
    SECRET_NEAR_EXPIRY,
    SECRET_NEW_VERSION_CREATED,
    Ignored,
    KeyVaultEvent,
    MalformedEvent,
    parse_event,
)

from .samples import NOW, VERSION

EVENT_ID = "00eccf70-95a7-4e7c-8299-2eb17ee9ad64"
TOPIC = "/subscriptions/0000/resourceGroups/sample-rg/providers/Microsoft.KeyVault/vaults/sample-kv"


def data(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Id": f"https://sample-kv.vault.azure.net/secrets/newsecret/{VERSION}",
        "VaultName": "sample-kv",
        "ObjectType": "Secret",
        "ObjectName": "newsecret",
        "Version": VERSION,
        "NBF": 1559081980,
        "EXP": 1559082102,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def eventgrid(event_type: str = SECRET_NEAR_EXPIRY, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": EVENT_ID,
        "topic": TOPIC,
        "subject": "newsecret",
        "eventType": event_type,
        "eventTime": "2019-07-25T01:08:33.1036736Z",
        "data": data(),
        "dataVersion": "1",
        "metadataVersion": "1",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def cloudevent(event_type: str = SECRET_EXPIRED, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": EVENT_ID,
        "source": TOPIC,
        "subject": "newsecret",
        "type": event_type,
        "time": "2019-07-25T01:08:33.1036736Z",
        "data": data(),
        "specversion": "1.0",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def parsed(payload: object) -> KeyVaultEvent:
    result = parse_event(payload)
    assert isinstance(result, KeyVaultEvent), result
    return result


def malformed(payload: object) -> str:
    result = parse_event(payload)
    assert isinstance(result, MalformedEvent), result
    return result.message


# ---------------------------------------------------------------------------------------------- both schemas


def test_event_grid_near_expiry() -> None:
    event = parsed(eventgrid())
    assert event == KeyVaultEvent(
        type=SECRET_NEAR_EXPIRY,
        vault_name="sample-kv",
        secret_name="newsecret",
        version=VERSION,
        exp=datetime(2019, 5, 28, 22, 21, 42, tzinfo=UTC),
        nbf=datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC),
        event_id=EVENT_ID,
        schema="eventgrid",
    )
    assert event.kind == "SecretNearExpiry"


def test_cloudevents_expired() -> None:
    event = parsed(cloudevent())
    assert (event.type, event.kind, event.schema) == (SECRET_EXPIRED, "SecretExpired", "cloudevents")
    assert (event.vault_name, event.secret_name, event.version) == ("sample-kv", "newsecret", VERSION)


def test_functions_style_envelope_with_snake_case_event_type() -> None:
    payload = eventgrid()
    payload["event_type"] = payload.pop("eventType")
    assert parsed(payload).schema == "eventgrid"


def test_microsoft_sample_with_string_times_and_stray_spaces() -> None:
    # As published in Microsoft's schema page: "ObjectName " with a trailing space, " <version>" with
    # a leading one, NBF/EXP as strings.
    sample = {
        "Id": f"https://sample-kv.vault.azure.net/secrets/newsecret/{VERSION}",
        "VaultName": "sample-kv",
        "ObjectType": "Secret",
        "ObjectName ": "newsecret",
        "Version": f" {VERSION}",
        "NBF": "1559081980",
        "EXP": "1559082102",
    }
    event = parsed(eventgrid(data=sample))
    assert event.secret_name == "newsecret"
    assert event.version == VERSION
    assert event.exp == datetime(2019, 5, 28, 22, 21, 42, tzinfo=UTC)


def test_data_as_a_json_string() -> None:
    assert parsed(eventgrid(data=json.dumps(data()))).secret_name == "newsecret"


def test_lower_camel_case_data_keys() -> None:
    body = {"id": data()["Id"], "vaultName": "sample-kv", "objectName": "newsecret", "exp": 1559082102}
    assert parsed(eventgrid(data=body)).exp is not None


@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_or_null_times_are_none(value: object) -> None:
    event = parsed(eventgrid(data=data(EXP=value, NBF=...)))
    assert event.exp is None and event.nbf is None


def test_float_times() -> None:
    assert parsed(eventgrid(data=data(EXP=1559082102.5))).exp == datetime(2019, 5, 28, 22, 21, 42, 500000, tzinfo=UTC)


def test_minimal_data_is_enough() -> None:
    event = parsed(eventgrid(data={"VaultName": "sample-kv", "ObjectName": "newsecret"}, subject=..., topic=...))
    assert (event.vault_name, event.secret_name, event.version, event.exp) == (
        "sample-kv",
        "newsecret",
        None,
        None,
    )


def test_names_come_from_the_id_when_the_rest_is_missing() -> None:
    body = {"Id": f"https://sample-kv.vault.azure.net/secrets/newsecret/{VERSION}"}
    event = parsed(eventgrid(data=body, subject=..., topic=...))
    assert (event.vault_name, event.secret_name, event.version) == ("sample-kv", "newsecret", VERSION)


def test_vault_names_compare_case_insensitively_and_are_lowered() -> None:
    event = parsed(eventgrid(data=data(VaultName="Sample-KV")))
    assert event.vault_name == "sample-kv"


def test_loopback_secret_ids_of_the_local_cloud_skip_the_host_check() -> None:
    body = data(Id=f"https://127.0.0.1:8443/secrets/newsecret/{VERSION}")
    assert parsed(eventgrid(data=body)).vault_name == "sample-kv"
    body = data(Id=f"https://localhost:8443/secrets/newsecret/{VERSION}")
    assert parsed(eventgrid(data=body)).vault_name == "sample-kv"


# ---------------------------------------------------------------------------------------------- ignored


def test_new_version_events_are_ignored_because_the_rotator_fires_them() -> None:
    result = parse_event(eventgrid(SECRET_NEW_VERSION_CREATED))
    assert isinstance(result, Ignored)
    assert "loop" in result.reason
    assert (result.event_type, result.event_id) == (SECRET_NEW_VERSION_CREATED, EVENT_ID)
    assert isinstance(parse_event(cloudevent(SECRET_NEW_VERSION_CREATED)), Ignored)


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.KeyVault.CertificateNewVersionCreated",
        "Microsoft.KeyVault.VaultAccessPolicyChanged",
        "Microsoft.EventGrid.SubscriptionValidationEvent",
        "Contoso.Custom",
    ],
)
def test_other_event_types_are_ignored(event_type: str) -> None:
    result = parse_event(eventgrid(event_type, data={"whatever": True}))
    assert isinstance(result, Ignored)


def test_events_of_vaults_not_managed_here_are_ignored() -> None:
    result = parse_event(eventgrid(), known_vaults=["KV-Prod-1"])
    assert isinstance(result, Ignored) and "sample-kv" in result.reason
    assert isinstance(parse_event(eventgrid(), known_vaults=["Sample-KV"]), KeyVaultEvent)


# ---------------------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ("text", "JSON object"),
        ({"id": EVENT_ID, "data": {}}, "neither an Event Grid event"),
        (eventgrid(eventType=5), "event type must be a string"),
        (eventgrid(eventType=" "), "event type is empty"),
        (eventgrid(id=...), "no id"),
        (eventgrid(data=...), "no data"),
        (eventgrid(data=None), "data must be an object"),
        (eventgrid(data=[1]), "data must be an object"),
        (eventgrid(data="{not json"), "not JSON"),
        (eventgrid(data={"VaultName": "sample-kv"}, subject=...), "names no secret"),
        (eventgrid(data={"ObjectName": "newsecret"}, topic=...), "names no vault"),
        (eventgrid(data=data(VaultName=7)), "VaultName must be a string"),
        (eventgrid(data=data(ObjectType="Key")), "expected 'Secret'"),
        (eventgrid(data=data(EXP="soon")), "EXP must be epoch seconds"),
        (eventgrid(data=data(EXP=True)), "boolean"),
        (eventgrid(data=data(EXP=-5)), "not a plausible time"),
        (eventgrid(data=data(NBF=1e20)), "not a plausible time"),
        (eventgrid(data=data(EXP=float("nan"))), "not a plausible time"),
        (eventgrid(data=data(EXP=[1])), "a number or numeric string"),
        (eventgrid(data=data(Id="not a url")), "not a Key Vault secret id"),
        (
            eventgrid(data=data(Id="http://sample-kv.vault.azure.net/secrets/newsecret")),
            "not a Key Vault secret id",
        ),
        (
            eventgrid(data=data(Id="https://sample-kv.vault.azure.net/keys/newsecret")),
            "not a Key Vault secret id",
        ),
        (eventgrid(data=data(Version="v1", Id=...)), "32 hex digits"),
        (eventgrid(data=data(VaultName="a--b", Id=...), topic=...), "not a valid vault name"),
        (eventgrid(data=data(ObjectName="bad_name", Id=...), subject=...), "not a valid secret name"),
        (eventgrid(data={**data(), "vaultname": "other-kv"}), "conflicting copies"),
        (eventgrid(data={1: "x"}), "non-string key"),
    ],
)
def test_malformed_events_say_what_is_wrong(payload: object, fragment: str) -> None:
    assert fragment in malformed(payload)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (eventgrid(data=data(VaultName="other-kv")), "different vaults"),
        (eventgrid(topic=TOPIC.replace("sample-kv", "other-kv")), "different vaults"),
        (
            eventgrid(data=data(Id=f"https://other-kv.vault.azure.net/secrets/newsecret/{VERSION}")),
            "different vaults",
        ),
        (eventgrid(subject="othersecret"), "different secrets"),
        (cloudevent(subject="othersecret"), "different secrets"),
        (eventgrid(data=data(ObjectName="othersecret")), "different secrets"),
        (eventgrid(data=data(Version="ff059b2bb5bc48398a53b168c6cdcb10")), "different versions"),
    ],
)
def test_copies_of_the_same_fact_must_agree(payload: object, fragment: str) -> None:
    message = malformed(payload)
    assert fragment in message


def test_malformed_keeps_the_event_id_for_logs() -> None:
    result = parse_event(eventgrid(data=None))
    assert isinstance(result, MalformedEvent) and result.event_id == EVENT_ID


@pytest.mark.parametrize(
    "payload",
    [
        {"eventType": SECRET_NEAR_EXPIRY},
        {"eventType": SECRET_NEAR_EXPIRY, "id": 5, "data": {}},
        {"type": None, "source": None, "specversion": None},
        {"specversion": "1.0"},
        {"eventType": SECRET_EXPIRED, "id": "x", "data": {"Id": "https://[bad/secrets/x/y"}},
        {"eventType": SECRET_EXPIRED, "id": "x", "data": {"Id": 5}},
        {"eventType": [], "id": "x"},
    ],
)
def test_parsing_never_raises(payload: object) -> None:
    assert isinstance(parse_event(copy.deepcopy(payload)), (KeyVaultEvent, Ignored, MalformedEvent))


# ---------------------------------------------------------------------------------------------- to a request


def test_event_becomes_a_reconcile_request_keyed_by_the_event_id() -> None:
    request = parsed(eventgrid(data=data(VaultName="Sample-KV"))).to_request(NOW)
    assert (request.vault, request.secret, request.mode) == ("sample-kv", "newsecret", "normal")
    assert request.operation_id == EVENT_ID  # redeliveries of one event share an operation id
    assert request.requested_at == NOW
    assert request.reason == f"Key Vault event SecretNearExpiry for version {VERSION}"


def test_event_without_version_or_usable_id() -> None:
    event = parsed(eventgrid(id="weird id with spaces", data={"VaultName": "sample-kv", "ObjectName": "newsecret"}))
    request = event.to_request(NOW)
    assert request.operation_id != event.event_id
    assert request.reason == "Key Vault event SecretNearExpiry for the secret"


def test_events_are_matched_to_configured_vaults_by_host_and_name_the_alias() -> None:
    vaults = {"payments": "https://sample-kv.vault.azure.net"}
    result = parse_event(eventgrid(), known_vaults=vaults)
    assert isinstance(result, KeyVaultEvent) and result.vault_name == "payments"
    # A vault called like the alias is another vault.
    assert isinstance(parse_event(eventgrid(), known_vaults={"sample-kv": "https://kv-other.vault.azure.net"}), Ignored)
    # Without an Id, VaultName names its host in every Azure cloud; the default port is no difference.
    no_id = eventgrid(data=data(Id=...))
    gov = {"payments": "https://sample-kv.vault.usgovcloudapi.net:443"}
    result = parse_event(no_id, known_vaults=gov)
    assert isinstance(result, KeyVaultEvent) and result.vault_name == "payments"


def test_an_id_less_event_matching_two_configured_vaults_is_malformed() -> None:
    vaults = {"a": "https://sample-kv.vault.azure.net", "b": "https://sample-kv.vault.azure.cn"}
    result = parse_event(eventgrid(data=data(Id=...)), known_vaults=vaults)
    assert isinstance(result, MalformedEvent) and "a, b" in result.message
    # With an Id, its host decides.
    matched = parse_event(eventgrid(), known_vaults=vaults)
    assert isinstance(matched, KeyVaultEvent) and matched.vault_name == "a"


def test_loopback_vaults_are_told_apart_by_port() -> None:
    local = {"kv-local": "https://127.0.0.1:8443", "other": "https://127.0.0.1:8444"}
    event = eventgrid(data=data(Id=f"https://127.0.0.1:8444/secrets/newsecret/{VERSION}"))
    result = parse_event(event, known_vaults=local)
    assert isinstance(result, KeyVaultEvent) and result.vault_name == "other"
    assert isinstance(parse_event(event, known_vaults={"kv-local": "https://127.0.0.1:8443"}), Ignored)
    bad_port = eventgrid(data=data(Id=f"https://127.0.0.1:x/secrets/newsecret/{VERSION}"))
    assert isinstance(parse_event(bad_port, known_vaults=local), MalformedEvent)
