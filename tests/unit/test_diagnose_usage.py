"""Diagnose, sign-in report facts -> the consumers' credential (issue 13), and the truncation rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rotation.domain.model import Application, PasswordCredential, SecretVersion, Sensitive
from rotation.settings import Settings
from rotation.tools.diagnose import AppLookup, Observed, Status, TenantLookup, diagnosis_json, judge, render_text

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
APP_ID = "11111111-2222-3333-4444-555555555555"
SETTINGS = Settings(
    vaults={"kv-local": "https://kv-local.vault.azure.net"}, tenant_id="aaaaaaaa-0000-0000-0000-000000000001"
)
STORED_VALUE = "Ab18Q~" + "s" * 34
STORED = PasswordCredential(
    "aaaaaaaa-1111-0000-0000-000000000001", "stored", "Ab1", NOW - timedelta(days=40), NOW + timedelta(days=50)
)
OTHER = PasswordCredential(
    "bbbbbbbb-2222-0000-0000-000000000002", "pipeline", "Zz9", NOW - timedelta(days=90), NOW + timedelta(days=20)
)
DAY = timedelta(days=1)


def midnight(days_ago: int) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=0, minute=0)


def observed(
    report: dict[str, datetime | None] | None,
    *,
    value: str = STORED_VALUE,
    tags: dict[str, str] | None = None,
    problem: str | None = None,
) -> Observed:
    version = SecretVersion(
        vault="kv-local",
        name="orders",
        version="0" * 32,
        created=NOW - timedelta(days=40),
        expires=STORED.end,
        tags={"ProviderAddress": APP_ID, **({"CredentialId": STORED.key_id} if tags is None else tags)},
    )
    seen = Observed(settings=SETTINGS, vault="kv-local", secret="orders", now=NOW, version=version)
    seen.value = Sensitive(value)
    seen.app_id, seen.app_source = APP_ID, "ProviderAddress tag"
    seen.tenant_id, seen.tenant_source = SETTINGS.tenant_id, "ROTATION_TENANT_ID"
    seen.tenant = TenantLookup(True, tenant_id=SETTINGS.tenant_id)
    seen.app = Application(
        object_id="9" * 8 + "-0000-0000-0000-000000000009", app_id=APP_ID, password_credentials=(STORED, OTHER)
    )
    seen.app_lookup = AppLookup.FOUND
    seen.sign_ins_read, seen.sign_ins, seen.sign_ins_problem = True, report, problem
    return seen


def usage(seen: Observed) -> tuple[Status, str, str, str]:
    found = next(c for c in judge(seen).checks if c.id == "usage.consumers")
    return found.status, found.evidence, found.cause, found.remedy


def test_consumers_signing_in_with_another_credential_is_the_rotated_but_not_updated_cause() -> None:
    seen = observed({STORED.key_id: None, OTHER.key_id: midnight(2)})
    status, evidence, cause, remedy = usage(seen)
    assert status is Status.WARN
    assert evidence.startswith(
        f"the stored value is credential {STORED.key_id} 'stored' (hint Ab1), last sign-in never (not in the report); "
        f"consumers sign in with credential {OTHER.key_id} 'pipeline' (hint Zz9), last sign-in {midnight(2):%Y-%m-%d}"
    )
    assert "day-granular and at least a day late" in evidence
    assert "Rotated but not updated" in cause and OTHER.key_id in remedy


def test_the_stored_credential_signing_in_most_recently_passes() -> None:
    status, evidence, _, _ = usage(observed({STORED.key_id: midnight(1), OTHER.key_id: midnight(9)}))
    assert status is Status.PASS and f"last signed in on {midnight(1):%Y-%m-%d}" in evidence


def test_the_same_day_cannot_be_ordered_and_is_said_so() -> None:
    """The report is day-granular: two sign-ins on one day say both are in use, not which is newer."""
    status, evidence, _, _ = usage(observed({STORED.key_id: midnight(1), OTHER.key_id: midnight(1)}))
    assert status is Status.PASS and "signed in that day too" in evidence and OTHER.key_id in evidence


def test_an_unreadable_report_is_one_line_and_no_failure() -> None:
    seen = observed(None)
    status, evidence, _, remedy = usage(seen)
    assert status is Status.SKIP
    assert "AuditLog.Read.All" in evidence and "P1/P2" in evidence and "not a failure" in evidence
    assert "AuditLog.Read.All" in remedy
    diagnosis = judge(seen)
    assert not diagnosis.failed
    assert render_text(diagnosis).count("AuditLog.Read.All") == 2  # the line and its hint, once each


def test_a_report_error_is_no_failure_either() -> None:
    status, evidence, _, _ = usage(observed(None, problem="Microsoft Graph answered 500"))
    assert status is Status.SKIP and "could not be read" in evidence


def test_a_stored_value_of_no_credential_still_says_which_one_consumers_use() -> None:
    seen = observed({OTHER.key_id: midnight(3)}, value="Qq18Q~" + "q" * 34, tags={})
    status, evidence, _, _ = usage(seen)
    assert status is Status.SKIP and f"consumers sign in with credential {OTHER.key_id}" in evidence


def test_text_and_json_say_the_same_and_carry_no_value() -> None:
    diagnosis = judge(observed({STORED.key_id: None, OTHER.key_id: midnight(2)}))
    text, document = render_text(diagnosis), json.dumps(diagnosis_json(diagnosis))
    found = next(c for c in diagnosis_json(diagnosis)["checks"] if c["id"] == "usage.consumers")
    assert found["evidence"] in text and found["status"] == "warn"
    assert STORED_VALUE not in text and STORED_VALUE not in document


# --------------------------------------------------------------------------------------------------
# Truncation (issue 15): a definite failure in the current format


def test_a_current_format_value_shorter_than_40_characters_fails_as_truncated() -> None:
    diagnosis = judge(observed({}, value=STORED_VALUE[:33]))
    found = next(c for c in diagnosis.checks if c.id == "value.length")
    assert found.status is Status.FAIL and "truncated, 7 character(s) missing" in found.evidence
    assert diagnosis.failed and diagnosis.most_likely is found


def test_a_longer_current_format_value_and_an_older_short_one_only_warn() -> None:
    longer = next(c for c in judge(observed({}, value=STORED_VALUE + "xy")).checks if c.id == "value.length")
    older = next(c for c in judge(observed({}, value="Ab1" + "z" * 10, tags={})).checks if c.id == "value.length")
    assert longer.status is Status.WARN and older.status is Status.WARN
