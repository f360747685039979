"""At-least-once delivery: the same Key Vault event, delivered five times at once, rotates once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.storage.queue.aio import QueueClient

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from rotation.domain.model import ReconcileRequest
from tests.functions.harness import (
    SHORT_LOCK,
    Collector,
    add_password_calls,
    events_named,
    key_vault_event,
    queue_message,
    receive_all,
    request_mark,
    requests_since,
    rotator_credentials,
)
from tests.integration.seed import seed_managed_secret

pytestmark = [pytest.mark.azurite, pytest.mark.usefixtures("azurite")]


@pytest.fixture
def edge_config() -> EdgeConfig:
    """A 15-second lease and one-second deferrals, so a deferred message comes back within the test."""
    return SHORT_LOCK


async def test_five_concurrent_deliveries_of_one_event_make_one_new_credential(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    requests_queue: QueueClient,
    monkeypatch: pytest.MonkeyPatch,
    logs: pytest.LogCaptureFixture,
) -> None:
    cloud.admin("PUT", "/config", {"propagationSeconds": 2})
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "2")
    secret = await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=5)
    event = key_vault_event(
        "kv-local",
        secret.name,
        secret.version,
        event_id="5d4c3b2a-1000-4000-8000-00000000abcd",
        vault_url=cloud.vault_url("kv-local"),
    )
    mark = request_mark(cloud)

    # Event Grid delivers the same event five times, concurrently (a slow ack, retries).
    outs: list[Collector[str]] = [Collector() for _ in range(5)]
    await asyncio.gather(*(handlers["on_key_vault_event"](event, out) for out in outs))
    messages = [m for out in outs for m in out.messages()]
    assert len(messages) == 5
    assert {ReconcileRequest.from_json(m).operation_id for m in messages} == {event.id}

    # Five workers pick them up at once; the lease lets one through, the others defer.
    async def deliver(body: str) -> None:
        assert await handlers["rotate_worker"](queue_message(body)) is None

    await asyncio.gather(*(deliver(m) for m in messages))
    assert len(events_named(logs.records, "LockAcquired")) == 1
    assert len(events_named(logs.records, "RotationDeferred")) == 4

    # Deferred deliveries come back until the queue is empty; none of them rotates again.
    for _ in range(20):
        await asyncio.sleep(1.2)
        bodies = await receive_all(requests_queue)
        if not bodies:
            break
        await asyncio.gather(*(deliver(b) for b in bodies))
    else:
        pytest.fail("deferred deliveries kept coming back")

    completed = events_named(logs.records, "WorkerCompleted")
    assert len(completed) == 5, "every delivery completed exactly once"
    assert sorted(c["action"] for c in completed) == ["none", "none", "none", "none", "rotated"]
    assert len(rotator_credentials(cloud, secret.object_id)) == 1
    assert len(add_password_calls(cloud, mark)) == 1
    # One new version (PUT), proven before it was written, so active at once: nothing twice.
    writes = [
        (r["method"], r["status"])
        for r in requests_since(cloud, mark, "keyvault")
        if r["method"] in ("PUT", "PATCH") and f"/secrets/{secret.name}" in r["path"]
    ]
    assert sorted(m for m, status in writes if status == 200) == ["PUT"], writes
