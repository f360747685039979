"""The Protocols are implementable by plain in-memory classes (and this file type-checks with mypy)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from rotation.domain.errors import LockHeld, RotationError
from rotation.domain.model import (
    Application,
    NewPassword,
    PasswordCredential,
    PasswordPolicy,
    ProbeResult,
    SecretValue,
    SecretVersion,
    Sensitive,
)
from rotation.service.ports import Clock, Directory, Lock, SystemClock, TokenProbe, Vault

from .samples import APP_ID, KEY_A, NOW, SECRET_VALUE, TENANT_ID, VERSION


class MemoryDirectory:
    def __init__(self) -> None:
        self.app = Application("object-1", APP_ID, "demo")

    async def get_application_by_app_id(self, app_id: str, tenant_id: str | None) -> Application | None:
        return self.app if app_id == self.app.app_id else None

    async def add_password(self, object_id: str, display_name: str, start: datetime, end: datetime) -> NewPassword:
        credential = PasswordCredential(KEY_A, display_name, SECRET_VALUE[:3], start, end)
        return NewPassword(credential, Sensitive(SECRET_VALUE))

    async def remove_password(self, object_id: str, key_id: str) -> bool:
        return False

    async def password_policy(self, object_id: str) -> PasswordPolicy:
        return PasswordPolicy(blocked=False, max_lifetime=timedelta(days=180))


class MemoryVault:
    def __init__(self) -> None:
        self.versions: list[SecretValue] = []

    async def get_latest(self, name: str) -> SecretValue | None:
        return self.versions[-1] if self.versions else None

    async def get_version(self, name: str, version: str) -> SecretValue | None:
        return next((v for v in self.versions if v.version.version == version), None)

    async def set_secret(
        self,
        name: str,
        value: Sensitive,
        *,
        tags: Mapping[str, str],
        content_type: str | None,
        not_before: datetime | None,
        expires: datetime | None,
    ) -> SecretVersion:
        version = SecretVersion("kv", name, VERSION, not_before=not_before, expires=expires, tags=tags)
        self.versions.append(SecretValue(version, value))
        return version

    async def update_tags(self, name: str, version: str, tags: Mapping[str, str]) -> SecretVersion:
        return SecretVersion("kv", name, version, tags=tags)

    async def disable_version(self, name: str, version: str) -> None:
        return None

    async def list_secrets(self) -> AsyncIterator[SecretVersion]:
        for v in self.versions:
            yield v.version

    async def list_versions(self, name: str) -> AsyncIterator[SecretVersion]:
        for v in self.versions:
            yield v.version


class MemoryProbe:
    async def probe(self, tenant_id: str, app_id: str, secret: Sensitive) -> ProbeResult:
        return ProbeResult(ok=secret.matches(SECRET_VALUE))


class MemoryLock:
    def __init__(self) -> None:
        self.held: set[str] = set()

    def acquire(self, key: str) -> AbstractAsyncContextManager[None]:
        @asynccontextmanager
        async def hold() -> AsyncIterator[None]:
            if key in self.held:
                raise LockHeld(key)
            self.held.add(key)
            try:
                yield
            finally:
                self.held.discard(key)

        return hold()


class FixedClock:
    def now(self) -> datetime:
        return NOW


async def rotate_once(directory: Directory, vault: Vault, probe: TokenProbe, lock: Lock, clock: Clock) -> bool:
    async with lock.acquire("kv/db"):
        app = await directory.get_application_by_app_id(APP_ID, TENANT_ID)
        assert app is not None
        policy = await directory.password_policy(app.object_id)
        start = clock.now()
        new = await directory.add_password(app.object_id, "rotator:kv/db:r1", start, start + timedelta(days=30))
        assert policy.max_lifetime is not None
        await vault.set_secret("db", new.secret, tags={}, content_type=None, not_before=start, expires=None)
        latest = await vault.get_latest("db")
        assert latest is not None
        listed = [v async for v in vault.list_secrets()]
        assert len(listed) == 1
        return (await probe.probe(TENANT_ID, app.app_id, latest.value)).ok


async def test_in_memory_adapters_satisfy_the_ports() -> None:
    assert await rotate_once(MemoryDirectory(), MemoryVault(), MemoryProbe(), MemoryLock(), FixedClock())


async def test_lock_held_is_a_rotation_error() -> None:
    lock = MemoryLock()
    async with lock.acquire("kv/db"):
        with pytest.raises(LockHeld) as caught:
            async with lock.acquire("kv/db"):
                pass
    assert isinstance(caught.value, RotationError)
    assert caught.value.code == "LockHeld"
    assert caught.value.key == "kv/db"


def test_system_clock_is_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
