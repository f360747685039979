"""The in-memory fakes of `tests.fakes` keep the contract of the ports in `rotation.service.ports`
(and, where it matters to the reconciler, the strictness of Entra and Key Vault)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotation.domain.errors import (
    ApplicationNotFoundError,
    LockHeld,
    PasswordLifetimePolicyError,
    PasswordLimitError,
    PolicyBlockedError,
    RotationError,
    SecretDisabledError,
    TagError,
    ThrottledError,
)
from rotation.domain.model import PasswordPolicy, Sensitive
from rotation.service.ports import Clock, Directory, Lock, SystemClock, TokenProbe, Vault
from tests.fakes import FakeClock, FakeDirectory, FakeLock, FakeTokenProbe, FakeVault

from .samples import NOW, TENANT_ID

DAY = timedelta(days=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def directory(clock: FakeClock) -> FakeDirectory:
    return FakeDirectory(clock)


@pytest.fixture
def vault(clock: FakeClock) -> FakeVault:
    return FakeVault("kv", clock)


# --- Directory ---------------------------------------------------------------------------------------


async def test_directory_adds_lists_and_removes_passwords(directory: FakeDirectory) -> None:
    port: Directory = directory
    app_id = directory.add_app()
    app = await port.get_application(app_id)
    assert app.app_id == app_id and app.password_credentials == ()

    created, value = await port.add_password(app.object_id, "rotator:kv/db:r1", NOW, NOW + 90 * DAY, app_id=app_id)
    assert created.display_name == "rotator:kv/db:r1" and created.hint == value.reveal()[:3]
    assert (created.start, created.end) == (NOW, NOW + 90 * DAY)
    assert len(value.reveal()) == 40 and repr(value) == "<redacted>"
    listed = (await port.get_application(app_id)).password_credentials
    assert [c.key_id for c in listed] == [created.key_id]

    assert await port.remove_password(app.object_id, created.key_id.upper(), app_id=app_id) is True
    assert await port.remove_password(app.object_id, created.key_id, app_id=app_id) is False  # gone: not an error
    assert (await port.get_application(app_id)).password_credentials == ()
    assert directory.writes == [
        ("addPassword", created.key_id),
        ("removePassword", created.key_id),
        ("removePassword", created.key_id),
    ]


async def test_directory_raises_for_an_unknown_app(directory: FakeDirectory) -> None:
    with pytest.raises(ApplicationNotFoundError):
        await directory.get_application("00000000-0000-0000-0000-000000000000")


async def test_an_app_open_to_personal_accounts_holds_two_passwords(directory: FakeDirectory) -> None:
    app_id = directory.add_app(sign_in_audience="AzureADandPersonalMicrosoftAccount")
    directory.add_credential(app_id)
    directory.add_credential(app_id)
    with pytest.raises(PasswordLimitError):
        await directory.add_password(directory.object_id(app_id), "x", NOW, NOW + DAY)


async def test_the_app_management_policy_is_enforced_and_readable_only_if_granted(directory: FakeDirectory) -> None:
    app_id = directory.add_app()
    object_id = directory.object_id(app_id)
    directory.set_policy(app_id, PasswordPolicy(blocked=False, max_lifetime=30 * DAY))
    with pytest.raises(PasswordLifetimePolicyError):
        await directory.add_password(object_id, "x", NOW, NOW + 31 * DAY)
    await directory.add_password(object_id, "x", NOW, NOW + 29 * DAY)
    assert await directory.password_policy(object_id) == PasswordPolicy(False, 30 * DAY)
    directory.set_policy(app_id, PasswordPolicy(blocked=True, max_lifetime=None), readable=False)
    assert await directory.password_policy(object_id) is None
    with pytest.raises(PolicyBlockedError):
        await directory.add_password(object_id, "x", NOW, NOW + DAY)


async def test_faults_fail_an_operation_a_given_number_of_times(directory: FakeDirectory) -> None:
    app_id = directory.add_app()
    directory.faults.fail("get_application", ThrottledError("graph", 1.0), times=2)
    for _ in range(2):
        with pytest.raises(ThrottledError):
            await directory.get_application(app_id)
    assert (await directory.get_application(app_id)).app_id == app_id


# --- Vault -------------------------------------------------------------------------------------------


async def test_vault_keeps_versions_with_values_tags_and_dates(vault: FakeVault, clock: FakeClock) -> None:
    port: Vault = vault
    assert await port.get("db") is None
    first = await port.set(
        "db", Sensitive("first-value-0123456789"), tags={"a": "1"}, content_type="t", not_before=NOW, expires=NOW + DAY
    )
    clock.advance(60)
    second = await port.set(
        "db", Sensitive("second-value-0123456789"), tags={}, content_type=None, not_before=None, expires=None
    )
    latest = await port.get("db")
    assert (
        latest is not None
        and latest.version.version == second.version
        and latest.value.matches("second-value-0123456789")
    )
    older = await port.get("db", first.version)
    assert older is not None and older.version.tags == {"a": "1"} and older.version.expires == NOW + DAY
    assert await port.get("db", "0" * 32) is None

    await port.update("db", str(first.version), tags={"b": "2"}, enabled=False)
    versions = await port.list_versions("db")
    assert [(v.version, v.enabled) for v in versions] == [(first.version, False), (second.version, True)]
    assert versions[0].tags == {"b": "2"} and versions[0].created is not None and versions[1].created is not None
    assert versions[0].created < versions[1].created
    with pytest.raises(SecretDisabledError):
        await port.get("db", first.version)

    listed = await port.list_secrets()
    assert [(s.name, s.version) for s in listed] == [("db", None)]  # the latest attributes, no version id
    assert vault.writes == [
        ("set", "db", first.version),
        ("set", "db", second.version),
        ("disable", "db", first.version),
    ]


async def test_vault_orders_versions_even_when_the_clock_stands_still(vault: FakeVault) -> None:
    a = vault.put("db", "value-a-0123456789abc")
    b = vault.put("db", "value-b-0123456789abc")
    created = [v.created for v in vault.versions("db")]
    assert [v.version for v in vault.versions("db")] == [a, b] and created[0] is not None and created[1] is not None
    assert created[0] < created[1]


async def test_vault_refuses_more_tags_than_key_vault_allows(vault: FakeVault) -> None:
    with pytest.raises(TagError):
        await vault.set(
            "db",
            Sensitive("x" * 20),
            tags={str(i): "v" for i in range(16)},
            content_type=None,
            not_before=None,
            expires=None,
        )
    assert vault.versions("db") == []


async def test_a_mangling_vault_stores_something_else_once(vault: FakeVault) -> None:
    vault.mangle_next_write = True
    stored = await vault.set("db", Sensitive("y" * 20), tags={}, content_type=None, not_before=None, expires=None)
    assert vault.value("db", stored.version) != "y" * 20
    again = await vault.set("db", Sensitive("y" * 20), tags={}, content_type=None, not_before=None, expires=None)
    assert vault.value("db", again.version) == "y" * 20


# --- TokenProbe --------------------------------------------------------------------------------------


async def test_probe_signs_in_only_with_a_live_credentials_value(directory: FakeDirectory, clock: FakeClock) -> None:
    probe: TokenProbe = FakeTokenProbe(directory, clock)
    app_id = directory.add_app()
    credential, value = directory.add_credential(app_id, end=NOW + DAY)
    assert (await probe.probe(TENANT_ID, app_id, Sensitive(value))).ok
    wrong = await probe.probe(TENANT_ID, app_id, Sensitive("not-the-value-0123456789"))
    assert (wrong.ok, wrong.code) == (False, 7000215)
    unknown = await probe.probe(TENANT_ID, "00000000-0000-0000-0000-000000000000", Sensitive(value))
    assert unknown.code == 700016
    clock.advance(2 * DAY)
    assert (await probe.probe(TENANT_ID, app_id, Sensitive(value))).code == 7000222
    await directory.remove_password(directory.object_id(app_id), credential.key_id)
    assert (await probe.probe(TENANT_ID, app_id, Sensitive(value))).code == 7000215


async def test_probe_rules_propagation_codes_and_transient_failures(directory: FakeDirectory, clock: FakeClock) -> None:
    probe = FakeTokenProbe(directory, clock, propagation_probes=2)
    app_id = directory.add_app()
    _, value = directory.add_credential(app_id)
    secret = Sensitive(value)
    assert [(await probe.probe(TENANT_ID, app_id, secret)).ok for _ in range(3)] == [False, False, True]
    probe.refuse(900023)
    probe.transient()
    assert (await probe.probe(TENANT_ID, app_id, secret)).code == 900023
    assert (await probe.probe(TENANT_ID, app_id, secret)).transient
    assert (await probe.probe(TENANT_ID, app_id, secret)).ok
    assert probe.probes == 6


# --- Lock and Clock ----------------------------------------------------------------------------------


async def test_lock_is_exclusive_per_key_and_can_be_lost() -> None:
    lock: Lock = FakeLock()
    fake = FakeLock()
    async with lock.hold("kv/db") as held:
        assert not held.lost and held.key == "kv/db"
        with pytest.raises(LockHeld) as caught:
            async with lock.hold("kv/db"):
                pass
        async with lock.hold("kv/other"):
            pass
    assert isinstance(caught.value, RotationError) and caught.value.code == "LockHeld"
    async with fake.hold("kv/db") as held:
        fake.lose("kv/db")
        assert held.lost
    async with fake.hold("kv/db") as again:  # released, even though it was lost
        assert not again.lost


async def test_fake_clock_moves_only_when_told_or_slept_on(clock: FakeClock) -> None:
    port: Clock = clock
    assert port.now() == NOW and clock.monotonic() == 0
    await clock.sleep(1.5)
    clock.advance(timedelta(minutes=1))
    assert port.now() == NOW + timedelta(seconds=61.5) and clock.monotonic() == 61.5
    assert clock.sleeps == [1.5]
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        FakeClock(datetime(2025, 1, 1))


def test_system_clock_is_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
