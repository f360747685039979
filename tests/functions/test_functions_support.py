"""The function app's pure helpers: request validation, caller roles, event payloads, retry decisions."""

from __future__ import annotations

import ast
import base64
import importlib
import json
import pkgutil
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest

import rotation
from functions.support import (
    ApiError,
    Disposition,
    api_error_from,
    authorize_operator,
    defer_delay_seconds,
    deferral_expired,
    disposition,
    event_payload,
    loggable_body,
    parse_client_principal,
    parse_rotate_body,
    queue_client_from_env,
    require_secret_name,
    require_vault,
    status_url,
    typeless_event_hint,
)
from rotation.domain.errors import (
    LockLostError,
    NotManagedError,
    PermissionDeniedError,
    RotationError,
    ServiceUnavailableError,
    ThrottledError,
    ValidationFailedError,
    error_classes,
)
from rotation.domain.events import Ignored, KeyVaultEvent, MalformedEvent, parse_event
from rotation.domain.model import Outcome, ReconcileRequest
from tests.functions.harness import ROLE_URI, client_principal, key_vault_event

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


# ------------------------------------------------------------------------------------- rotate body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"reason": "leaked in a log"}', ("leaked in a log", False)),
        (b'{"reason": "  padded  ", "emergency": true}', ("padded", True)),
        (b'{"reason": "x", "emergency": false}', ("x", False)),
        (json.dumps({"reason": "r" * 500}).encode(), ("r" * 500, False)),
    ],
)
def test_a_valid_rotate_body(body: bytes, expected: tuple[str, bool]) -> None:
    command = parse_rotate_body(body)
    assert (command.reason, command.emergency) == expected
    assert command.mode == ("emergency" if expected[1] else "forced")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "JSON object"),
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'["reason"]', "JSON object"),
        (b"null", "JSON object"),
        (b"{}", "'reason' is required"),
        (b'{"reason": ""}', "must not be empty"),
        (b'{"reason": "   "}', "must not be empty"),
        (json.dumps({"reason": "r" * 501}).encode(), "at most 500"),
        (b'{"reason": 5}', "'reason' must be a string, got a number"),
        (b'{"reason": "x", "emergency": "yes"}', "'emergency' must be true or false, got a string"),
        (b'{"reason": "x", "emergency": 1}', "got a number"),
        (b'{"reason": "x", "vault": "kv-other"}', "unknown field(s) 'vault'"),
        (b'{"reason": "line\\nforged"}', "printable"),
    ],
)
def test_an_invalid_rotate_body_is_a_400_naming_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_rotate_body(body)
    assert caught.value.status == 400
    assert caught.value.code == "BadRequest"
    assert fragment in caught.value.message


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ApiError) as caught:
        parse_rotate_body(b'{"emergency": "no", "extra": 1}')
    message = caught.value.message
    assert "'reason' is required" in message and "'emergency'" in message and "'extra'" in message


def test_a_huge_body_is_refused_before_parsing() -> None:
    with pytest.raises(ApiError) as caught:
        parse_rotate_body(b" " * 100_000)
    assert caught.value.status == 413


def test_vault_and_secret_names() -> None:
    assert require_vault("KV-Local", {"kv-local"}) == "kv-local"
    with pytest.raises(ApiError) as caught:
        require_vault("kv-other", {"kv-local"})
    assert (caught.value.status, caught.value.code) == (404, "UnknownVault")
    assert "kv-local" not in caught.value.message  # the configured list is not disclosed
    assert require_secret_name("app-secret-1") == "app-secret-1"
    with pytest.raises(ApiError) as caught:
        require_secret_name("bad_name!")
    assert caught.value.status == 400


def test_status_url_is_on_the_callers_host() -> None:
    url = status_url("https://func.example.net/api/secrets/kv-a/s-1/rotate?code=k", "kv-a", "s-1")
    assert url == "https://func.example.net/api/secrets/kv-a/s-1"


def test_rotation_errors_map_to_http_statuses() -> None:
    assert api_error_from(NotManagedError("kv", "s")).status == 404
    assert api_error_from(PermissionDeniedError("Graph", "a role")).status == 502
    throttled = api_error_from(ThrottledError("Graph", 120.0))
    assert throttled.status == 503 and throttled.headers["Retry-After"].isdigit()
    assert api_error_from(RotationError("x")).status == 500


# ---------------------------------------------------------------------------------- the caller


def test_no_principal_header_means_function_key_only() -> None:
    caller = authorize_operator({"x-functions-key": "k"}, ROLE)
    assert not caller.authenticated
    assert caller.describe() == "function key"


@pytest.mark.parametrize(
    "principal",
    [
        client_principal(ROLE),
        client_principal(ROLE, role_typ=ROLE_URI),
        client_principal("Other", ROLE, role_typ="roles"),
        # role_typ names a custom claim type; App Service's mapping may produce either form.
        client_principal(ROLE, role_typ="custom-role-claim"),
    ],
)
def test_a_principal_with_the_operator_role_is_allowed(principal: str) -> None:
    caller = authorize_operator({"X-MS-CLIENT-PRINCIPAL": principal}, ROLE)
    assert caller.authenticated and ROLE in caller.roles
    assert caller.describe().startswith("aad:")


def test_header_names_are_case_insensitive_in_plain_mappings() -> None:
    with pytest.raises(ApiError):
        authorize_operator({"x-ms-client-principal": client_principal("Reader")}, ROLE)


@pytest.mark.parametrize(
    "principal",
    [
        client_principal(),
        client_principal("Rotation.Reader"),
        client_principal(ROLE.lower()),  # app role values are compared exactly
        client_principal(ROLE, role_typ="roles", claim_typ="groups"),  # a group named like the role
    ],
)
def test_a_principal_without_the_operator_role_is_refused(principal: str) -> None:
    with pytest.raises(ApiError) as caught:
        authorize_operator({"X-MS-CLIENT-PRINCIPAL": principal}, ROLE)
    assert (caught.value.status, caught.value.code) == (403, "Forbidden")
    assert ROLE in caught.value.message


@pytest.mark.parametrize(
    "header",
    [
        "",
        "%%%not-base64%%%",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"auth_typ": "aad"}').decode(),
        base64.b64encode(b'{"claims": [{"typ": "roles"}]}').decode(),
        base64.b64encode(b'{"claims": ["roles"]}').decode(),
    ],
)
def test_an_unreadable_principal_fails_closed(header: str) -> None:
    with pytest.raises(ApiError) as caught:
        authorize_operator({"X-MS-CLIENT-PRINCIPAL": header}, ROLE)
    assert caught.value.status == 403


def test_principal_parsing_tolerates_missing_padding_and_urlsafe_alphabet() -> None:
    raw = json.dumps({"auth_typ": "aad", "claims": [{"typ": "roles", "val": ROLE}], "x": "??>>"}).encode()
    unpadded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert ROLE in parse_client_principal(unpadded).roles


# ---------------------------------------------------------------------------------------- events


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


# ------------------------------------------------------------------------------------- dispositions


def _rotation_sources() -> list[Path]:
    return [*(ROOT / "rotation").rglob("*.py"), *(ROOT / "functions").rglob("*.py"), ROOT / "function_app.py"]


def test_every_error_is_a_class_of_its_own_code() -> None:
    """No bare ``RotationError(..., code=...)``: a code's meaning (retry, HTTP status, user fault) lives
    on its class, so a new failure cannot slip past the worker's and the HTTP edge's decisions."""
    for module in pkgutil.walk_packages(rotation.__path__, "rotation."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for path in _rotation_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "RotationError":
                raise AssertionError(f"{path}:{node.lineno}: raise a RotationError subclass with its own code")
    classes = error_classes()
    codes = [cls.default_code for cls in classes]
    assert {"NotManaged", "Throttled", "LockLost", "ServiceUnavailable", "PasswordLimit"} <= set(codes)
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert cls.why and (cls is RotationError or cls.why != RotationError.why), cls
        assert 400 <= cls.http_status <= 599, cls


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, Disposition.DONE),
        (NotManagedError("kv", "s"), Disposition.GIVE_UP),
        (ValidationFailedError("not proven"), Disposition.GIVE_UP),
        (PermissionDeniedError("Graph", "a role"), Disposition.GIVE_UP),
        (ThrottledError("Graph", 120.0), Disposition.RETRY),
        (LockLostError("lost"), Disposition.RETRY),
        (ServiceUnavailableError("down"), Disposition.RETRY),
        (RotationError("never heard of it"), Disposition.RETRY),
    ],
)
def test_disposition(error: RotationError | None, expected: Disposition) -> None:
    outcome = Outcome("op", "kv-local", "s")
    if error is not None:
        outcome = outcome.with_error(error)
    assert disposition(outcome) is expected


# ---------------------------------------------------------------------------------------- deferral


def test_defer_delay_is_a_lease_period_plus_jitter() -> None:
    rng = random.Random(7)
    delays = {defer_delay_seconds(60, rng=rng) for _ in range(200)}
    assert min(delays) >= 60 and max(delays) <= 90 and len(delays) > 10
    assert 15 <= defer_delay_seconds(15) <= 23


def test_a_request_deferred_for_hours_is_abandoned() -> None:
    now = datetime(2025, 1, 31, 12, tzinfo=UTC)
    fresh = ReconcileRequest.new("kv-local", "s", now=now - timedelta(minutes=5))
    stale = ReconcileRequest.new("kv-local", "s", now=now - timedelta(hours=7))
    assert not deferral_expired(fresh, now)
    assert deferral_expired(stale, now)


def test_queue_client_follows_the_storage_setting() -> None:
    client = queue_client_from_env(
        "q", encoding="base64", credential=None, env={"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    )
    assert client.queue_name == "q" and "127.0.0.1:10001" in client.url
    with pytest.raises(RotationError) as caught:
        queue_client_from_env("q", encoding="none", credential=None, env={})
    assert caught.value.code == "BadSettings"


def test_loggable_body_cannot_forge_log_lines() -> None:
    text = loggable_body(b'{"a":1}\nRotationCompleted {"fake":true}')
    assert "\n" not in text and "\\n" in text
    assert loggable_body(b"x" * 5000).endswith("...")
