"""No secret value in any log line, HTTP body or queue message the function app produces.

One scenario drives every function (HTTP rotate and status, list, events, sweep, the worker through
a rotation, an emergency rotation and a rolled-back validation) while capturing everything at DEBUG;
then every value the local Entra ever issued, and every seeded one, is searched for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue.aio import QueueClient

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from tests.functions.harness import (
    SHORT_LOCK,
    Collector,
    assert_nothing_contains,
    events_named,
    http_request,
    issued_secrets,
    key_vault_event,
    queue_message,
    receive_all,
)
from tests.integration.seed import seed_managed_secret

pytestmark = [pytest.mark.azurite, pytest.mark.usefixtures("azurite", "fast_settings")]


@pytest.fixture
def edge_config() -> EdgeConfig:
    """A 15-second lease and one-second deferrals, so a deferred message comes back within the test."""
    return SHORT_LOCK


async def test_no_value_leaves_the_vault_path(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    requests_queue: QueueClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="rotation")
    normal = await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=10)  # due
    urgent = await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=60)  # forced
    doomed = await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=5)
    bodies: list[str] = []
    messages: list[str] = []

    async def call_http(name: str, req: func.HttpRequest, *outputs: Collector[Any]) -> None:
        response = await handlers[name](req, *outputs)
        bodies.append(response.get_body().decode())
        bodies.append(repr(dict(response.headers)))

    async def work(body: str) -> None:
        messages.append(body)
        await handlers["rotate_worker"](queue_message(body))

    # Operators ask for two rotations, one of them an emergency; the worker carries them out.
    for secret, emergency in ((normal, False), (urgent, True)):
        out: Collector[str] = Collector()
        req = http_request(
            "POST",
            f"/api/secrets/kv-local/{secret.name}/rotate",
            route_params={"vault": "kv-local", "name": secret.name},
            body={"reason": "scheduled drill", "emergency": emergency},
        )
        await call_http("rotate_secret", req, out)
        for message in out.messages():
            await work(message)

    # Validation that can never succeed (propagation outlasts the deadline) is rolled back.
    cloud.admin("PUT", "/config", {"propagationSeconds": 3600})
    monkeypatch.setenv("ROTATION_VALIDATION_DEADLINE_SECONDS", "5")
    event_out: Collector[str] = Collector()
    await handlers["on_key_vault_event"](
        key_vault_event("kv-local", doomed.name, doomed.version, vault_url=cloud.vault_url("kv-local")), event_out
    )
    for message in event_out.messages():
        await work(message)
    assert events_named(caplog.records, "RotationFailed"), "the rollback path did not run"
    cloud.admin("PUT", "/config", {"propagationSeconds": 0})

    # Status, list and a sweep read everything back.
    for secret in (normal, urgent, doomed):
        req = http_request(
            "GET", f"/api/secrets/kv-local/{secret.name}", route_params={"vault": "kv-local", "name": secret.name}
        )
        await call_http("secret_status", req)
    await call_http("list_secrets", http_request("GET", "/api/secrets"))
    sweep_out: Collector[list[str]] = Collector()
    await handlers["sweep"](func.timer.TimerRequest(past_due=False), sweep_out)
    messages.extend(sweep_out.messages())
    messages.extend(await receive_all(requests_queue))  # anything a deferral put back

    completed = events_named(caplog.records, "WorkerCompleted")
    assert {c["action"] for c in completed} >= {"rotated"}, completed
    assert sorted(c["action"] for c in completed if c["action"] == "rotated") == ["rotated", "rotated"]
    values = issued_secrets(cloud)
    assert {normal.value, urgent.value, doomed.value} <= set(values)
    assert len(values) >= 6  # three seeded, two rotated, one rolled back
    log_text = [caplog.text, *(r.getMessage() for r in caplog.records)]
    log_text += [str(getattr(r, "custom_dimensions", "")) for r in caplog.records]
    assert_nothing_contains([*log_text, *bodies, *messages], values)
