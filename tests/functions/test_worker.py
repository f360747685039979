"""The queue worker against the local cloud and Azurite: rotate, reject, give up, retry, defer, poison."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue.aio import QueueClient

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from functions.disposition import RotationRetry
from rotation.adapters import keyvault
from rotation.adapters.retrying import GATE
from rotation.domain.errors import SettingsError
from rotation.domain.model import ReconcileRequest
from tests.functions.harness import (
    SHORT_LOCK,
    add_password_calls,
    events_named,
    foreign_lease,
    queue_message,
    request_mark,
    requests_since,
    rotator_credentials,
    storage_connection,
    wait_for_messages,
)
from tests.integration.seed import SeededSecret, seed_managed_secret, unique, write_secret

pytestmark = [pytest.mark.azurite, pytest.mark.usefixtures("azurite", "fast_settings")]


@pytest.fixture
def edge_config() -> EdgeConfig:
    """A 15-second lease and one-second deferrals, so a deferred message comes back within the test."""
    return SHORT_LOCK


async def seeded(cloud: RotatorCloud, **kwargs: Any) -> SeededSecret:
    return await asyncio.to_thread(seed_managed_secret, cloud, **kwargs)


def request_for(vault: str, secret: str, **kwargs: Any) -> ReconcileRequest:
    return ReconcileRequest.new(vault, secret, now=datetime.now(UTC), reason="test", **kwargs)


async def work(handlers: dict[str, Any], body: str | bytes) -> None:
    result = await handlers["rotate_worker"](queue_message(body))
    assert result is None


async def test_a_due_secret_is_rotated_under_the_lock(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, requests_queue: QueueClient
) -> None:
    secret = await seeded(cloud, expires_in_days=5)
    mark = request_mark(cloud)
    request = request_for("kv-local", secret.name)
    await work(handlers, request.to_json())

    (created,) = rotator_credentials(cloud, secret.object_id)
    assert len(add_password_calls(cloud, mark)) == 1
    (acquired,) = events_named(logs.records, "LockAcquired")
    assert acquired["lockKey"] == f"kv-local/{secret.name.lower()}"
    (completed,) = events_named(logs.records, "WorkerCompleted")
    assert completed["operationId"] == request.operation_id
    assert completed["action"] == "rotated" and completed["state"] == "active"
    assert completed["createdKeyId"] == created["keyId"]
    # The lease is released at the end: the blob can be leased again at once.
    async with foreign_lease(request.lock_key):
        pass


async def test_a_second_delivery_after_the_rotation_changes_nothing(
    cloud: RotatorCloud, handlers: dict[str, Any], requests_queue: QueueClient
) -> None:
    secret = await seeded(cloud, expires_in_days=5)
    body = request_for("kv-local", secret.name).to_json()
    await work(handlers, body)
    mark = request_mark(cloud)
    await work(handlers, body)
    assert len(rotator_credentials(cloud, secret.object_id)) == 1
    assert add_password_calls(cloud, mark) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"definitely not json", "not JSON"),
        (b'{"vault": "kv-local"}', "missing field(s)"),
        (
            b'{"vault":"kv-local","secret":"s","reason":"","mode":"now","operationId":"x","requestedAt":"2025"}',
            "mode",
        ),
        (b"\xff\xfe\x00", "not JSON"),
    ],
)
async def test_a_malformed_message_is_logged_and_completed(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, body: bytes, problem: str
) -> None:
    mark = request_mark(cloud)
    await work(handlers, body)
    (rejected,) = events_named(logs.records, "MessageRejected")
    assert any(problem in p for p in rejected["problems"]), rejected
    assert requests_since(cloud, mark) == []


async def test_a_permanent_error_is_logged_as_rotation_failed_and_completed(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, requests_queue: QueueClient
) -> None:
    unmanaged = unique("unmanaged")
    await write_secret(cloud, "kv-local", unmanaged, "a-value-nobody-manages-1234")
    cases = {
        "NotManaged": request_for("kv-local", unmanaged),
        "SecretNotFound": request_for("kv-local", unique("missing")),
        "UnknownVault": request_for("kv-unlisted", "app-secret"),
    }
    for code, request in cases.items():
        logs.clear()
        await work(handlers, request.to_json())  # completes: no exception
        failed = [f for f in events_named(logs.records, "RotationFailed") if "disposition" in f]
        assert len(failed) == 1 and failed[0]["errorCode"] == code, (code, failed)
        assert failed[0]["operationId"] == request.operation_id
        assert all(r.levelno == logging.ERROR for r in logs.records if r.getMessage().startswith("RotationFailed"))


@pytest.mark.parametrize(("status", "code"), [(503, "ServiceUnavailable"), (429, "Throttled")])
async def test_a_transient_error_raises_so_the_host_retries(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    requests_queue: QueueClient,
    status: int,
    code: str,
) -> None:
    monkeypatch.setenv("ROTATION_THROTTLE_RETRY_SECONDS", "0")  # give up after the first attempt
    monkeypatch.setenv("ROTATION_ORPHAN_MARGIN_MINUTES", "0")
    secret = await seeded(cloud, expires_in_days=5)
    cloud.admin(
        "POST",
        "/faults",
        {"service": "keyvault", "method": "GET", "pathRegex": f"/secrets/{secret.name}/?$", "status": status},
    )
    request = request_for("kv-local", secret.name)
    with pytest.raises(RotationRetry, match=code):
        await work(handlers, request.to_json())
    (retrying,) = events_named(logs.records, "RotationRetrying")
    assert retrying["errorCode"] == code and retrying["operationId"] == request.operation_id
    assert rotator_credentials(cloud, secret.object_id) == []
    # The next delivery (the fault was a one-off) converges, once the 429's Retry-After has passed:
    # until then every caller in the process honours it (the throttle gate).
    await asyncio.sleep(GATE.closed_for(f"{keyvault.SERVICE} kv-local"))
    await work(handlers, request.to_json())
    assert len(rotator_credentials(cloud, secret.object_id)) == 1


async def test_a_locked_secret_is_deferred_by_re_enqueueing_the_same_request(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, requests_queue: QueueClient
) -> None:
    secret = await seeded(cloud, expires_in_days=5)
    request = request_for("kv-local", secret.name, mode="emergency")
    async with foreign_lease(request.lock_key):
        mark = request_mark(cloud)
        await work(handlers, request.to_json())  # completes without touching the secret
        assert requests_since(cloud, mark, "graph") == []
        assert requests_since(cloud, mark, "keyvault") == []
        (deferred,) = events_named(logs.records, "RotationDeferred")
        assert deferred["delaySeconds"] == 1 and deferred["operationId"] == request.operation_id
        (message,) = await wait_for_messages(requests_queue, 1)
        assert ReconcileRequest.from_json(message).to_message() == request.to_message()
    await work(handlers, message)
    assert len(rotator_credentials(cloud, secret.object_id)) == 1


async def test_the_deferred_message_is_base64_like_the_hosts(
    cloud: RotatorCloud, handlers: dict[str, Any], requests_queue: QueueClient
) -> None:
    """Read the raw message text: host.json says base64, so that is what the host must find."""
    secret = await seeded(cloud, expires_in_days=5)
    request = request_for("kv-local", secret.name)
    async with foreign_lease(request.lock_key):
        await work(handlers, request.to_json())
    async with QueueClient.from_connection_string(storage_connection(), "rotation-requests") as raw:
        await asyncio.sleep(1.2)
        messages = [m async for m in raw.receive_messages(messages_per_page=32)]
    (message,) = messages
    assert json.loads(base64.b64decode(str(message.content))) == request.to_message()


async def test_a_request_locked_for_hours_is_abandoned_not_deferred_forever(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, requests_queue: QueueClient
) -> None:
    secret = await seeded(cloud, expires_in_days=5)
    old = ReconcileRequest.new("kv-local", secret.name, now=datetime.now(UTC) - timedelta(hours=7), reason="old")
    async with foreign_lease(old.lock_key):
        await work(handlers, old.to_json())
    assert events_named(logs.records, "RotationDeferralAbandoned")
    await asyncio.sleep(1.2)
    assert [m async for m in requests_queue.receive_messages()] == []


@pytest.mark.parametrize("valid", [True, False])
async def test_a_poisoned_message_is_logged_for_the_alert(
    handlers: dict[str, Any], logs: pytest.LogCaptureFixture, valid: bool
) -> None:
    request = request_for("kv-local", "app-secret")
    body = request.to_json() if valid else "garbage\nRotationCompleted {}"
    assert await handlers["rotation_poisoned"](queue_message(body)) is None
    records = [r for r in logs.records if r.getMessage().startswith("RotationPoisoned")]
    assert len(records) == 1 and records[0].levelno == logging.ERROR
    assert "\n" not in records[0].getMessage()
    (poisoned,) = events_named(logs.records, "RotationPoisoned")
    assert (poisoned.get("operationId") == request.operation_id) is valid


async def test_an_unexpected_failure_is_logged_with_the_ids_and_retried(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    requests_queue: QueueClient,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("rotation.service.reconciler.Reconciler.reconcile", broken)
    request = request_for("kv-local", unique("any"))
    with pytest.raises(RuntimeError):
        await work(handlers, request.to_json())
    (retrying,) = events_named(logs.records, "RotationRetrying")
    assert retrying["errorCode"] == "Unexpected" and retrying["operationId"] == request.operation_id
    async with foreign_lease(request.lock_key):  # the lease was released on the way out
        pass


async def test_bad_settings_fail_the_delivery_so_the_message_is_kept(
    handlers: dict[str, Any], logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_VAULTS", "not a vault list!")
    with pytest.raises(SettingsError):
        await work(handlers, request_for("kv-local", "app-secret").to_json())
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert invalid["function"] == "rotate_worker"
