"""In-memory implementations of the ports in `rotation.service.ports`, for unit tests.

They are strict where Entra and Key Vault are strict, so that a reconciler bug shows up here and not
only against the local cloud: `FakeDirectory` keeps each app's password credentials (keyId, hint,
displayName, start, end) and their values, refuses a password beyond the app's limit or its policy's
lifetime; `FakeVault` keeps every version (value, tags, enabled, created, nbf, exp) and refuses more
than 15 tags or reading a disabled version; `FakeTokenProbe` signs in only with the value of a live,
unexpired credential of the app, and answers per configured rules (propagation after N probes, a given
AADSTS code, transient failures). `FakeClock` moves only when told or when something sleeps on it.

Every write is logged (`FakeDirectory.writes`, `FakeVault.writes`) so tests can assert the order of
writes, and any operation can be made to fail (`fail(...)`); `after_write` hooks let a test act at an
exact point (lose the lock after addPassword, say). Values never appear in a log or an exception.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rotation.domain.errors import (
    ApplicationNotFoundError,
    LockHeld,
    PasswordLifetimePolicyError,
    PasswordLimitError,
    PermissionDeniedError,
    PolicyBlockedError,
    RotationError,
    SecretDisabledError,
    SecretNotFoundError,
    TagError,
)
from rotation.domain.model import (
    APPLICATION,
    SERVICE_PRINCIPAL,
    TAG_LIMIT,
    Application,
    CredentialObject,
    NewPassword,
    PasswordCredential,
    PasswordPolicy,
    ProbeResult,
    SecretValue,
    SecretVersion,
    Sensitive,
)
from rotation.service.ports import Clock, Directory, HeldLock, Lock, TokenProbe, Vault

__all__ = [
    "FakeClock",
    "FakeDirectory",
    "FakeLock",
    "FakeTokenProbe",
    "FakeVault",
    "Faults",
    "new_secret_value",
]

_ALPHABET = string.ascii_letters + string.digits + "~._-"
_PERSONAL = frozenset({"AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"})


def new_secret_value() -> str:
    """A value shaped like Entra's (40 characters)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(40))


class Faults:
    """Make named operations fail: ``fail("set", error, times=1)``; ``times=None`` fails for good."""

    def __init__(self) -> None:
        self._planned: dict[str, list[tuple[RotationError, int | None]]] = {}
        self.after_write: list[Callable[[str], None]] = []

    def fail(self, operation: str, error: RotationError, *, times: int | None = 1) -> None:
        self._planned.setdefault(operation, []).append((error, times))

    def clear(self) -> None:
        self._planned.clear()

    def check(self, operation: str) -> None:
        planned = self._planned.get(operation)
        if not planned:
            return
        error, times = planned[0]
        if times is not None:
            if times <= 1:
                planned.pop(0)
            else:
                planned[0] = (error, times - 1)
        raise error

    def wrote(self, operation: str) -> None:
        for hook in list(self.after_write):
            hook(operation)


# --------------------------------------------------------------------------------------------------
# Clock


class FakeClock:
    """`Clock`, plus a monotonic timer and a `sleep` that advance it (so back-off costs no time)."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware time")
        self._now = now.astimezone(UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, delta: timedelta | float) -> None:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += timedelta(seconds=seconds)
        self._elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep {seconds} s")
        self.sleeps.append(seconds)
        self.advance(seconds)


# --------------------------------------------------------------------------------------------------
# Entra / Graph


@dataclass
class _Password:
    credential: PasswordCredential
    value: str


@dataclass
class _ServicePrincipal:
    """The app's service principal: passwords and tags of its own (its owners', not the app's)."""

    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    passwords: list[_Password] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    tags_writable: bool = True


@dataclass
class _App:
    object_id: str
    app_id: str
    display_name: str
    sign_in_audience: str | None
    passwords: list[_Password] = field(default_factory=list)
    policy: PasswordPolicy | None = None  # what the app management policy enforces
    policy_readable: bool = True  # whether the rotator may read it (Policy.Read.All)
    tags: list[str] = field(default_factory=list)  # the application's tags (its bindings among them)
    tags_writable: bool = True  # whether the caller may write them (an owner or an admin)
    sp: _ServicePrincipal = field(default_factory=_ServicePrincipal)

    def passwords_on(self, on: CredentialObject) -> list[_Password]:
        return self.sp.passwords if on == SERVICE_PRINCIPAL else self.passwords

    def tags_on(self, on: CredentialObject) -> list[str]:
        return self.sp.tags if on == SERVICE_PRINCIPAL else self.tags

    def object_id_on(self, on: CredentialObject) -> str:
        return self.sp.object_id if on == SERVICE_PRINCIPAL else self.object_id


class FakeDirectory:
    """`Directory`: app registrations with password credentials, kept like Graph keeps them."""

    def __init__(self, clock: Clock, *, writes: list[tuple[str, ...]] | None = None) -> None:
        self._clock = clock
        self._apps: dict[str, _App] = {}
        self.faults = Faults()
        #: ("addPassword" | "removePassword", keyId); pass one list to several fakes for a joint order.
        self.writes: list[tuple[str, ...]] = [] if writes is None else writes
        #: Values the next `add_password` calls return instead of fresh ones (e.g. an unsafe value).
        self.next_values: list[str] = []
        self.reads = 0
        #: The sign-in report (last sign-in by keyId); ``None``: the rotator may not read it.
        self.sign_ins: dict[str, datetime | None] | None = None

    # --- set-up -----------------------------------------------------------------------------------
    def add_app(self, app_id: str | None = None, *, sign_in_audience: str | None = None, name: str = "svc") -> str:
        """A new app; returns its appId."""
        app_id = (app_id or str(uuid.uuid4())).lower()
        object_id = str(uuid.uuid4())
        self._apps[object_id] = _App(object_id, app_id, name, sign_in_audience)
        return app_id

    def add_credential(
        self,
        app_id: str,
        *,
        value: str | None = None,
        display_name: str | None = "made by a human",
        start: datetime | None = None,
        end: datetime | None = None,
        on: CredentialObject = APPLICATION,
    ) -> tuple[PasswordCredential, str]:
        """A password put there by someone else (no write logged) on the app or (``on``) its service
        principal: the credential and its value."""
        app = self._by_app_id(app_id)
        now = self._clock.now()
        value = value if value is not None else new_secret_value()
        credential = PasswordCredential(
            key_id=str(uuid.uuid4()),
            display_name=display_name,
            hint=value[:3],
            start=start or now,
            end=end or now + timedelta(days=365),
        )
        app.passwords_on(on).append(_Password(credential, value))
        return credential, value

    def set_policy(self, app_id: str, policy: PasswordPolicy | None, *, readable: bool = True) -> None:
        app = self._by_app_id(app_id)
        app.policy = policy
        app.policy_readable = readable

    def object_id(self, app_id: str, *, on: CredentialObject = APPLICATION) -> str:
        return self._by_app_id(app_id).object_id_on(on)

    def set_tags(
        self, app_id: str, tags: list[str], *, writable: bool = True, on: CredentialObject = APPLICATION
    ) -> None:
        """The app's (or its service principal's) owners set its tags (no write logged);
        ``writable=False``: the caller may not."""
        app = self._by_app_id(app_id)
        if on == SERVICE_PRINCIPAL:
            app.sp.tags = list(tags)
            app.sp.tags_writable = writable
            return
        app.tags = list(tags)
        app.tags_writable = writable

    def tags(self, app_id: str, *, on: CredentialObject = APPLICATION) -> list[str]:
        return list(self._by_app_id(app_id).tags_on(on))

    def credentials(self, app_id: str, *, on: CredentialObject = APPLICATION) -> list[PasswordCredential]:
        return [p.credential for p in self._by_app_id(app_id).passwords_on(on)]

    def key_ids(self, app_id: str, *, on: CredentialObject = APPLICATION) -> set[str]:
        return {c.key_id for c in self.credentials(app_id, on=on)}

    def value_of(self, app_id: str, key_id: str) -> str | None:
        """The value of a live credential of the app or its service principal (what a test needs to
        seed a vault), or ``None``."""
        app = self._by_app_id(app_id)
        password = self._password(app, key_id) or self._password(app, key_id, SERVICE_PRINCIPAL)
        return password.value if password else None

    def remove_password_now(self, app_id: str, key_id: str, *, on: CredentialObject = APPLICATION) -> None:
        """Someone else removed the credential (no write logged)."""
        app = self._by_app_id(app_id)
        password = self._password(app, key_id, on)
        assert password is not None, f"no credential {key_id}"
        app.passwords_on(on).remove(password)

    def all_values(self) -> list[str]:
        """Every live credential's value, the service principals' too (to assert that none leaked)."""
        return [p.value for a in self._apps.values() for p in (*a.passwords, *a.sp.passwords)]

    def credential_for_value(self, app_id: str, value: str) -> PasswordCredential | None:
        """The credential a sign-in with ``value`` uses: Entra takes the app's passwords and its
        service principal's alike for a client-credentials sign-in of the appId."""
        app = self._apps_by_app_id().get(app_id.lower())
        if app is None:
            return None
        return next(
            (p.credential for p in (*app.passwords, *app.sp.passwords) if secrets.compare_digest(p.value, value)),
            None,
        )

    # --- the port ----------------------------------------------------------------------------------
    async def get_application(self, app_id: str, *, on: CredentialObject = APPLICATION) -> Application:
        self.faults.check("get_application")
        self.reads += 1
        app = self._by_app_id(app_id)
        if on == SERVICE_PRINCIPAL:
            return Application(
                app.sp.object_id,
                app.app_id,
                app.display_name,
                None,
                tuple(p.credential for p in app.sp.passwords),
                # Graph reads a service principal's tags as its own plus its application's.
                tags=(*app.sp.tags, *(t for t in app.tags if t not in app.sp.tags)),
                credential_object=SERVICE_PRINCIPAL,
            )
        return Application(
            app.object_id,
            app.app_id,
            app.display_name,
            app.sign_in_audience,
            tuple(p.credential for p in app.passwords),
            tags=tuple(app.tags),
        )

    async def add_password(
        self,
        object_id: str,
        display_name: str,
        start: datetime,
        end: datetime,
        *,
        app_id: str = "",
        on: CredentialObject = APPLICATION,
    ) -> NewPassword:
        self.faults.check("add_password")
        app = self._by_object_id(object_id, app_id, on)
        if on == APPLICATION and app.sign_in_audience in _PERSONAL and len(app.passwords) >= 2:
            raise PasswordLimitError(f"Application {app.app_id} cannot hold another password (TooManyAppPasswords).")
        if app.policy is not None:
            if app.policy.blocked:
                raise PolicyBlockedError(f"An app management policy forbids adding passwords to {app.app_id}.")
            if app.policy.max_lifetime is not None and end - start > app.policy.max_lifetime:
                raise PasswordLifetimePolicyError(
                    f"An app management policy limits password lifetime for application {app.app_id}."
                )
        if end <= start:
            raise ValueError("endDateTime must be after startDateTime")
        value = self.next_values.pop(0) if self.next_values else new_secret_value()
        credential = PasswordCredential(str(uuid.uuid4()), display_name, value[:3], start, end)
        app.passwords_on(on).append(_Password(credential, value))
        self.writes.append(("addPassword", credential.key_id))
        self.faults.wrote("add_password")
        return NewPassword(credential, Sensitive(value))

    async def remove_password(
        self, object_id: str, key_id: str, *, app_id: str = "", on: CredentialObject = APPLICATION
    ) -> bool:
        self.faults.check("remove_password")
        app = self._by_object_id(object_id, app_id, on)
        password = self._password(app, key_id, on)
        self.writes.append(("removePassword", key_id.lower()))
        if password is None:
            return False
        app.passwords_on(on).remove(password)
        self.faults.wrote("remove_password")
        return True

    async def password_policy(
        self, object_id: str, created: datetime | None = None, *, on: CredentialObject = APPLICATION
    ) -> PasswordPolicy | None:
        self.faults.check("password_policy")
        app = self._by_object_id(object_id, "", on)
        if not app.policy_readable:
            return None
        return app.policy or PasswordPolicy(blocked=False, max_lifetime=None)

    async def credential_sign_ins(self, app_id: str) -> dict[str, datetime | None] | None:
        """The report as `sign_ins` holds it (``None``: not readable, the default)."""
        self.faults.check("credential_sign_ins")
        self.reads += 1
        return None if self.sign_ins is None else dict(self.sign_ins)

    async def set_application_tags(
        self, object_id: str, tags: Sequence[str], *, app_id: str = "", on: CredentialObject = APPLICATION
    ) -> None:
        self.faults.check("set_application_tags")
        app = self._by_object_id(object_id, app_id, on)
        if on == SERVICE_PRINCIPAL:
            if not app.sp.tags_writable:
                raise PermissionDeniedError(
                    "Microsoft Graph", "ownership of the service principal", action="write its tags"
                )
            app.sp.tags = list(tags)
            self.writes.append(("setServicePrincipalTags", app.app_id))
            return
        if not app.tags_writable:
            raise PermissionDeniedError("Microsoft Graph", "ownership of the application", action="write its tags")
        app.tags = list(tags)
        self.writes.append(("setTags", app.app_id))

    # --- internals ---------------------------------------------------------------------------------
    def _apps_by_app_id(self) -> dict[str, _App]:
        return {a.app_id: a for a in self._apps.values()}

    def _by_app_id(self, app_id: str) -> _App:
        app = self._apps_by_app_id().get(app_id.lower())
        if app is None:
            raise ApplicationNotFoundError(f"No application with appId {app_id} is visible to the rotator.")
        return app

    def _by_object_id(self, object_id: str, app_id: str, on: CredentialObject = APPLICATION) -> _App:
        # Graph's two collections: an application's id is no service principal's, and the reverse.
        app = next((a for a in self._apps.values() if a.object_id_on(on) == object_id), None)
        if app is None:
            raise ApplicationNotFoundError(f"No {on} with object id {object_id} (appId {app_id or '?'}).")
        return app

    @staticmethod
    def _password(app: _App, key_id: str, on: CredentialObject = APPLICATION) -> _Password | None:
        wanted = key_id.lower()
        return next((p for p in app.passwords_on(on) if p.credential.key_id.lower() == wanted), None)


# --------------------------------------------------------------------------------------------------
# Key Vault


@dataclass
class _Version:
    name: str
    version: str
    value: str
    enabled: bool
    created: datetime
    updated: datetime
    not_before: datetime | None
    expires: datetime | None
    content_type: str | None
    tags: dict[str, str]


class FakeVault:
    """`Vault`: secrets with every version's value, tags, enabled flag and dates."""

    def __init__(self, name: str, clock: Clock, *, writes: list[tuple[str, ...]] | None = None) -> None:
        self.name = name
        self._clock = clock
        self._secrets: dict[str, list[_Version]] = {}
        self.faults = Faults()
        #: ("set" | "tag" | "disable", secret, version); may be shared with a FakeDirectory.
        self.writes: list[tuple[str, ...]] = [] if writes is None else writes
        #: The next `set` stores a different value than it was given (a corrupting store).
        self.mangle_next_write = False

    # --- set-up and inspection ---------------------------------------------------------------------
    def put(
        self,
        secret: str,
        value: str,
        tags: Mapping[str, str] | None = None,
        *,
        expires: datetime | None = None,
        not_before: datetime | None = None,
        created: datetime | None = None,
        enabled: bool = True,
    ) -> str:
        """A version written by someone else (no write logged); returns its version id."""
        return self._append(secret, value, dict(tags or {}), None, not_before, expires, created, enabled).version

    def update_now(self, secret: str, version: str, tags: Mapping[str, str]) -> None:
        """Someone else changed a version's tags (no write logged)."""
        found = next(v for v in self._secrets[secret.lower()] if v.version == version)
        found.tags = dict(tags)

    def all_values(self) -> list[str]:
        """Every version's value (to assert that none leaked)."""
        return [v.value for versions in self._secrets.values() for v in versions]

    def versions(self, secret: str) -> list[SecretVersion]:
        """Every version, oldest first."""
        return [self._view(v) for v in self._secrets.get(secret.lower(), [])]

    def latest(self, secret: str) -> SecretVersion:
        return self.versions(secret)[-1]

    def value(self, secret: str, version: str | None = None) -> str:
        versions = self._secrets[secret.lower()]
        found = versions[-1] if version is None else next(v for v in versions if v.version == version)
        return found.value

    # --- the port ----------------------------------------------------------------------------------
    async def get(self, secret: str, version: str | None = None) -> SecretValue | None:
        self.faults.check("get")
        versions = self._secrets.get(secret.lower())
        if not versions:
            return None
        found = versions[-1] if version is None else next((v for v in versions if v.version == version), None)
        if found is None:
            return None
        if not found.enabled:
            raise SecretDisabledError(f"Version {found.version} of secret '{secret}' is disabled.")
        return SecretValue(self._view(found), Sensitive(found.value))

    async def set(
        self,
        secret: str,
        value: Sensitive,
        *,
        tags: Mapping[str, str],
        content_type: str | None,
        not_before: datetime | None,
        expires: datetime | None,
    ) -> SecretVersion:
        self.faults.check("set")
        self._check_tags(secret, tags)
        text = value.reveal()
        if self.mangle_next_write:
            self.mangle_next_write = False
            text = text[:-1] + ("x" if text[-1:] != "x" else "y")
        stored = self._append(secret, text, dict(tags), content_type, not_before, expires, None, True)
        self.writes.append(("set", secret, stored.version))
        self.faults.wrote("set")
        return self._view(stored)

    async def update(
        self, secret: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> SecretVersion:
        self.faults.check("update")
        found = next((v for v in self._secrets.get(secret.lower(), []) if v.version == version), None)
        if found is None:
            raise SecretNotFoundError(self.name, f"{secret}/{version}")
        if tags is not None:
            self._check_tags(secret, tags)
            found.tags = dict(tags)
        if enabled is not None:
            found.enabled = enabled
        found.updated = self._clock.now()
        operation = "disable" if enabled is False else "tag"
        self.writes.append((operation, secret, version))
        self.faults.wrote("update")
        return self._view(found)

    async def list_secrets(self) -> list[SecretVersion]:
        self.faults.check("list_secrets")
        return [self._view(versions[-1], listed=True) for versions in self._secrets.values()]

    async def secret_pages(self) -> AsyncIterator[list[SecretVersion]]:
        listed = await self.list_secrets()
        for start in range(0, len(listed), 25):
            yield listed[start : start + 25]

    async def list_versions(self, secret: str) -> list[SecretVersion]:
        self.faults.check("list_versions")
        return self.versions(secret)

    # --- internals ---------------------------------------------------------------------------------
    def _check_tags(self, secret: str, tags: Mapping[str, str]) -> None:
        if len(tags) > TAG_LIMIT:
            raise TagError(self.name, secret, [f"{len(tags)} tags; Key Vault allows {TAG_LIMIT}"])

    def _append(
        self,
        secret: str,
        value: str,
        tags: dict[str, str],
        content_type: str | None,
        not_before: datetime | None,
        expires: datetime | None,
        created: datetime | None,
        enabled: bool,
    ) -> _Version:
        versions = self._secrets.setdefault(secret.lower(), [])
        when = created or self._clock.now()
        if created is None and versions and when <= versions[-1].created:
            # Key Vault orders versions by creation; keep that order strict when the clock stands still.
            when = versions[-1].created + timedelta(seconds=1)
        name = versions[0].name if versions else secret
        stored = _Version(name, uuid.uuid4().hex, value, enabled, when, when, not_before, expires, content_type, tags)
        versions.append(stored)
        return stored

    def _view(self, version: _Version, *, listed: bool = False) -> SecretVersion:
        return SecretVersion(
            vault=self.name,
            name=version.name,
            version=None if listed else version.version,
            enabled=version.enabled,
            created=version.created,
            updated=version.updated,
            not_before=version.not_before,
            expires=version.expires,
            content_type=version.content_type,
            tags=version.tags,
        )


# --------------------------------------------------------------------------------------------------
# Token probe


class FakeTokenProbe:
    """`TokenProbe` over a `FakeDirectory`: a sign-in works with the value of a live, unexpired
    credential of the app, once that credential has "propagated".

    Rules: ``propagation_probes`` (every new credential fails that many probes with AADSTS7000215
    first), ``refuse(code, times)`` (the next probes answer that AADSTS code), ``transient(times)``
    (network-style failures).
    """

    def __init__(self, directory: FakeDirectory, clock: Clock, *, propagation_probes: int = 0) -> None:
        self._directory = directory
        self._clock = clock
        self.propagation_probes = propagation_probes
        self._seen: dict[str, int] = {}
        self._refusals: list[tuple[int | None, bool]] = []
        self.probes = 0
        self.timeouts: list[float | None] = []  # each attempt's `within`, as the caller passed it

    def refuse(self, code: int, *, times: int = 1) -> None:
        self._refusals.extend([(code, False)] * times)

    def transient(self, *, times: int = 1) -> None:
        self._refusals.extend([(None, True)] * times)

    async def probe(
        self, tenant_id: str, app_id: str, secret: Sensitive, *, within: float | None = None
    ) -> ProbeResult:
        self.probes += 1
        self.timeouts.append(within)
        if self._refusals:
            code, transient = self._refusals.pop(0)
            if transient:
                return ProbeResult(ok=False, transient=True, message="connection reset")
            return ProbeResult(ok=False, code=code, message=f"AADSTS{code}")
        try:
            credential = self._directory.credential_for_value(app_id, secret.reveal())
            self._directory.object_id(app_id)
        except ApplicationNotFoundError:
            return ProbeResult(ok=False, code=700016, message="AADSTS700016: application not found")
        if credential is None:
            return ProbeResult(ok=False, code=7000215, message="AADSTS7000215: Invalid client secret provided")
        if credential.is_expired(self._clock.now()):
            return ProbeResult(ok=False, code=7000222, message="AADSTS7000222: the client secret keys are expired")
        seen = self._seen.get(credential.key_id, 0)
        self._seen[credential.key_id] = seen + 1
        if seen < self.propagation_probes:
            return ProbeResult(ok=False, code=7000215, message="AADSTS7000215: Invalid client secret provided")
        return ProbeResult(ok=True)


# --------------------------------------------------------------------------------------------------
# Lock


class FakeLock:
    """`Lock`: one holder per key; `lose(key)` makes the current holder's lock lost."""

    def __init__(self) -> None:
        self.held: dict[str, HeldLock] = {}

    def hold(self, key: str) -> AbstractAsyncContextManager[HeldLock]:
        @asynccontextmanager
        async def holding() -> AsyncIterator[HeldLock]:
            if key in self.held:
                raise LockHeld(key)
            held = HeldLock(key)
            self.held[key] = held
            try:
                yield held
            finally:
                del self.held[key]

        return holding()

    def lose(self, key: str) -> None:
        self.held[key].lost = True


# The fakes really are the ports (mypy checks these assignments).
def _conforms(now: datetime) -> None:
    clock: Clock = FakeClock(now)
    directory: Directory = FakeDirectory(clock)
    vault: Vault = FakeVault("kv", clock)
    probe: TokenProbe = FakeTokenProbe(FakeDirectory(clock), clock)
    lock: Lock = FakeLock()
    del directory, vault, probe, lock
