"""The per-secret blob lease, end to end: the queue worker against Azurite and the local cloud.

Two workers on one secret rotate it once; the lease outlives its 15-second period while validation
waits (it is renewed); a crashed holder's lease lapses and the deferred request then goes through.
Assertions count requests and credentials, not wall-clock time, except where expiry *is* the point.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient
from azure.storage.queue.aio import QueueClient

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from rotation.domain.errors import LockHeld
from rotation.domain.model import ReconcileRequest
from rotation.runtime import open_runtime
from tests.functions.harness import (
    add_password_calls,
    app_handlers,
    events_named,
    foreign_lease,
    queue_message,
    receive_all,
    request_mark,
    rotator_credentials,
    storage_connection,
    wait_for_messages,
)
from tests.integration.seed import SeededSecret, seed_managed_secret

pytestmark = pytest.mark.azurite

LEASE_SECONDS = 15  # the shortest lease Azure Storage grants


@pytest.fixture
def worker(azurite: Any) -> Any:
    handler = app_handlers(EdgeConfig(lock_lease_seconds=LEASE_SECONDS, defer_delay_seconds=1))["rotate_worker"]

    async def run(body: str) -> None:
        assert await handler(queue_message(body)) is None

    return run


async def seeded(cloud: RotatorCloud) -> SeededSecret:
    return await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=5)


def request_for(secret: SeededSecret, reason: str) -> ReconcileRequest:
    return ReconcileRequest.new(secret.vault, secret.name, now=datetime.now(UTC), reason=reason)


async def test_two_workers_on_the_same_secret_rotate_it_once(
    cloud: RotatorCloud,
    worker: Any,
    requests_queue: QueueClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="rotation")  # whatever an earlier in-process CLI run left
    # Validation waits out a few seconds of propagation, so the two reconciles would overlap.
    cloud.admin("PUT", "/config", {"propagationSeconds": 3})
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "2")
    secret = await seeded(cloud)
    mark = request_mark(cloud)

    await asyncio.gather(worker(request_for(secret, "sweep").to_json()), worker(request_for(secret, "http").to_json()))

    assert len(add_password_calls(cloud, mark)) == 1
    assert len(rotator_credentials(cloud, secret.object_id)) == 1
    assert len(events_named(caplog.records, "LockAcquired")) == 1
    assert len(events_named(caplog.records, "RotationDeferred")) == 1
    (completed,) = events_named(caplog.records, "WorkerCompleted")
    assert completed["action"] == "rotated"

    # The deferred request comes back and finds nothing left to do.
    (deferred,) = await wait_for_messages(requests_queue, 1)
    caplog.clear()
    await worker(deferred)
    (again,) = events_named(caplog.records, "WorkerCompleted")
    assert again["action"] == "none"
    assert len(add_password_calls(cloud, mark)) == 1


async def test_the_lease_is_renewed_while_validation_outlasts_it(
    cloud: RotatorCloud,
    worker: Any,
    requests_queue: QueueClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Validation takes ~23 s against a 15 s lease. Each of the three token requests it needs is held
    7 s by the local Entra (a delay fault), which makes the duration deterministic; propagation
    delays are random per replica and could let validation finish before the lease period."""
    caplog.set_level("INFO", logger="rotation")  # whatever an earlier in-process CLI run left
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "3")
    monkeypatch.setenv("ROTATION_VALIDATION_DEADLINE_SECONDS", "60")
    secret = await seeded(cloud)
    cloud.admin(
        "POST",
        "/faults",
        {"service": "entra", "method": "POST", "pathRegex": "/oauth2/v2.0/token$", "delayMs": 7000, "count": 3},
    )
    request = request_for(secret, "long validation")
    task = asyncio.create_task(worker(request.to_json()))
    for _ in range(100):
        if events_named(caplog.records, "LockAcquired"):
            break
        await asyncio.sleep(0.1)
    acquired_at = time.monotonic()
    assert events_named(caplog.records, "LockAcquired"), "the worker never took the lease"

    await asyncio.sleep(LEASE_SECONDS + 2 - (time.monotonic() - acquired_at))
    assert not task.done(), "validation finished before the lease period; the test proves nothing"
    async with BlobServiceClient.from_connection_string(storage_connection()) as service:
        blob = service.get_blob_client("rotation-locks", request.lock_key)
        properties = await blob.get_blob_properties()
        assert properties.lease.state == "leased"
        with pytest.raises(HttpResponseError) as taken:
            await BlobLeaseClient(blob).acquire(lease_duration=LEASE_SECONDS)
        assert taken.value.status_code == 409

    await task
    (completed,) = events_named(caplog.records, "WorkerCompleted")
    assert completed["action"] == "rotated" and completed["state"] == "active"
    assert completed["leaseRenewals"] >= 3
    assert not events_named(caplog.records, "RotationRetrying")
    assert len(rotator_credentials(cloud, secret.object_id)) == 1
    # Released at the end, not left to expire.
    async with foreign_lease(request.lock_key, LEASE_SECONDS):
        pass


async def test_a_crashed_holders_lease_expires_and_the_deferred_request_proceeds(
    cloud: RotatorCloud, worker: Any, requests_queue: QueueClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="rotation")  # whatever an earlier in-process CLI run left
    secret = await seeded(cloud)
    request = request_for(secret, "after a crash")
    mark = request_mark(cloud)
    # A worker took the lease and died: nobody renews or releases it.
    async with foreign_lease(request.lock_key, LEASE_SECONDS, release=False):
        crashed_at = time.monotonic()

    await worker(request.to_json())
    assert len(events_named(caplog.records, "RotationDeferred")) == 1
    assert add_password_calls(cloud, mark) == []

    # Each delivery of the deferred request either defers again or, once the lease lapsed, rotates.
    for _ in range(30):
        (body,) = await wait_for_messages(requests_queue, 1)
        await worker(body)
        if events_named(caplog.records, "WorkerCompleted"):
            break
    else:
        pytest.fail("the deferred request never got the lock")
    assert time.monotonic() - crashed_at >= LEASE_SECONDS - 1
    deferrals = len(events_named(caplog.records, "RotationDeferred"))
    assert deferrals >= 2
    (completed,) = events_named(caplog.records, "WorkerCompleted")
    assert completed["action"] == "rotated" and completed["operationId"] == request.operation_id
    assert len(add_password_calls(cloud, mark)) == 1
    assert await receive_all(requests_queue) == []


async def test_the_runtime_hands_out_the_blob_lease_as_a_releasable_lock(cloud: RotatorCloud, azurite: Any) -> None:
    """`Runtime.open_lock` is the worker's lock through the ports: a second holder is refused at
    once, and the key is free again after the first one's block ends."""
    key = "kv-test/open-lock"
    async with open_runtime() as runtime:
        first, second = runtime.open_lock(), runtime.open_lock()
        try:
            async with first.hold(key) as held:
                assert held.key == key and not held.lost
                with pytest.raises(LockHeld):
                    async with second.hold(key):
                        pass
            async with second.hold(key) as again:
                assert again.key == key
        finally:
            await first.close()
            await second.close()
