"""The daily timer ``expiry_notices``: one ``CredentialExpiryNotice`` per credential per window it
crosses, managed or not, with its app's owners; driven with ``func.TimerRequest`` against a cloud of
the test's own, the day set by the edge's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from rotation.domain.expiry import notice_day
from rotation.runtime import open_runtime
from tests.functions.harness import (
    app_handlers,
    assert_nothing_contains,
    events_named,
    issued_secrets,
    request_mark,
    requests_since,
)
from tests.integration.seed import create_owned_app, unique, write_secret

NOTICE = "CredentialExpiryNotice"


@dataclass(eq=False)
class Calendar:
    """The edge's clock, moved by the test: which day the timer runs on."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def calendar() -> Calendar:
    return Calendar(datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0))


@pytest.fixture
def edge_config(calendar: Calendar) -> EdgeConfig:
    return EdgeConfig(clock=calendar)


@pytest.fixture
def own_cloud(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    """A cloud of this test's own, so the timer sees exactly the apps and secrets created here."""
    local = private_cloud(vaults=("kv-alpha", "kv-beta"))
    for key, value in local.env.items():
        monkeypatch.setenv(key, value)
    return local


def graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def add_password(cloud: RotatorCloud, app: dict[str, Any], end: datetime, name: str = "made by a human") -> Any:
    body = {"displayName": name, "endDateTime": graph_time(end)}
    if end <= datetime.now(UTC):
        body["startDateTime"] = graph_time(end - timedelta(days=90))
    return cloud.admin("POST", f"/applications/{app['id']}/passwords", body)


async def run_timer(handlers: dict[str, Any], *, past_due: bool = False) -> None:
    assert await handlers["expiry_notices"](func.timer.TimerRequest(past_due=past_due)) is None


def notices(logs: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return events_named(logs.records, NOTICE)


@pytest.mark.parametrize("past_due", [False, True])
async def test_every_credential_crossing_a_window_today_gets_one_notice_managed_or_not_with_its_owners(
    own_cloud: RotatorCloud,
    handlers: dict[str, Any],
    calendar: Calendar,
    logs: pytest.LogCaptureFixture,
    past_due: bool,
) -> None:
    day = notice_day(calendar.now)
    # A managed secret (its CredentialId names the credential) crossing the 7-day window, on an app
    # the rotator owns.
    managed_app = create_owned_app(own_cloud, "Payments API")
    managed = add_password(own_cloud, managed_app, day + timedelta(days=7, hours=-2))
    secret = unique("secret")
    tags = {"ProviderAddress": managed_app["appId"], "CredentialId": managed["keyId"]}
    await write_secret(own_cloud, "kv-alpha", secret, managed["secretText"], tags, None)
    # A credential the rotator made and no tag names (orphaned): the rotator's, so managed too.
    rotator_made = add_password(
        own_cloud, managed_app, day + timedelta(hours=20), f"rotator:127.0.0.1/{secret}:20261201T000000Z-abcdef12"
    )
    # An app the rotator does not own (OwnedBy still lists it): owned by a team's identity and by a
    # user Graph shows only by id. Passwords in the 30, 14 and 0 windows and one far away, and a
    # certificate in the 1-day window.
    team = own_cloud.admin("POST", "/identities", {"displayName": "Payments team"})
    stranger_app = own_cloud.admin("POST", "/applications", {"displayName": "Nightly reports"})
    own_cloud.admin("POST", f"/applications/{stranger_app['id']}/owners", {"objectId": team["objectId"]})
    user_id = "6f0c2a8e-96c1-4f53-9d5e-3c8f1a0b7d21"
    own_cloud.admin("POST", f"/applications/{stranger_app['id']}/owners", {"objectId": user_id})
    in_30 = add_password(own_cloud, stranger_app, day + timedelta(days=29, hours=12))
    in_14 = add_password(own_cloud, stranger_app, day + timedelta(days=14))
    expired = add_password(own_cloud, stranger_app, day - timedelta(hours=3))
    add_password(own_cloud, stranger_app, day + timedelta(days=45))
    certificate = own_cloud.admin(
        "POST",
        f"/applications/{stranger_app['id']}/certificates",
        {"displayName": "signing cert", "endDateTime": graph_time(day + timedelta(hours=23))},
    )
    # An app with nothing in a window: its owners are never read.
    quiet_app = create_owned_app(own_cloud, "Quiet service")
    add_password(own_cloud, quiet_app, day + timedelta(days=60))
    mark = request_mark(own_cloud)

    await run_timer(handlers, past_due=past_due)

    found = {n["keyId"]: n for n in notices(logs)}
    assert {k: (n["window"], n["kind"], n["managed"]) for k, n in found.items()} == {
        managed["keyId"]: (7, "password", True),
        rotator_made["keyId"]: (1, "password", True),
        in_30["keyId"]: (30, "password", False),
        in_14["keyId"]: (14, "password", False),
        expired["keyId"]: (0, "password", False),
        certificate["keyId"]: (1, "certificate", False),
    }
    assert len(notices(logs)) == 6  # one per credential
    seven = found[managed["keyId"]]
    assert (seven["standing"], seven["vault"], seven["secret"]) == ("managed", "kv-alpha", secret)
    assert seven["appId"] == managed_app["appId"] and seven["appName"] == "Payments API"
    assert seven["owners"] == own_cloud.rotator.display_name and seven["ownerCount"] == 1
    assert found[rotator_made["keyId"]]["standing"] == "orphaned"
    assert 6 < seven["daysLeft"] <= 7 and seven["expires"].startswith(f"{day + timedelta(days=6):%Y-%m-%d}")
    assert seven["noticeId"] == f"{managed['keyId']}/7/{day:%Y-%m-%d}"
    for key in (in_30["keyId"], in_14["keyId"], expired["keyId"], certificate["keyId"]):
        # Display name and mail only: the user Graph shows by id alone adds nothing, not its id.
        notice = found[key]
        assert notice["appName"] == "Nightly reports"
        assert notice["owners"] == "Payments team" and notice["ownerCount"] == 2 and notice["ownersReadable"]
        assert user_id not in str(notice)
    assert found[expired["keyId"]]["daysLeft"] < 0
    warnings = [r for r in logs.records if r.getMessage().startswith(NOTICE)]
    assert {r.levelname for r in warnings} == {"WARNING", "ERROR"}  # the expired one is an error
    # Requests: one Graph listing of apps and one of service principals (999 a page) and one owners
    # read per app with a notice (two of three apps); one list call per vault; never a secret value read.
    graph = [(c["method"], c["path"].split("?")[0]) for c in requests_since(own_cloud, mark, "graph")]
    assert sorted(graph) == sorted(
        [
            ("GET", "/v1.0/applications"),
            ("GET", "/v1.0/servicePrincipals"),
            ("GET", f"/v1.0/applications/{managed_app['id']}/owners"),
            ("GET", f"/v1.0/applications/{stranger_app['id']}/owners"),
        ]
    ), graph
    vault = [(c["method"], c["path"].split("?")[0]) for c in requests_since(own_cloud, mark, "keyvault")]
    assert {v for v in vault} == {("GET", "/secrets")}, vault
    (completed,) = events_named(logs.records, "ExpiryNoticesCompleted")
    assert completed["notices"] == 6 and completed["ownerReads"] == 2 and completed["pastDue"] is past_due
    assert completed["windows"] == "30,14,7,1,0"
    # No secret value anywhere in the logs (every value the cloud issued, the seeded ones included).
    values = issued_secrets(own_cloud)
    assert managed["secretText"] in values
    log_text = [logs.text, *(r.getMessage() for r in logs.records)]
    log_text += [str(getattr(r, "custom_dimensions", "")) for r in logs.records]
    assert_nothing_contains(log_text, values)


async def test_a_month_of_daily_runs_tells_each_credential_once_per_window(
    own_cloud: RotatorCloud, calendar: Calendar, logs: pytest.LogCaptureFixture
) -> None:
    start = calendar.now
    app = create_owned_app(own_cloud, "Orders API")
    # Ends at three times of day, so every run sees them at a different hour of their last day.
    ends = [notice_day(start) + timedelta(days=31, hours=h) for h in (0.5, 11, 23.5)]
    keys = [add_password(own_cloud, app, end)["keyId"] for end in ends]
    handlers = app_handlers(EdgeConfig(clock=calendar))
    for day in range(33):
        # The run's hour drifts through the day (a late or past-due run), as a real timer's may.
        calendar.now = start + timedelta(days=day, hours=(day * 5) % 17)
        await run_timer(handlers)
    for key in keys:
        told = [n["window"] for n in notices(logs) if n["keyId"] == key]
        assert told == [30, 14, 7, 1, 0], (key, told)
    assert len(events_named(logs.records, "ExpiryNoticesCompleted")) == 33


async def test_a_second_run_the_same_day_repeats_the_same_notices_under_the_same_ids(
    own_cloud: RotatorCloud, handlers: dict[str, Any], calendar: Calendar, logs: pytest.LogCaptureFixture
) -> None:
    """Stateless by design: the rule says the same thing all day, so a repeated run (a manual run,
    a host that ran the schedule twice) repeats its notices; their ``noticeId`` (keyId, window, day)
    is what the alert and any subscriber de-duplicate on. The next day says nothing new."""
    app = create_owned_app(own_cloud, "Billing webhook")
    key = add_password(own_cloud, app, notice_day(calendar.now) + timedelta(days=14, hours=-1))["keyId"]
    await run_timer(handlers)
    calendar.now += timedelta(hours=9)
    await run_timer(handlers)
    calendar.now += timedelta(days=1)
    await run_timer(handlers)
    told = [(n["keyId"], n["window"], n["noticeId"]) for n in notices(logs)]
    assert told == [(key, 14, f"{key}/14/{notice_day(calendar.now - timedelta(days=1)):%Y-%m-%d}")] * 2


async def test_nothing_in_a_window_reads_no_owners_and_says_so(
    own_cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    app = create_owned_app(own_cloud, "Healthy service")
    add_password(own_cloud, app, datetime.now(UTC) + timedelta(days=200))
    mark = request_mark(own_cloud)
    await run_timer(handlers)
    assert notices(logs) == []
    graph = [c["path"].split("?")[0] for c in requests_since(own_cloud, mark, "graph")]
    assert sorted(graph) == ["/v1.0/applications", "/v1.0/servicePrincipals"]  # the two listings, no owners
    (completed,) = events_named(logs.records, "ExpiryNoticesCompleted")
    assert completed["notices"] == 0 and completed["ownerReads"] == 0


async def test_configured_windows_replace_the_default_ones(
    own_cloud: RotatorCloud,
    handlers: dict[str, Any],
    calendar: Calendar,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROTATION_EXPIRY_WINDOWS_DAYS", "60,3")
    app = create_owned_app(own_cloud, "Custom windows")
    day = notice_day(calendar.now)
    at_60 = add_password(own_cloud, app, day + timedelta(days=59, hours=6))["keyId"]
    add_password(own_cloud, app, day + timedelta(days=30))  # a default window, not configured
    at_3 = add_password(own_cloud, app, day + timedelta(days=3))["keyId"]
    await run_timer(handlers)
    assert sorted((n["keyId"], n["window"]) for n in notices(logs)) == sorted([(at_60, 60), (at_3, 3)])


async def test_bad_windows_fail_the_run_naming_the_setting(
    own_cloud: RotatorCloud,
    handlers: dict[str, Any],
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rotation.domain.errors import SettingsError

    monkeypatch.setenv("ROTATION_EXPIRY_WINDOWS_DAYS", "30,14,seven")
    with pytest.raises(SettingsError):
        await asyncio.wait_for(run_timer(handlers), 30)
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert invalid["function"] == "expiry_notices"
    assert any(p.startswith("ROTATION_EXPIRY_WINDOWS_DAYS=") and "'seven'" in p for p in invalid["problems"])


async def test_owners_graph_will_not_show_leave_the_notice_without_owners(
    own_cloud: RotatorCloud, handlers: dict[str, Any], calendar: Calendar, logs: pytest.LogCaptureFixture
) -> None:
    app = create_owned_app(own_cloud, "Secretive app")
    key = add_password(own_cloud, app, notice_day(calendar.now) + timedelta(days=1))["keyId"]
    own_cloud.admin(
        "POST",
        "/faults",
        {
            "service": "graph",
            "method": "GET",
            "pathRegex": "/owners",
            "status": 403,
            "code": "Authorization_RequestDenied",
        },
    )
    await run_timer(handlers)
    (notice,) = notices(logs)
    assert notice["keyId"] == key and notice["window"] == 1
    assert notice["ownersReadable"] is False and "owners" not in notice and notice["ownerCount"] == 0


async def test_service_principal_passwords_and_certificates_get_their_notices_too(
    own_cloud: RotatorCloud, handlers: dict[str, Any], calendar: Calendar, logs: pytest.LogCaptureFixture
) -> None:
    """Passwords on a service principal (listed with the apps, 999 a request) and certificates cross
    the windows like the app's passwords, each once, saying on which object they live; the notice
    names the app's owners."""
    day = notice_day(calendar.now)
    app = create_owned_app(own_cloud, "Ledger export")
    on_sp = own_cloud.admin(
        "POST",
        f"/service-principals/{app['id']}/passwords",
        {"displayName": "batch secret on the SP", "endDateTime": graph_time(day + timedelta(days=14, hours=-3))},
    )
    far = own_cloud.admin(
        "POST",
        f"/service-principals/{app['id']}/passwords",
        {"endDateTime": graph_time(day + timedelta(days=100))},
    )
    certificate = own_cloud.admin(
        "POST",
        f"/applications/{app['id']}/certificates",
        {"displayName": "signing cert", "endDateTime": graph_time(day + timedelta(days=7, hours=-1))},
    )
    sp_certificate = own_cloud.admin(
        "POST",
        f"/service-principals/{app['id']}/certificates",
        {"displayName": "SP cert", "endDateTime": graph_time(day + timedelta(days=30, hours=-2))},
    )
    mark = request_mark(own_cloud)

    await run_timer(handlers)

    found = {n["keyId"]: n for n in notices(logs)}
    assert {k: (n["window"], n["kind"], n["credentialObject"]) for k, n in found.items()} == {
        on_sp["keyId"]: (14, "password", "servicePrincipal"),
        certificate["keyId"]: (7, "certificate", "application"),
        sp_certificate["keyId"]: (30, "certificate", "servicePrincipal"),
    }
    assert found[certificate["keyId"]]["thumbprint"] == certificate["customKeyIdentifier"]
    assert far["keyId"] not in found
    sp_notice = found[on_sp["keyId"]]
    assert sp_notice["appName"] == "Ledger export" and sp_notice["owners"] == own_cloud.rotator.display_name
    graph = [c["path"].split("?")[0] for c in requests_since(own_cloud, mark, "graph")]
    assert sorted(graph) == sorted(
        ["/v1.0/applications", "/v1.0/servicePrincipals", f"/v1.0/applications/{app['id']}/owners"]
    )
    # The timer runs again the same day and the next: no new window, no new notice.
    calendar.now += timedelta(days=1)
    await run_timer(handlers)
    assert len(notices(logs)) == 3
    assert_nothing_contains([logs.text], issued_secrets(own_cloud))


async def test_a_managed_certificates_key_is_noticed_as_managed_while_certificates_are_on(
    own_cloud: RotatorCloud,
    handlers: dict[str, Any],
    calendar: Calendar,
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``ROTATION_CERTIFICATES`` on the timer lists the vaults' certificates (list calls only) and
    a key credential named by a certificate's ``CredentialId`` is the rotator's; a person's is not."""
    monkeypatch.setenv("ROTATION_CERTIFICATES", "true")
    assert own_cloud.rotator is not None
    for role in ("Key Vault Certificates Officer", "Key Vault Crypto User"):
        grant = {"objectId": own_cloud.rotator.sp_object_id, "vault": "kv-alpha", "role": role}
        own_cloud.admin("POST", "/role-assignments", grant)
    app = create_owned_app(own_cloud, "Reports signer")
    name = unique("cert")
    managed = own_cloud.create_certificate("kv-alpha", name, validity_months=12, tags={"ProviderAddress": app["appId"]})
    managed_key = own_cloud.add_key_credential(app["appId"], managed.der, display_name="CN=signer")
    human = own_cloud.create_certificate("kv-alpha", unique("human"), validity_months=12)
    human_key = own_cloud.add_key_credential(app["appId"], human.der, display_name="CI (a human's)")
    async with open_runtime() as runtime:  # the tag write, as the rotator's identity through the SDK
        tags = {"ProviderAddress": app["appId"], "CredentialId": managed_key}
        await runtime.certificate_vaults["kv-alpha"].update_certificate(name, managed.version, tags=tags)
    # The day both certificates' keys (issued a moment apart, for 12 months) cross the 7-day window.
    expires = min(managed.expires, human.expires)
    calendar.now = expires.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    mark = request_mark(own_cloud)

    await run_timer(handlers)

    found = {n["keyId"]: n for n in notices(logs)}
    assert (found[managed_key]["window"], found[managed_key]["standing"], found[managed_key]["managed"]) == (
        7,
        "managed",
        True,
    )
    assert (found[human_key]["standing"], found[human_key]["managed"]) == ("unmanaged", False)
    vault = [c for c in requests_since(own_cloud, mark, "keyvault") if "/certificates" in c["path"]]
    # One list call per vault (after Key Vault's 401 challenge): kv-alpha's, and kv-beta's refusal,
    # which is a warning of the run, not a failure.
    answered = sorted((c["method"], c["path"].split("?")[0], c["status"]) for c in vault if c["status"] != 401)
    assert answered == [("GET", "/certificates", 200), ("GET", "/certificates", 403)], vault
    incomplete = events_named(logs.records, "ExpiryNoticesIncomplete")
    assert [e["warning"].split(" (")[0] for e in incomplete] == ["certificates of vault 'kv-beta' could not be listed"]
