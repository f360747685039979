"""Shared helpers for the reconciler's integration tests (real SDKs against the local cloud).

Nothing here mocks an SDK: a reconcile goes through `rotation.runtime.open_runtime`, i.e. msgraph-sdk,
azure-keyvault-secrets (aio) and azure-identity over HTTPS to the local cloud. What the helpers add:

- seeding a managed secret (an app owned by the rotator, a human-made password, a Key Vault version);
- settings per test (`make_settings`), a private cloud wired into the environment (`start_private_cloud`);
- a clock shared with the local cloud (`CloudClock`) and crash injection (`crash_on_sleep`);
- reading the cloud's state and request log, fault injection;
- the invariants every test ends with: `assert_converged`, `assert_no_secret_leaked`, `assert_safe_value`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from emulator.rotator_profile import RotatorCloud
from localcloud.state import secret_digest
from rotation.domain.model import Outcome, ReconcileRequest, is_guid, vault_host
from rotation.runtime import open_runtime
from rotation.service.ports import Clock, SystemClock
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings
from tests.integration.seed import bind_async, create_owned_app, unique, write_secret

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ROTATOR_TAGS = ("CredentialId", "RotationId", "RotationState", "RetireCredentialId", "RetireAfter", "FailureReason")
_HEX32 = "[0-9a-f]{32}"


# --------------------------------------------------------------------------------------------------
# Settings, clouds, clocks


def make_settings(
    base: Mapping[str, str] | None = None,
    *,
    grace_hours: int = 0,
    validation_successes: int = 1,
    validation_deadline_seconds: int | None = None,
    orphan_margin_minutes: int | None = None,
    throttle_retry_seconds: int | None = None,
    validity_days: int | None = None,
    rotate_before_days: int | None = None,
    extra_vaults: Mapping[str, str] | None = None,
) -> Settings:
    """`Settings.from_env` over `base` (default: `os.environ`, where the shared cloud's env is exported)
    with the given overrides. Defaults suit fast tests: no grace, one successful sign-in proves a value."""
    env = dict(os.environ if base is None else base)
    overrides: dict[str, int | None] = {
        "ROTATION_GRACE_HOURS": grace_hours,
        "ROTATION_VALIDATION_SUCCESSES": validation_successes,
        "ROTATION_VALIDATION_DEADLINE_SECONDS": validation_deadline_seconds,
        "ROTATION_ORPHAN_MARGIN_MINUTES": orphan_margin_minutes,
        "ROTATION_THROTTLE_RETRY_SECONDS": throttle_retry_seconds,
        "ROTATION_VALIDITY_DAYS": validity_days,
        "ROTATION_ROTATE_BEFORE_DAYS": rotate_before_days,
    }
    env.update({key: str(value) for key, value in overrides.items() if value is not None})
    if extra_vaults:
        listed = [env["ROTATION_VAULTS"], *(f"{name}={url}" for name, url in extra_vaults.items())]
        env["ROTATION_VAULTS"] = ",".join(listed)
    return Settings.from_env(env)


def start_private_cloud(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> RotatorCloud:
    """A cloud of the test's own, exported into `os.environ` for the test's duration.

    The rotator's credential is a `ManagedIdentityCredential` that reads `IDENTITY_ENDPOINT` and
    `IDENTITY_HEADER` from the environment (see `rotation.runtime.rotator_credential`), and the seeding
    helpers authenticate the same way, so every variable of `local.env` is set, not only the settings.
    """
    local = private_cloud(**kwargs)
    for key, value in local.env.items():
        monkeypatch.setenv(key, value)
    return local


class CloudClock:
    """The local cloud's (movable) clock, for a reconciler that must agree with it."""

    def __init__(self, cloud: RotatorCloud) -> None:
        self._cloud = cloud

    def now(self) -> datetime:
        return self._cloud.now()


def advance_clock(cloud: RotatorCloud, delta: timedelta) -> None:
    cloud.admin("POST", "/clock", {"advanceSeconds": delta.total_seconds()})


class SimulatedCrash(Exception):
    """Raised from inside a reconcile to stand for the process dying at that point."""


def crash_on_sleep(before: Callable[[], None] | None = None) -> Callable[[float], Awaitable[None]]:
    """A `Reconciler.sleep` that runs `before` (an observation) and then "crashes" the process.

    The reconciler sleeps only between validation probes, i.e. after the new value is stored with
    `RotationState=validating`: the earliest point at which a crash leaves a pending validation.
    """

    async def sleep(seconds: float) -> None:
        if before is not None:
            before()
        raise SimulatedCrash(f"process died while waiting {seconds:g} s between probes")

    return sleep


def config(cloud: RotatorCloud, **fields: Any) -> None:
    cloud.admin("PUT", "/config", fields)


class _LastMoment(random.Random):
    """Randomness whose every propagation delay is the window's longest."""

    def uniform(self, a: float, b: float) -> float:
        return b


def propagation_never_within_deadline(cloud: RotatorCloud) -> None:
    """Every credential added from now on reaches each replica at the end of the propagation window,
    never by chance within a test's few-second validation deadline (a uniform draw over an hour's
    window lands in the first 5 s once in ~700 draws: enough to make a suite flaky)."""
    cloud.edit(lambda world: setattr(world, "random", _LastMoment()))


# --------------------------------------------------------------------------------------------------
# Seeding


@dataclass(frozen=True)
class Seeded:
    """A managed secret: `value` (credential `key_id`) is stored as version `version`."""

    cloud: RotatorCloud
    vault: str
    name: str
    app_id: str
    object_id: str
    key_id: str
    value: str
    version: str
    # A human's password on the same app that has nothing to do with the secret: never touched.
    unrelated_key_id: str | None = None
    # The secret holds a password of the app's service principal (CredentialObject=servicePrincipal):
    # `key_id` and the invariants are the service principal's passwords, not the app registration's.
    on_service_principal: bool = False

    @property
    def humans(self) -> set[str]:
        return {self.unrelated_key_id} if self.unrelated_key_id else set()


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def add_human_password(
    cloud: RotatorCloud,
    object_id: str,
    *,
    display_name: str = "made by a human",
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"displayName": display_name}
    if start is not None:
        body["startDateTime"] = _graph_time(start)
    if end is not None:
        body["endDateTime"] = _graph_time(end)
    result: dict[str, Any] = cloud.admin("POST", f"/applications/{object_id}/passwords", body)
    return result


async def seed(
    cloud: RotatorCloud,
    *,
    vault: str = "kv-local",
    expires_in_days: float | None = 10,
    credential_end_in_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    tag_credential: bool = True,
    sign_in_audience: str | None = None,
    unrelated_credential: bool = True,
    stored_value: Callable[[dict[str, Any]], str] | None = None,
    bound: bool = True,
) -> Seeded:
    """An app owned by the rotator with a human-made password whose value sits in a managed secret.

    `expires_in_days=None` writes the version without an expiry (the credential then ends in 60 days
    unless `credential_end_in_days` says otherwise). `stored_value` picks what is stored from the
    addPassword answer (e.g. its keyId: the Secret-ID mistake). The secret's name is unique, so tests
    on the shared cloud never meet each other's secrets.
    """
    extra = {"signInAudience": sign_in_audience} if sign_in_audience else {}
    app = create_owned_app(cloud, unique("svc"), **extra)
    now = datetime.now(UTC).replace(microsecond=0)
    expires = None if expires_in_days is None else now + timedelta(days=expires_in_days)
    end_days = credential_end_in_days if credential_end_in_days is not None else expires_in_days or 60
    password = add_human_password(cloud, app["id"], end=now + timedelta(days=end_days))
    unrelated = None
    if unrelated_credential:
        unrelated = add_human_password(cloud, app["id"], display_name="CI pipeline (a human's)")
    all_tags = {"ProviderAddress": app["appId"]}
    if tag_credential:
        all_tags["CredentialId"] = password["keyId"]
    all_tags.update(tags or {})
    value = stored_value(password) if stored_value else password["secretText"]
    name = unique("secret")
    if bound:
        await bind_async(cloud, app["appId"], vault, name, password["keyId"] if tag_credential else None)
    version = await write_secret(cloud, vault, name, value, all_tags, expires)
    return Seeded(
        cloud=cloud,
        vault=vault,
        name=name,
        app_id=app["appId"],
        object_id=app["id"],
        key_id=password["keyId"],
        value=password["secretText"],
        version=version,
        unrelated_key_id=unrelated["keyId"] if unrelated else None,
    )


# --------------------------------------------------------------------------------------------------
# Running the reconciler


async def reconcile(
    settings: Settings,
    seeded: Seeded,
    *,
    mode: Literal["normal", "forced", "emergency"] = "normal",
    clock: Clock | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    secret: str | None = None,
) -> Outcome:
    """One reconcile through the production wiring; a fresh runtime each time, as a new worker has.

    With `clock` or `sleep`, the reconciler is rebuilt around the runtime's own adapters (it is a
    dataclass), so only the clock or the pause between probes differs from production.
    """
    async with open_runtime(settings) as runtime:
        reconciler = runtime.reconciler
        if clock is not None or sleep is not None:
            reconciler = Reconciler(
                settings,
                runtime.directory,
                runtime.vaults,
                runtime.probe,
                clock or SystemClock(),
                sleep or asyncio.sleep,
            )
        request = ReconcileRequest.new(
            seeded.vault, secret or seeded.name, now=reconciler.clock.now(), reason="integration test", mode=mode
        )
        return await reconciler.reconcile(request)


# --------------------------------------------------------------------------------------------------
# Observing the cloud


@dataclass(frozen=True)
class CredentialView:
    key_id: str
    display_name: str | None
    hint: str
    start: datetime
    end: datetime
    digest: str


@dataclass(frozen=True)
class VersionView:
    version: str
    value: str
    enabled: bool
    created: datetime
    not_before: datetime | None
    expires: datetime | None
    content_type: str | None
    tags: dict[str, str] = field(default_factory=dict)


def passwords(cloud: RotatorCloud, object_id: str) -> dict[str, CredentialView]:
    """The app's password credentials by lower-case keyId (what Entra holds, values as digests)."""
    return {
        p.key_id.lower(): CredentialView(p.key_id.lower(), p.display_name, p.hint, p.start, p.end, p.digest)
        for p in cloud.passwords(object_id)
    }


def sp_passwords(cloud: RotatorCloud, app: str) -> dict[str, CredentialView]:
    """The password credentials of the app's service principal (by its object id, the app's object id
    or appId) by lower-case keyId, values as digests."""
    return {
        p.key_id.lower(): CredentialView(p.key_id.lower(), p.display_name, p.hint, p.start, p.end, p.digest)
        for p in cloud.sp_passwords(app)
    }


def credentials_of(seeded: Seeded) -> dict[str, CredentialView]:
    """The passwords of the object the secret's credential lives on (the app, or its service principal)."""
    if seeded.on_service_principal:
        return sp_passwords(seeded.cloud, seeded.object_id)
    return passwords(seeded.cloud, seeded.object_id)


def versions(cloud: RotatorCloud, vault: str, name: str) -> list[VersionView]:
    """Every version of the secret, oldest first, as the vault holds it."""
    return [
        VersionView(
            v.version,
            v.value,
            v.enabled,
            v.created,
            v.not_before,
            v.expires,
            v.content_type,
            dict(v.tags or {}),
        )
        for v in cloud.secret_versions(vault, name)
    ]


def latest(cloud: RotatorCloud, vault: str, name: str) -> VersionView:
    return versions(cloud, vault, name)[-1]


def version(cloud: RotatorCloud, vault: str, name: str, version_id: str) -> VersionView:
    found = [v for v in versions(cloud, vault, name) if v.version == version_id]
    assert found, f"no version {version_id} of {name}"
    return found[0]


def with_world(cloud: RotatorCloud, change: Callable[[Any], None]) -> None:
    """Change the cloud's world directly (under its lock) for states the admin API cannot make."""
    cloud.edit(change)


def application(world: Any, object_id: str) -> Any:
    for app in world.all_applications():
        if app.object_id == object_id:
            return app
    raise AssertionError(f"no application {object_id}")


def remove_credential_by_hand(cloud: RotatorCloud, object_id: str, key_id: str) -> None:
    def change(world: Any) -> None:
        app = application(world, object_id)
        app.passwords = [p for p in app.passwords if p.key_id.lower() != key_id.lower()]

    with_world(cloud, change)


# --- the request log -------------------------------------------------------------------------------


def mark(cloud: RotatorCloud) -> int:
    """Where the request log ends now; pass it to `requests_since`."""
    return int(cloud.admin("GET", f"/requests?since={10**9}")["next"])


def requests_since(cloud: RotatorCloud, since: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cloud.admin("GET", f"/requests?since={since}")["requests"]
    return items


def matching(
    log: Iterable[dict[str, Any]],
    service: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
) -> list[dict[str, Any]]:
    """Log entries of `service`/`method` whose path (with query) matches the regex `path`."""
    return [
        r
        for r in log
        if (service is None or r["service"] == service)
        and (method is None or r["method"] == method)
        and (path is None or re.search(path, r["path"]))
        and (status is None or r["status"] == status)
    ]


def writes(log: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests to Graph or Key Vault that could change something (anything but GET)."""
    return [r for r in log if r["service"] in ("graph", "keyvault") and r["method"] != "GET"]


def add_fault(
    cloud: RotatorCloud,
    service: str,
    *,
    status: int | None = None,
    count: int = 1,
    path_regex: str | None = None,
    method: str | None = None,
    code: str | None = None,
    drop: bool = False,
) -> str:
    body: dict[str, Any] = {"service": service, "count": count}
    for key, value in (("status", status), ("pathRegex", path_regex), ("method", method), ("code", code)):
        if value is not None:
            body[key] = value
    if drop:
        body["drop"] = True
    fault_id: str = cloud.admin("POST", "/faults", body)["id"]
    return fault_id


def clear_faults(cloud: RotatorCloud) -> None:
    cloud.admin("DELETE", "/faults")


def secret_path(name: str, *, version: str | None = None, any_version: bool = False) -> str:
    """A `pathRegex` for one secret's Key Vault path (faults match the path without the query)."""
    if any_version:
        return f"^/secrets/{name}/{_HEX32}$"
    if version:
        return f"^/secrets/{name}/{version}$"
    return f"^/secrets/{name}$"


# --------------------------------------------------------------------------------------------------
# Invariants


def sign_in(cloud: RotatorCloud, app_id: str, value: str, *, patience_seconds: float = 0.0) -> None:
    """Get a client-credentials token with `value`, as a consumer of the secret would (sync MSAL).

    `patience_seconds` waits out Entra's propagation (7000215 from a replica that has not caught up).
    """
    deadline = time.monotonic() + patience_seconds
    while True:
        credential = ClientSecretCredential(
            cloud.tenant_id, app_id, value, authority=cloud.authority, disable_instance_discovery=True
        )
        try:
            credential.get_token(GRAPH_SCOPE)
            return
        except ClientAuthenticationError as exc:
            if "AADSTS7000215" not in str(exc) or time.monotonic() >= deadline:
                raise AssertionError(f"sign-in with the stored value failed: {type(exc).__name__}") from None
            time.sleep(0.5)
        finally:
            credential.close()


async def assert_signs_in(cloud: RotatorCloud, app_id: str, value: str, *, patience_seconds: float = 0.0) -> None:
    await asyncio.to_thread(sign_in, cloud, app_id, value, patience_seconds=patience_seconds)


def assert_safe_value(value: str, credentials: Mapping[str, CredentialView]) -> None:
    """The guard's promise: what consumers read is never a GUID, and never a keyId of the app."""
    assert not is_guid(value.strip("{}")), "a GUID was stored as the secret value"
    assert value.lower() not in credentials, "a keyId was stored as the secret value"


async def assert_converged(
    seeded: Seeded,
    *,
    keep: Iterable[str] = (),
    pending_retirement: bool = False,
    patience_seconds: float = 0.0,
) -> VersionView:
    """The end state every reconcile must reach, whatever happened before:

    - the latest version is enabled, `active`, and its value signs in;
    - its `CredentialId` names the very credential whose value it holds (compared by digest);
    - no enabled version's tags name a credential that no longer exists;
    - the app holds exactly `keep` (human credentials, untouched), the current credential and, with
      `pending_retirement`, the one waiting for retirement: no rotator orphan;
    - the value is a real secret value (never a GUID/keyId), and `exp`/`nbf` equal the credential's
      `endDateTime`/`startDateTime`.
    """
    cloud = seeded.cloud
    current = latest(cloud, seeded.vault, seeded.name)
    credentials = credentials_of(seeded)
    assert current.enabled, "the latest version is disabled: consumers cannot read the secret"
    assert current.tags.get("RotationState") == "active", current.tags
    assert "FailureReason" not in current.tags, current.tags
    credential_id = current.tags["CredentialId"].lower()
    assert credential_id in credentials, "CredentialId names a credential that does not exist"
    credential = credentials[credential_id]
    assert credential.digest == secret_digest(current.value), "CredentialId names another credential than the value's"
    assert_safe_value(current.value, credentials)
    if current.tags.get("RotationId"):
        assert current.expires == credential.end.replace(microsecond=0)
        assert current.not_before == credential.start.replace(microsecond=0)

    for item in versions(cloud, seeded.vault, seeded.name):
        if not item.enabled:
            continue
        for tag in ("CredentialId", "RetireCredentialId"):
            named = item.tags.get(tag, "").lower()
            assert not named or named in credentials, (
                f"enabled version {item.version} has {tag}={named}, a credential that no longer exists"
            )

    expected = {k.lower() for k in keep} | {credential_id}
    retiring = current.tags.get("RetireCredentialId", "").lower()
    if pending_retirement:
        assert retiring, "a retirement should be pending"
        expected.add(retiring)
    else:
        assert not retiring and "RetireAfter" not in current.tags, current.tags
    assert set(credentials) == expected, {
        "unexpected": sorted(set(credentials) - expected),
        "missing": sorted(expected - set(credentials)),
    }
    await assert_signs_in(cloud, seeded.app_id, current.value, patience_seconds=patience_seconds)
    return current


def issued_secrets(cloud: RotatorCloud) -> list[str]:
    values: list[str] = cloud.admin("GET", "/issued-secrets")["secrets"]
    return values


def assert_no_secret_leaked(cloud: RotatorCloud, outcome: Outcome, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """Every secret the cloud ever issued is absent from the outcome (as JSON) and from the logs,
    plain or form-encoded. Returns the outcome's dict."""
    data = outcome.to_dict()
    text = json.dumps(data)
    logs = caplog.text
    for secret in issued_secrets(cloud):
        for variant in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
            assert variant not in text, "a secret value appears in the outcome"
            assert variant not in logs, "a secret value appears in a log line"
    return data


def capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Everything the rotator logs (DEBUG) and what the SDKs log at INFO, for the leak checks."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="rotation")


def rotator_credentials_for(seeded: Seeded) -> dict[str, CredentialView]:
    prefix = f"rotator:{vault_host(seeded.cloud.vault_url(seeded.vault))}/{seeded.name}:".lower()
    return {
        k: c
        for k, c in passwords(seeded.cloud, seeded.object_id).items()
        if (c.display_name or "").lower().startswith(prefix)
    }
