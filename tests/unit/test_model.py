from __future__ import annotations

import copy
import dataclasses
import json
import logging
import pickle
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rotation import redact
from rotation.domain.errors import BadRequestError, NotManagedError, TagError, ThrottledError, ValidationFailedError
from rotation.domain.model import (
    MODES,
    REASON_MAX,
    TAG_LIMIT,
    TAG_VALUE_MAX,
    Action,
    Application,
    Outcome,
    PasswordCredential,
    ReconcileRequest,
    RotationState,
    RotatorOwner,
    SecretValue,
    SecretVersion,
    Sensitive,
    Tag,
    ensure_utc,
    format_utc,
    from_epoch,
    is_guid,
    is_valid_secret_name,
    is_valid_tenant_id,
    is_valid_vault_name,
    new_operation_id,
    new_rotation_id,
    parse_utc,
    rotator_display_name,
)
from rotation.domain.state import ManagedSecret, limit_tag_value

from .samples import APP_ID, KEY_A, KEY_B, NOW, SECRET_VALUE, TENANT_ID, VERSION

# ---------------------------------------------------------------------------------------------- names, time


def test_identifier_checks() -> None:
    assert is_guid(APP_ID) and is_guid(APP_ID.upper())
    assert not is_guid("not-a-guid") and not is_guid(APP_ID + "0")
    assert is_valid_vault_name("kv-prod-1") and not is_valid_vault_name("kv--1")
    assert is_valid_secret_name("db-Password-2") and not is_valid_secret_name("db_password")
    assert not is_valid_secret_name("x" * 128)
    assert is_valid_tenant_id(TENANT_ID) and is_valid_tenant_id("contoso.onmicrosoft.com")
    assert not is_valid_tenant_id("common") and not is_valid_tenant_id("contoso")


def test_naive_datetimes_are_refused_and_others_converted_to_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ensure_utc(datetime(2025, 1, 1))
    plus_two = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert ensure_utc(plus_two) == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert ensure_utc(plus_two).tzinfo is UTC


def test_format_and_parse_utc() -> None:
    assert format_utc(NOW.replace(microsecond=123456)) == "2025-01-31T12:00:00Z"
    assert parse_utc("2025-01-31T12:00:00Z") == NOW
    assert parse_utc(" 2025-01-31T14:00:00+02:00 ") == NOW
    with pytest.raises(ValueError):
        parse_utc("2025-01-31T12:00:00")
    with pytest.raises(ValueError):
        parse_utc("yesterday")
    assert from_epoch(1738324800) == NOW


# ---------------------------------------------------------------------------------------------- tags, state


def test_tag_names_are_their_own_values_and_few() -> None:
    for name in (*Tag.OPERATOR, *Tag.ROTATOR):
        assert getattr(Tag, name) == name
    all_tags = {*Tag.OPERATOR, *Tag.ROTATOR}
    assert len(all_tags) == len(Tag.OPERATOR) + len(Tag.ROTATOR) == 15
    # Emergency and RetirementHeld never land together, so at most 14 are on a secret at once,
    # leaving its owner one tag of Key Vault's 15.
    assert len(all_tags) - (len(Tag.EXCLUSIVE) - 1) == Tag.MOST_AT_ONCE == 14
    assert Tag.MOST_AT_ONCE < TAG_LIMIT
    assert {"ProviderAddress", "CredentialId", "ValidityPeriodDays"} <= all_tags  # Microsoft's sample


def test_rotation_state_values() -> None:
    assert [s.value for s in RotationState] == ["validating", "active", "failed"]
    assert RotationState("active") is RotationState.ACTIVE


def test_limit_tag_value() -> None:
    assert limit_tag_value("short\nreason\t here") == "short reason here"
    long = limit_tag_value("x" * 1000)
    assert len(long) == TAG_VALUE_MAX and long.endswith("...")


# ---------------------------------------------------------------------------------------------- Sensitive


def test_sensitive_never_shows_its_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = Sensitive(SECRET_VALUE)
    renderings = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>60}",
        "%s" % secret,  # noqa: UP031 - old-style formatting is what logging does
        "{}".format(secret),  # noqa: UP032
        repr([secret]),
        repr({"value": secret}),
        repr(SecretValue(SecretVersion("kv", "s", VERSION), secret)),
    ]
    for text in renderings:
        assert SECRET_VALUE not in text
    assert str(secret) == "<redacted>"
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("value is %s / %r", secret, secret)
    assert SECRET_VALUE not in caplog.text


def test_sensitive_reveals_on_request_and_compares_in_constant_time() -> None:
    secret = Sensitive(SECRET_VALUE)
    assert secret.reveal() == SECRET_VALUE
    assert secret.hint == "abc"
    assert secret.matches(SECRET_VALUE)
    assert secret.matches(Sensitive(SECRET_VALUE))
    assert not secret.matches("something-else")
    assert secret != Sensitive(SECRET_VALUE)  # identity, so it cannot leak through == in asserts or sets
    assert bool(secret) and not bool(Sensitive(""))


def test_sensitive_refuses_pickling_and_is_not_duplicated_by_copy() -> None:
    secret = Sensitive(SECRET_VALUE)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"s": secret})["s"] is secret
    with pytest.raises(TypeError):
        json.dumps({"s": secret})


def test_sensitive_only_holds_strings() -> None:
    with pytest.raises(TypeError):
        Sensitive(b"bytes")  # type: ignore[arg-type]


def test_sensitive_registers_for_log_scrubbing() -> None:
    secret = Sensitive(SECRET_VALUE + "-registered")
    assert secret.reveal() in redact.registry.values()


# ---------------------------------------------------------------------------------------------- credentials


def credential(**overrides: object) -> PasswordCredential:
    fields: dict[str, object] = {
        "key_id": KEY_A,
        "display_name": "rotator:kv-prod-1/db-password:20250131T120000Z-1a2b3c4d",
        "hint": "abc",
        "start": NOW,
        "end": NOW + timedelta(days=90),
    }
    fields.update(overrides)
    return PasswordCredential(**fields)  # type: ignore[arg-type]


def test_credential_expiry() -> None:
    c = credential(end=NOW)
    assert c.is_expired(NOW)
    assert not c.is_expired(NOW - timedelta(seconds=1))
    assert not credential(end=None).is_expired(NOW)


def test_credential_times_are_utc_and_never_naive() -> None:
    plus_one = timezone(timedelta(hours=1))
    c = credential(start=datetime(2025, 1, 31, 13, 0, tzinfo=plus_one))
    assert c.start == NOW and c.start is not None and c.start.tzinfo is UTC
    with pytest.raises(ValueError):
        credential(end=datetime(2025, 1, 1))


def test_rotator_owner_round_trip() -> None:
    name = rotator_display_name("kv-prod-1", "db-password", "20250131T120000Z-1a2b3c4d")
    assert name == "rotator:kv-prod-1/db-password:20250131T120000Z-1a2b3c4d"
    assert credential(display_name=name).rotator_owner() == RotatorOwner(
        "kv-prod-1", "db-password", "20250131T120000Z-1a2b3c4d"
    )


@pytest.mark.parametrize(
    "display_name",
    [
        None,
        "",
        "Password uploaded on Fri Jan 31 2025",
        "CI pipeline secret",
        "rotator:",
        "rotator:kv-prod-1/db-password",
        "rotator:kv-prod-1/db-password:",
        "rotator:kv-prod-1/db/password:r1",
        "rotator:kv-prod-1/db-password:r1:extra",
        "Rotator:kv-prod-1/db-password:r1",
        " rotator:kv-prod-1/db-password:r1",
    ],
)
def test_other_display_names_have_no_rotator_owner(display_name: str | None) -> None:
    assert credential(display_name=display_name).rotator_owner() is None


def test_created_by_rotator_for_is_exact_but_case_insensitive() -> None:
    c = credential(display_name="rotator:KV-Prod-1/DB-password:r1")
    assert c.created_by_rotator_for("kv-prod-1", "db-password")
    assert not c.created_by_rotator_for("kv-prod-2", "db-password")
    assert not c.created_by_rotator_for("kv-prod-1", "db-password-2")
    assert not credential(display_name="human").created_by_rotator_for("kv-prod-1", "db-password")


@pytest.mark.parametrize(
    ("vault", "secret", "rotation_id"),
    [("k", "db", "r1"), ("kv-prod-1", "db/x", "r1"), ("kv-prod-1", "db", "r:1"), ("kv-prod-1", "db", "")],
)
def test_rotator_display_name_refuses_pieces_that_would_not_parse_back(
    vault: str, secret: str, rotation_id: str
) -> None:
    with pytest.raises(ValueError):
        rotator_display_name(vault, secret, rotation_id)


def test_new_ids() -> None:
    rotation_id = new_rotation_id(NOW)
    assert re.fullmatch(r"20250131T120000Z-[0-9a-f]{8}", rotation_id)
    assert new_rotation_id(NOW) != rotation_id
    assert rotator_display_name("kv-prod-1", "db", rotation_id)  # usable in a display name
    assert is_guid(new_operation_id())


def test_application_lookup_and_password_limit() -> None:
    app = Application(
        object_id="o1",
        app_id=APP_ID,
        sign_in_audience="AzureADMyOrg",
        password_credentials=[credential(key_id=KEY_A.upper())],  # type: ignore[arg-type]
    )
    assert isinstance(app.password_credentials, tuple)
    assert app.credential(KEY_A) is app.password_credentials[0]
    assert app.credential(KEY_B) is None
    assert app.password_limit is None
    assert dataclasses.replace(app, sign_in_audience="AzureADandPersonalMicrosoftAccount").password_limit == 2
    assert dataclasses.replace(app, sign_in_audience="PersonalMicrosoftAccount").password_limit == 2


# ---------------------------------------------------------------------------------------------- versions


def test_secret_version() -> None:
    tags = {"ProviderAddress": APP_ID}
    v = SecretVersion("kv", "db", VERSION, created=NOW, tags=tags)
    tags["Other"] = "x"
    assert "Other" not in v.tags  # copied
    with pytest.raises(TypeError):
        v.tags["X"] = "y"  # type: ignore[index]
    assert v.managed
    assert v.issued == NOW
    assert dataclasses.replace(v, not_before=NOW - timedelta(days=1)).issued == NOW - timedelta(days=1)
    assert not SecretVersion("kv", "db", None).managed
    assert SecretVersion("kv", "db", None).issued is None


def test_secret_value_unpacks() -> None:
    version = SecretVersion("kv", "db", VERSION)
    got_version, got_value = SecretValue(version, Sensitive(SECRET_VALUE))
    assert got_version is version and got_value.reveal() == SECRET_VALUE


# ---------------------------------------------------------------------------------------------- ManagedSecret


def managed(tags: dict[str, str]) -> ManagedSecret:
    return ManagedSecret.from_tags(tags, vault="kv-prod-1", name="db-password")


def tag_problems(tags: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(TagError) as caught:
        managed(tags)
    assert caught.value.code == "BadTags"
    return caught.value.problems


def test_full_state_parses() -> None:
    m = managed(
        {
            "ProviderAddress": APP_ID.upper(),
            "TenantId": TENANT_ID,
            "CredentialId": KEY_A,
            "RotationId": "20250131T120000Z-1a2b3c4d",
            "RotationState": "Active",
            "RetireCredentialId": KEY_B.upper(),
            "RetireAfter": "2025-02-01T12:00:00Z",
            "FailureReason": "",
            "Owner": "team-a",
        }
    )
    assert m.app_id == APP_ID
    assert m.tenant_id == TENANT_ID
    assert m.credential_id == KEY_A
    assert m.rotation_id == "20250131T120000Z-1a2b3c4d"
    assert m.state is RotationState.ACTIVE
    assert m.retire_credential_id == KEY_B
    assert m.retire_after == NOW + timedelta(days=1)
    assert m.failure_reason is None
    assert m.referenced_key_ids == {KEY_A, KEY_B}


def test_microsoft_sample_tags_are_enough() -> None:
    m = managed({"ProviderAddress": APP_ID, "CredentialId": KEY_A, "ValidityPeriodDays": "60"})
    assert (m.state, m.credential_id, m.rotation_id) == (None, KEY_A, None)


def test_new_managed_secret_has_no_state() -> None:
    m = managed({"ProviderAddress": APP_ID})
    assert m.referenced_key_ids == frozenset()
    assert m.state is None


def test_without_provider_address_the_secret_is_not_managed() -> None:
    with pytest.raises(NotManagedError) as caught:
        managed({"CredentialId": KEY_A})
    assert caught.value.code == "NotManaged"
    assert "ProviderAddress" in str(caught.value)


def test_near_miss_tag_name_is_pointed_out() -> None:
    with pytest.raises(NotManagedError, match="'providerAddress'; tag names are case-sensitive"):
        managed({"providerAddress": APP_ID})


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ({"ProviderAddress": "my-app"}, "not an Application (client) ID"),
        ({"ProviderAddress": ""}, "not an Application (client) ID"),
        ({"ProviderAddress": APP_ID, "TenantId": "common"}, "TenantId='common'"),
        ({"ProviderAddress": APP_ID, "CredentialId": "abc"}, "CredentialId='abc' is not a credential keyId"),
        ({"ProviderAddress": APP_ID, "RetireCredentialId": "abc"}, "RetireCredentialId='abc'"),
        ({"ProviderAddress": APP_ID, "RotationId": "r 1"}, "RotationId='r 1'"),
        ({"ProviderAddress": APP_ID, "CredentialId": KEY_A, "RotationState": "done"}, "RotationState='done'"),
        ({"ProviderAddress": APP_ID, "RetireCredentialId": KEY_B, "RetireAfter": "tomorrow"}, "RetireAfter="),
        (
            {"ProviderAddress": APP_ID, "RetireCredentialId": KEY_B, "RetireAfter": "2025-02-01T00:00:00"},
            "UTC",
        ),
        ({"ProviderAddress": APP_ID, "RetireAfter": "2025-02-01T00:00:00Z"}, "RetireCredentialId is not"),
        (
            {"ProviderAddress": APP_ID, "CredentialId": KEY_A, "RetireCredentialId": KEY_A.upper()},
            "would break the current secret",
        ),
        (
            {"ProviderAddress": APP_ID, "RotationState": "validating", "CredentialId": KEY_A},
            "needs CredentialId",
        ),
        (
            {"ProviderAddress": APP_ID, "RotationState": "validating", "RotationId": "r1"},
            "needs CredentialId",
        ),
        ({"ProviderAddress": APP_ID, "RotationState": "active"}, "active needs CredentialId"),
    ],
)
def test_inconsistent_tags_are_refused_with_the_reason(tags: dict[str, str], fragment: str) -> None:
    assert any(fragment in p for p in tag_problems(tags))


def test_every_tag_problem_is_listed_at_once() -> None:
    found = tag_problems({"ProviderAddress": "x", "CredentialId": "y", "RotationState": "z"})
    assert len(found) == 3


def test_failed_state_needs_no_credential() -> None:
    m = managed({"ProviderAddress": APP_ID, "RotationState": "failed", "FailureReason": "AADSTS700016"})
    assert m.state is RotationState.FAILED and m.failure_reason == "AADSTS700016"


def test_from_version() -> None:
    version = SecretVersion("kv-prod-1", "db", VERSION, tags={"ProviderAddress": APP_ID})
    m = ManagedSecret.from_version(version)
    assert (m.vault, m.name, m.app_id) == ("kv-prod-1", "db", APP_ID)


def test_to_tags_keeps_operator_and_foreign_tags_and_replaces_rotator_tags() -> None:
    base = {
        "ProviderAddress": APP_ID,
        "ValidityPeriodDays": "60",
        "Owner": "team-a",
        "CredentialId": KEY_B,
        "RetireCredentialId": "old",
        "FailureReason": "old failure",
    }
    m = managed({"ProviderAddress": APP_ID}).evolve(
        credential_id=KEY_A,
        rotation_id="r1",
        state=RotationState.VALIDATING,
        retire_after=None,
        failure_reason=None,
    )
    assert m.to_tags(base) == {
        "ProviderAddress": APP_ID,
        "ValidityPeriodDays": "60",
        "Owner": "team-a",
        "CredentialId": KEY_A,
        "RotationId": "r1",
        "RotationState": "validating",
    }
    retiring = m.evolve(retire_credential_id=KEY_B, retire_after=NOW, failure_reason="x\n" * 200)
    tags = retiring.to_tags(base)
    assert tags["RetireAfter"] == "2025-01-31T12:00:00Z"
    assert tags["RetireCredentialId"] == KEY_B
    assert len(tags["FailureReason"]) <= TAG_VALUE_MAX and "\n" not in tags["FailureReason"]
    assert managed(tags).retire_after == NOW  # what is written reads back


def test_to_tags_refuses_to_exceed_the_key_vault_tag_limit() -> None:
    base = {"ProviderAddress": APP_ID, **{f"Mine{i}": "x" for i in range(12)}}
    m = managed({"ProviderAddress": APP_ID}).evolve(credential_id=KEY_A, rotation_id="r1", state=RotationState.ACTIVE)
    with pytest.raises(TagError, match="Key Vault allows 15; remove 1 tag"):
        m.to_tags(base)


# ---------------------------------------------------------------------------------------------- requests


def request(**overrides: object) -> ReconcileRequest:
    fields: dict[str, object] = {
        "vault": "kv-prod-1",
        "secret": "db-password",
        "reason": "sweep: expires in 12 days",
        "mode": "normal",
        "operation_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "requested_at": NOW,
    }
    fields.update(overrides)
    return ReconcileRequest(**fields)  # type: ignore[arg-type]


def test_request_round_trips_through_a_queue_message() -> None:
    original = request(mode="emergency")
    message = original.to_message()
    assert message == {
        "vault": "kv-prod-1",
        "secret": "db-password",
        "reason": "sweep: expires in 12 days",
        "mode": "emergency",
        "operationId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "requestedAt": "2025-01-31T12:00:00Z",
    }
    assert ReconcileRequest.from_message(message) == original
    assert ReconcileRequest.from_json(original.to_json()) == original
    assert ReconcileRequest.from_json(original.to_json().encode()) == original
    assert original.emergency and not request().emergency


def test_new_request_fills_in_the_operation_id() -> None:
    r = ReconcileRequest.new("KV-Prod-1", "db-password", now=NOW)
    assert is_guid(r.operation_id)
    assert (r.vault, r.reason, r.mode, r.requested_at) == ("kv-prod-1", "", "normal", NOW)
    assert r.lock_key == "kv-prod-1/db-password"
    assert ReconcileRequest.new("kv-prod-1", "DB-Password", now=NOW).lock_key == "kv-prod-1/db-password"
    assert MODES == ("normal", "forced", "emergency")
    assert not r.forced and not r.emergency
    forced = ReconcileRequest.new("kv-prod-1", "db-password", now=NOW, mode="forced")
    assert forced.forced and not forced.emergency
    assert ReconcileRequest.new("kv-prod-1", "db-password", now=NOW, mode="emergency").forced


def test_unknown_and_missing_fields_are_rejected_by_name() -> None:
    message = {**request().to_message(), "value": "x", "extra": 1}
    with pytest.raises(BadRequestError, match="unknown field\\(s\\) 'extra', 'value'"):
        ReconcileRequest.from_message(message)
    incomplete = request().to_message()
    del incomplete["mode"]
    with pytest.raises(BadRequestError, match="missing field\\(s\\) 'mode'"):
        ReconcileRequest.from_message(incomplete)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("vault", 7, "'vault' must be a string, got int"),
        ("vault", "kv--1", "not a vault name"),
        ("secret", None, "'secret' must be a string"),
        ("secret", "db/password", "not a secret name"),
        ("reason", ["x"], "'reason' must be a string"),
        ("reason", "x" * (REASON_MAX + 1), "at most 500"),
        ("reason", "line\nforged log line", "printable text on one line"),
        ("mode", True, "'mode' must be a string, got bool"),
        ("mode", "panic", "must be one of normal, forced, emergency"),
        ("operationId", "", "'operation_id' must be"),
        ("operationId", "has space", "'operation_id' must be"),
        ("operationId", 12, "'operation_id' must be a string"),
        ("requestedAt", 1738324800, "'requestedAt' must be a string"),
        ("requestedAt", "2025-01-31T12:00:00", "with a zone"),
        ("requestedAt", "soon", "ISO 8601"),
    ],
)
def test_malformed_messages_say_what_is_wrong(field: str, value: object, fragment: str) -> None:
    message: dict[str, object] = {**request().to_message(), field: value}
    with pytest.raises(BadRequestError) as caught:
        ReconcileRequest.from_message(message)
    assert caught.value.code == "BadRequest"
    assert any(fragment in p for p in caught.value.problems), caught.value.problems


def test_a_reason_of_exactly_the_limit_is_fine() -> None:
    assert len(request(reason="x" * REASON_MAX).reason) == REASON_MAX


def test_all_problems_are_listed_together() -> None:
    message = {**request().to_message(), "vault": 1, "secret": 2, "mode": "x"}
    with pytest.raises(BadRequestError) as caught:
        ReconcileRequest.from_message(message)
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize("payload", [[], "text", None, 5])
def test_message_must_be_an_object(payload: object) -> None:
    with pytest.raises(BadRequestError, match="must be a JSON object"):
        ReconcileRequest.from_message(payload)


def test_non_json_message() -> None:
    with pytest.raises(BadRequestError, match="not JSON"):
        ReconcileRequest.from_json("{nope")
    with pytest.raises(BadRequestError, match="not JSON"):
        ReconcileRequest.from_json(b"\xff\xfe")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(BadRequestError):
        request(vault="x")
    with pytest.raises(BadRequestError, match="time zone"):
        request(requested_at=datetime(2025, 1, 1))
    with pytest.raises(BadRequestError, match="must be a datetime"):
        request(requested_at="2025-01-01T00:00:00Z")


# ---------------------------------------------------------------------------------------------- outcome


def test_outcome_is_json_serialisable_and_free_of_secrets() -> None:
    leaked = Sensitive(SECRET_VALUE + "-outcome")
    outcome = Outcome(
        operation_id="op-1",
        vault="kv-prod-1",
        secret="db-password",
        action=Action.ROTATED,
        state=RotationState.ACTIVE,
        created_key_id=KEY_A,
        vault_version=VERSION,
        retired_key_ids=[KEY_B],  # type: ignore[arg-type]
        removed_orphans=(),
        validation_attempts=4,
        timings={"validate": 12.34567, "total": 15.0},
        warnings=(f"odd value {leaked.reveal()}",),
    ).with_error(ValidationFailedError(f"probe said {leaked.reveal()}"))
    data = outcome.to_dict()
    text = json.dumps(data)
    assert leaked.reveal() not in text
    assert data["action"] == "rotated"
    assert data["state"] == "active"
    assert data["retiredKeyIds"] == [KEY_B]
    assert data["timings"] == {"validate": 12.346, "total": 15.0}
    assert data["ok"] is False
    assert data["error"]["code"] == "ValidationFailed"
    assert "<redacted>" in data["error"]["message"]


def test_outcome_defaults_and_helpers() -> None:
    outcome = Outcome(operation_id="op", vault="kv", secret="s")
    assert outcome.ok and outcome.action is Action.NONE
    data = outcome.to_dict()
    assert data["error"] is None and data["state"] is None and data["requeueAfterSeconds"] is None
    assert replace(outcome, requeue_after=timedelta(hours=24)).to_dict()["requeueAfterSeconds"] == 86400
    assert not outcome.retryable and outcome.with_error(ThrottledError("Graph", 1.0)).retryable
    with pytest.raises(TypeError):
        outcome.timings["x"] = 1.0  # type: ignore[index]
    assert {a.value for a in Action} >= {"none", "rotated", "validated", "retired", "rolled_back", "adopted"}


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_a_timestamp_outside_the_utc_range_is_a_value_error_not_an_overflow(text: str) -> None:
    with pytest.raises(ValueError, match="outside the years"):
        parse_utc(text)


def test_an_epoch_no_datetime_can_hold_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="outside the range"):
        from_epoch(1e20)


@pytest.mark.parametrize("name", ["app-secret\n", "app-secret\r\n", "\napp-secret"])
def test_a_name_with_a_newline_is_not_a_name(name: str) -> None:
    assert not is_valid_secret_name(name)
    assert not is_valid_vault_name(name.replace("app-secret", "kv-local"))
    assert not is_guid("00000000-0000-0000-0000-000000000000\n")
    credential = PasswordCredential(key_id=KEY_A, display_name="rotator:kv-local/app-secret:r1\n")
    assert credential.rotator_owner() is None
