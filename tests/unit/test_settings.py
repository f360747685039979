from __future__ import annotations

import dataclasses
import re

import pytest

from rotation.domain.errors import SettingsError, TagError, UnknownVaultError
from rotation.settings import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_GRAPH_URL,
    KNOWN_VARIABLES,
    SecretPolicy,
    Settings,
    fallback_rotate_before,
    is_loopback,
    orphan_margin_minimum,
)

from .samples import TENANT_ID

BASE = {"ROTATION_VAULTS": "kv-prod-1"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


def problems(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.code == "BadSettings"
    return caught.value.problems


# ---------------------------------------------------------------------------------------------- defaults


def test_only_the_vault_list_is_needed_and_everything_else_has_a_default() -> None:
    s = Settings.from_env(BASE)
    assert dict(s.vaults) == {"kv-prod-1": "https://kv-prod-1.vault.azure.net"}
    assert s.tenant_id is None
    assert s.graph_url == DEFAULT_GRAPH_URL == "https://graph.microsoft.com/v1.0"
    assert s.authority_host == DEFAULT_AUTHORITY_HOST == "https://login.microsoftonline.com"
    assert (s.validity_days, s.rotate_before_days, s.grace_hours) == (90, 30, 24)
    assert (s.validation_deadline_seconds, s.validation_successes) == (180, 3)
    assert (s.orphan_margin_minutes, s.throttle_retry_seconds) == (60, 120)
    assert s.schedule == "0 0 * * * *"
    assert s.operator_role == "Rotation.Operator"
    assert (s.sweep_concurrency, s.expiry_alert_days) == (4, 14)
    assert s.warnings == ()
    assert s.orphan_margin_seconds == 3600.0


def test_every_value_can_be_set() -> None:
    s = settings(
        ROTATION_TENANT_ID=TENANT_ID,
        ROTATION_GRAPH_URL="https://127.0.0.1:8443/v1.0/",
        AZURE_AUTHORITY_HOST="https://127.0.0.1:8443/",
        ROTATION_VALIDITY_DAYS="60",
        ROTATION_ROTATE_BEFORE_DAYS="20",
        ROTATION_GRACE_HOURS="0",
        ROTATION_VALIDATION_DEADLINE_SECONDS="30",
        ROTATION_VALIDATION_SUCCESSES="5",
        ROTATION_ORPHAN_MARGIN_MINUTES="0",
        ROTATION_THROTTLE_RETRY_SECONDS="10",
        ROTATION_SCHEDULE="0  */5 * * * *",
        ROTATION_OPERATOR_ROLE="Secrets.Rotate",
        ROTATION_READER_ROLE="Secrets.Read",
        ROTATION_API_AUDIENCE=f" {TENANT_ID} , api://secret-rotator",
        ROTATION_SWEEP_CONCURRENCY="16",
        ROTATION_EXPIRY_ALERT_DAYS="7",
    )
    assert s.tenant_id == TENANT_ID
    assert s.graph_url == "https://127.0.0.1:8443/v1.0"
    assert s.authority_host == "https://127.0.0.1:8443"
    assert (s.validity_days, s.rotate_before_days, s.grace_hours) == (60, 20, 0)
    assert (s.validation_deadline_seconds, s.validation_successes) == (30, 5)
    assert (s.orphan_margin_minutes, s.throttle_retry_seconds) == (0, 10)
    assert s.schedule == "0 */5 * * * *"
    assert s.operator_role == "Secrets.Rotate"
    assert s.reader_role == "Secrets.Read"
    assert s.api_audiences == (TENANT_ID, "api://secret-rotator")
    assert (s.sweep_concurrency, s.expiry_alert_days) == (16, 7)


def test_without_an_api_audience_operator_authentication_is_not_configured() -> None:
    s = settings()
    assert s.api_audiences == () and s.reader_role == "Rotation.Reader"


def test_empty_values_count_as_unset() -> None:
    s = settings(ROTATION_VALIDITY_DAYS="", ROTATION_TENANT_ID="  ", ROTATION_SCHEDULE="")
    assert s.validity_days == 90
    assert s.tenant_id is None
    assert s.schedule == "0 0 * * * *"


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATION_VAULTS", "kv-from-env")
    monkeypatch.setenv("ROTATION_GRACE_HOURS", "6")
    s = Settings.from_env()
    assert list(s.vaults) == ["kv-from-env"]
    assert s.grace_hours == 6


def test_settings_are_immutable() -> None:
    s = Settings.from_env(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.validity_days = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.vaults["x"] = "y"  # type: ignore[index]


def test_unknown_rotation_variables_are_reported_as_likely_typos() -> None:
    s = settings(ROTATION_VALIDITY_DAY="30", OTHER_THING="x")
    assert s.warnings == ("ROTATION_VALIDITY_DAY is set but not a rotator setting (a typo?)",)


def test_known_variables_cover_every_documented_setting() -> None:
    assert {
        "ROTATION_VAULTS",
        "ROTATION_TENANT_ID",
        "ROTATION_GRAPH_URL",
        "AZURE_AUTHORITY_HOST",
        "ROTATION_VALIDITY_DAYS",
        "ROTATION_ROTATE_BEFORE_DAYS",
        "ROTATION_GRACE_HOURS",
        "ROTATION_VALIDATION_DEADLINE_SECONDS",
        "ROTATION_VALIDATION_SUCCESSES",
        "ROTATION_ORPHAN_MARGIN_MINUTES",
        "ROTATION_THROTTLE_RETRY_SECONDS",
        "ROTATION_SCHEDULE",
        "ROTATION_EXPIRY_SCHEDULE",
        "ROTATION_EXPIRY_WINDOWS_DAYS",
        "ROTATION_OPERATOR_ROLE",
        "ROTATION_READER_ROLE",
        "ROTATION_API_AUDIENCE",
        "ROTATION_ALLOWED_HOSTS",
        "ROTATION_ALLOWED_TENANTS",
        "ROTATION_SWEEP_CONCURRENCY",
        "ROTATION_EXPIRY_ALERT_DAYS",
        "ROTATION_RETIREMENT_EVIDENCE",
        "ROTATION_EVIDENCE_QUIET_HOURS",
        "ROTATION_EVENTS_TOPIC",
        "ROTATION_CERTIFICATES",
    } == KNOWN_VARIABLES


# ---------------------------------------------------------------------------------------------- vaults


def test_vault_entries_by_name_and_by_url() -> None:
    s = settings(ROTATION_VAULTS=" kv-prod-1 , KV-Local=https://127.0.0.1:8443/ ,kv3=https://kv3.vault.azure.cn")
    assert dict(s.vaults) == {
        "kv-prod-1": "https://kv-prod-1.vault.azure.net",
        "kv-local": "https://127.0.0.1:8443",
        "kv3": "https://kv3.vault.azure.cn",
    }


def test_vault_url_lookup_is_case_insensitive_and_unknown_vaults_are_named() -> None:
    s = settings(ROTATION_VAULTS="kv-a,kv-b")
    assert s.vault_url("KV-A") == "https://kv-a.vault.azure.net"
    with pytest.raises(UnknownVaultError) as caught:
        s.vault_url("kv-z")
    assert caught.value.code == "UnknownVault"
    assert "kv-a, kv-b" in str(caught.value)


def test_missing_vault_list_is_one_clear_line() -> None:
    (line,) = problems({})
    assert line.startswith("ROTATION_VAULTS is required")
    assert "name=https://host[:port]" in line


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ab", "not a vault name"),
        ("1vault", "not a vault name"),
        ("my--vault", "not a vault name"),
        ("vault-", "not a vault name"),
        ("a" * 25, "not a vault name"),
        ("kv_1", "not a vault name"),
        ("kv1,KV1", "listed twice"),
        ("kv1=http://127.0.0.1:8443", "must be an https:// URL"),
        ("kv1=https://kv1.vault.azure.net/secrets", "without a path"),
        ("kv1=https://kv1.vault.azure.net/?x=1", "query"),
        ("kv1=https://127.0.0.1:99999", "not a valid URL"),
        ("kv1=", "https:// URL"),
        ("kv1=https://", "has no host"),
        (" , ,", "lists no vault"),
    ],
)
def test_bad_vault_entries_give_one_line_naming_the_variable(value: str, fragment: str) -> None:
    (line,) = problems({"ROTATION_VAULTS": value})
    assert line.startswith("ROTATION_VAULTS")
    assert fragment in line


def test_several_bad_vault_entries_still_make_one_line() -> None:
    (line,) = problems({"ROTATION_VAULTS": "1bad,kv1,kv1,kv2=http://x"})
    assert "'1bad' is not a vault name" in line
    assert "listed twice" in line
    assert "https://" in line


# ---------------------------------------------------------------------------------------------- single values


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ROTATION_TENANT_ID", "common", "Directory (tenant) ID"),
        ("ROTATION_TENANT_ID", "not a tenant", "Directory (tenant) ID"),
        ("ROTATION_GRAPH_URL", "http://graph.microsoft.com/v1.0", "https://"),
        ("ROTATION_GRAPH_URL", "graph.microsoft.com", "https://"),
        ("AZURE_AUTHORITY_HOST", "http://login.microsoftonline.com", "https://"),
        ("ROTATION_VALIDITY_DAYS", "abc", "whole number of days from 1 to 730"),
        ("ROTATION_VALIDITY_DAYS", "0", "out of range"),
        ("ROTATION_VALIDITY_DAYS", "731", "out of range"),
        ("ROTATION_VALIDITY_DAYS", "90.5", "whole number"),
        ("ROTATION_ROTATE_BEFORE_DAYS", "-1", "from 0 to 365"),
        ("ROTATION_GRACE_HOURS", "721", "from 0 to 720"),
        ("ROTATION_VALIDATION_DEADLINE_SECONDS", "4", "from 5 to 600"),
        ("ROTATION_VALIDATION_DEADLINE_SECONDS", "601", "from 5 to 600"),
        ("ROTATION_VALIDATION_SUCCESSES", "0", "from 1 to 20"),
        ("ROTATION_ORPHAN_MARGIN_MINUTES", "10081", "from 0 to 10080"),
        ("ROTATION_THROTTLE_RETRY_SECONDS", "601", "from 0 to 600"),
        ("ROTATION_SCHEDULE", "0 * * * *", "6 fields"),
        ("ROTATION_SCHEDULE", "0 0 * * * * *", "6 fields"),
        ("ROTATION_SCHEDULE", "0 0 * * * $", "characters"),
        ("ROTATION_OPERATOR_ROLE", "Rotation Operator", "without spaces"),
        ("ROTATION_READER_ROLE", "Rotation Reader", "without spaces"),
        ("ROTATION_API_AUDIENCE", "rotator api", "client id"),
        ("ROTATION_API_AUDIENCE", "api://secret-rotator,,", "client id"),
        ("ROTATION_API_AUDIENCE", "http://secret-rotator", "identifier URI"),
        ("ROTATION_SWEEP_CONCURRENCY", "65", "from 1 to 64"),
        ("ROTATION_EXPIRY_ALERT_DAYS", "x", "from 0 to 365"),
        ("ROTATION_EXPIRY_SCHEDULE", "daily", "6 fields"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "30,14,,0", "an empty entry"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "30;14", "not a whole number"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "7,-1", "not a whole number"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "+7", "not a whole number"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "7.5", "not a whole number"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "٣", "not a whole number"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "366", "out of range"),
        ("ROTATION_EXPIRY_WINDOWS_DAYS", "7,14,7", "listed twice"),
    ],
)
def test_each_bad_value_gives_exactly_one_line_naming_the_variable(variable: str, value: str, fragment: str) -> None:
    (line,) = problems({**BASE, variable: value})
    assert line.startswith(f"{variable}=")
    assert fragment in line


def test_all_problems_are_reported_together_one_line_each() -> None:
    found = problems(
        {
            "ROTATION_VALIDITY_DAYS": "abc",
            "ROTATION_GRACE_HOURS": "-5",
            "ROTATION_SCHEDULE": "hourly",
            "ROTATION_TENANT_ID": "common",
        }
    )
    assert len(found) == 5
    named = sorted(line.split("=")[0].split(" ")[0] for line in found)
    assert named == [
        "ROTATION_GRACE_HOURS",
        "ROTATION_SCHEDULE",
        "ROTATION_TENANT_ID",
        "ROTATION_VALIDITY_DAYS",
        "ROTATION_VAULTS",
    ]


def test_long_bad_values_are_shortened_in_messages() -> None:
    (line,) = problems({**BASE, "ROTATION_OPERATOR_ROLE": "x " * 100})
    assert len(line) < 200


@pytest.mark.parametrize("tenant", [TENANT_ID, "contoso.onmicrosoft.com", "contoso.com"])
def test_tenant_may_be_a_guid_or_a_domain(tenant: str) -> None:
    assert settings(ROTATION_TENANT_ID=tenant).tenant_id == tenant


def test_authority_host_without_scheme_means_https_like_azure_identity() -> None:
    assert settings(AZURE_AUTHORITY_HOST="login.microsoftonline.us/").authority_host == (
        "https://login.microsoftonline.us"
    )


# ---------------------------------------------------------------------------------------------- cross-checks


def test_rotation_window_must_be_shorter_than_the_lifetime() -> None:
    (line,) = problems({**BASE, "ROTATION_VALIDITY_DAYS": "30", "ROTATION_ROTATE_BEFORE_DAYS": "30"})
    assert line.startswith("ROTATION_ROTATE_BEFORE_DAYS=30")
    assert "less than ROTATION_VALIDITY_DAYS (30)" in line


def test_rotation_window_against_the_default_lifetime() -> None:
    (line,) = problems({**BASE, "ROTATION_ROTATE_BEFORE_DAYS": "90"})
    assert "ROTATION_VALIDITY_DAYS (90)" in line


def test_cross_check_is_skipped_when_an_input_is_already_reported() -> None:
    # Only the bad value is reported, not a knock-on complaint computed from its default.
    (line,) = problems({**BASE, "ROTATION_VALIDITY_DAYS": "abc", "ROTATION_ROTATE_BEFORE_DAYS": "100"})
    assert line.startswith("ROTATION_VALIDITY_DAYS")


@pytest.mark.parametrize(("margin", "ok"), [("0", True), ("1", False), ("4", False), ("5", True), ("60", True)])
def test_orphan_margin_is_zero_or_covers_a_whole_step(margin: str, ok: bool) -> None:
    env = {**BASE, "ROTATION_ORPHAN_MARGIN_MINUTES": margin}
    if ok:
        assert Settings.from_env(env).orphan_margin_minutes == int(margin)
    else:
        (line,) = problems(env)
        assert line.startswith("ROTATION_ORPHAN_MARGIN_MINUTES=")
        assert "at least 5 minutes" in line


def test_orphan_margin_minimum_follows_deadline_and_throttle_budget() -> None:
    assert orphan_margin_minimum(180, 120) == 5
    assert orphan_margin_minimum(600, 600) == 20
    assert orphan_margin_minimum(5, 0) == 1
    env = {
        **BASE,
        "ROTATION_VALIDATION_DEADLINE_SECONDS": "600",
        "ROTATION_THROTTLE_RETRY_SECONDS": "600",
        "ROTATION_ORPHAN_MARGIN_MINUTES": "15",
    }
    (line,) = problems(env)
    assert "at least 20 minutes" in line


# ---------------------------------------------------------------------------------------------- loopback


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://127.0.0.1:8443", True),
        ("https://127.5.6.7", True),
        ("https://[::1]:8443/", True),
        ("https://[::ffff:127.0.0.1]:8443", True),
        ("https://localhost:8443", True),
        ("https://kv1.localhost", True),
        ("127.0.0.1:8443", True),
        ("https://kv1.vault.azure.net", False),
        ("https://login.microsoftonline.com", False),
        ("https://10.0.0.4", False),
        ("https://[::2]", False),
        ("https://localhost.example.com", False),
        ("https://[not-an-address", False),
        ("", False),
    ],
)
def test_is_loopback(url: str, expected: bool) -> None:
    assert is_loopback(url) is expected


# ------------------------------------------------------------------------------------------ per-secret policy


def test_policy_without_tags_is_the_settings() -> None:
    s = settings(ROTATION_TENANT_ID=TENANT_ID)
    assert s.policy_for({}, "db") == SecretPolicy(90, 30, 24, TENANT_ID, ())


def test_tags_override_the_settings() -> None:
    tags = {
        "ValidityPeriodDays": " 60 ",
        "RotateBeforeDays": "10",
        "GracePeriodHours": "0",
        "TenantId": "fabrikam.onmicrosoft.com",
    }
    allowed = settings(ROTATION_ALLOWED_TENANTS="fabrikam.onmicrosoft.com")
    assert allowed.policy_for(tags, "db") == SecretPolicy(60, 10, 0, "fabrikam.onmicrosoft.com", ())


def test_a_tenant_outside_the_allow_list_is_refused() -> None:
    tags = {"TenantId": "fabrikam.onmicrosoft.com"}
    with pytest.raises(TagError, match="not an allowed tenant"):
        settings().policy_for(tags, "db")  # default: only the home tenant
    with pytest.raises(TagError, match="ROTATION_ALLOWED_TENANTS"):
        settings(ROTATION_ALLOWED_TENANTS="contoso.onmicrosoft.com").policy_for(tags, "db")
    home = "11111111-2222-3333-4444-555555555555"
    at_home = settings(ROTATION_TENANT_ID=home)
    assert at_home.policy_for({"TenantId": home.upper()}, "db").tenant_id == home.upper()
    assert "ROTATION_ALLOWED_TENANTS" in problems({**BASE, "ROTATION_ALLOWED_TENANTS": "not a tenant!"})[0]


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        ("ValidityPeriodDays", "ninety"),
        ("ValidityPeriodDays", "0"),
        ("ValidityPeriodDays", "1000"),
        ("RotateBeforeDays", "-3"),
        ("GracePeriodHours", "1.5"),
    ],
)
def test_bad_numeric_tag_falls_back_with_a_warning_naming_tag_and_secret(tag: str, value: str) -> None:
    policy = settings().policy_for({tag: value}, "db-password")
    assert (policy.validity_days, policy.rotate_before_days, policy.grace_hours) == (90, 30, 24)
    (warning,) = policy.warnings
    assert f"tag {tag}='{value}'" in warning
    assert "secret 'db-password'" in warning


def test_window_not_shorter_than_lifetime_falls_back_to_a_third() -> None:
    policy = settings().policy_for({"ValidityPeriodDays": "7"}, "db")
    assert (policy.validity_days, policy.rotate_before_days) == (7, 2)
    assert "not shorter than its 7-day lifetime" in policy.warnings[0]
    assert fallback_rotate_before(90) == 30
    assert fallback_rotate_before(1) == 0


def test_malformed_tenant_tag_raises_rather_than_guessing_a_tenant() -> None:
    with pytest.raises(TagError) as caught:
        settings(ROTATION_TENANT_ID=TENANT_ID).policy_for({"TenantId": "organizations"}, "db", "kv-prod-1")
    assert caught.value.code == "BadTags"
    assert "TenantId='organizations'" in str(caught.value)
    assert "'db'" in str(caught.value) and "'kv-prod-1'" in str(caught.value)


def test_require_tenant() -> None:
    assert settings(ROTATION_TENANT_ID=TENANT_ID).policy_for({}).require_tenant("kv", "db") == TENANT_ID
    with pytest.raises(TagError) as caught:
        settings().policy_for({}).require_tenant("kv", "db")
    assert "ROTATION_TENANT_ID" in str(caught.value)


# ------------------------------------------------------------------ endpoints outside Azure's clouds


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AZURE_AUTHORITY_HOST", "https://login.attacker.example"),
        ("AZURE_AUTHORITY_HOST", "login.microsoftonline.com.attacker.example"),
        ("ROTATION_GRAPH_URL", "https://graph.attacker.example/v1.0"),
        ("ROTATION_GRAPH_URL", "https://10.0.0.5/v1.0"),
        ("ROTATION_VAULTS", "kv1=https://kv1.attacker.example"),
        ("ROTATION_VAULTS", "kv1=https://vault.azure.net.attacker.example"),
        ("ROTATION_VAULTS", "kv1=https://.vault.azure.net"),
    ],
)
def test_an_endpoint_outside_the_azure_clouds_is_refused(variable: str, value: str) -> None:
    """Whoever can change one app setting must not be able to have new secret values sent elsewhere."""
    with pytest.raises(SettingsError) as caught:
        settings(**{variable: value})
    (line,) = caught.value.problems
    assert line.startswith(f"{variable}=") and "ROTATION_ALLOWED_HOSTS" in line


@pytest.mark.parametrize(
    "env",
    [
        {
            "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us",
            "ROTATION_GRAPH_URL": "https://graph.microsoft.us/v1.0",
        },
        {
            "AZURE_AUTHORITY_HOST": "login.chinacloudapi.cn",
            "ROTATION_GRAPH_URL": "https://microsoftgraph.chinacloudapi.cn/v1.0",
        },
        {"ROTATION_VAULTS": "kv1=https://kv1.vault.usgovcloudapi.net,kv2=https://KV2.vault.azure.cn"},
        {"ROTATION_VAULTS": "kv1=https://localhost:8443", "AZURE_AUTHORITY_HOST": "https://[::1]:8443"},
    ],
)
def test_the_azure_clouds_and_loopback_are_accepted(env: dict[str, str]) -> None:
    settings(**env)


def test_an_explicitly_allowed_host_is_accepted() -> None:
    s = settings(
        ROTATION_ALLOWED_HOSTS="login.azurestack.contoso.com, Graph.AzureStack.Contoso.com",
        AZURE_AUTHORITY_HOST="https://login.azurestack.contoso.com",
        ROTATION_GRAPH_URL="https://graph.azurestack.contoso.com/v1.0",
    )
    assert s.authority_host == "https://login.azurestack.contoso.com"
    with pytest.raises(SettingsError, match=re.escape("ROTATION_ALLOWED_HOSTS='*.contoso.com'")):
        settings(ROTATION_ALLOWED_HOSTS="*.contoso.com")


# ---------------------------------------------------------------------------------------------- expiry notices


def test_expiry_notices_run_daily_with_five_windows_by_default() -> None:
    s = settings()
    assert s.expiry_schedule == "0 0 6 * * *"
    assert s.expiry_windows_days == (30, 14, 7, 1, 0)


def test_expiry_windows_are_read_in_any_order_and_kept_descending() -> None:
    s = settings(ROTATION_EXPIRY_WINDOWS_DAYS=" 0, 7 ,60", ROTATION_EXPIRY_SCHEDULE="0 30 5 * * *")
    assert s.expiry_windows_days == (60, 7, 0)
    assert s.expiry_schedule == "0 30 5 * * *"


def test_the_events_topic_must_be_an_event_grid_endpoint() -> None:
    assert settings().events_topic is None
    topic = "https://rotation.westeurope-1.eventgrid.azure.net/api/events"
    assert settings(ROTATION_EVENTS_TOPIC=topic).events_topic == topic
    with pytest.raises(SettingsError) as caught:
        settings(ROTATION_EVENTS_TOPIC="https://collector.example.com/api/events")
    assert "is not an Event Grid topic endpoint" in str(caught.value)


def test_certificate_rotation_is_off_unless_turned_on() -> None:
    assert settings().certificates is False
    assert settings(ROTATION_CERTIFICATES="true").certificates is True
    assert settings(ROTATION_CERTIFICATES="False").certificates is False
    with pytest.raises(SettingsError) as caught:
        settings(ROTATION_CERTIFICATES="maybe")
    assert "ROTATION_CERTIFICATES='maybe': expected true or false" in str(caught.value)
