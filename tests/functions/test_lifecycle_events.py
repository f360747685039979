"""Lifecycle events for subscribers: with `ROTATION_EVENTS_TOPIC` set, what the worker and the sweep
log as lifecycle events is published to the Event Grid topic as CloudEvents 1.0, by the real
`azure-eventgrid` SDK with the rotator's managed identity ("EventGrid Data Sender" on the topic),
never carrying a secret value; a topic that refuses costs a warning, never the invocation (issue 13)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import ReconcileRequest
from tests.functions.harness import Collector, events_named, queue_message
from tests.integration.reconcile_helpers import issued_secrets
from tests.integration.seed import seed_managed_secret

TOPIC = "rotation-events"
# The worker holds the blob lease (Azurite); one token success proves a value.
pytestmark = [pytest.mark.azurite, pytest.mark.usefixtures("azurite", "fast_settings")]


@pytest.fixture
def topic_cloud(private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    cloud = private_cloud()
    for key, value in cloud.env.items():
        monkeypatch.setenv(key, value)
    cloud.create_topic(TOPIC)
    cloud.assign_topic_role(TOPIC, cloud.rotator.sp_object_id)
    monkeypatch.setenv("ROTATION_EVENTS_TOPIC", cloud.topic_url(TOPIC))
    return cloud


def request_for(vault: str, secret: str) -> ReconcileRequest:
    return ReconcileRequest.new(vault, secret, now=datetime.now(UTC), reason="test")


async def test_a_rotation_and_a_refusal_are_published_as_cloud_events_without_secrets(
    topic_cloud: RotatorCloud, handlers: dict[str, Any]
) -> None:
    due = await asyncio.to_thread(seed_managed_secret, topic_cloud, expires_in_days=5)
    unbound = await asyncio.to_thread(seed_managed_secret, topic_cloud, expires_in_days=5, bound=False)

    await handlers["rotate_worker"](queue_message(request_for("kv-local", due.name).to_json()))
    await handlers["rotate_worker"](queue_message(request_for("kv-local", unbound.name).to_json()))

    published = topic_cloud.published_events(TOPIC)
    by_type = {e["type"]: e for e in published}
    completed = by_type["Rotator.RotationCompleted"]
    assert completed["specversion"] == "1.0" and completed["source"] == "/rotation"
    assert completed["subject"] == f"kv-local/{due.name}" and completed["data"]["action"] == "rotated"
    assert by_type["Rotator.NotBound"]["subject"] == f"kv-local/{unbound.name}"
    text = json.dumps(published)
    assert all(value not in text for value in issued_secrets(topic_cloud) if len(value) > 8)


async def test_the_sweep_publishes_expiry_warnings(topic_cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    expiring = await asyncio.to_thread(seed_managed_secret, topic_cloud, expires_in_days=3)
    out: Collector[list[str]] = Collector()

    await handlers["sweep"](func.timer.TimerRequest(past_due=False), out)

    types = [(e["type"], e["subject"]) for e in topic_cloud.published_events(TOPIC)]
    assert ("Rotator.CredentialExpiring", f"kv-local/{expiring.name}") in types


async def test_a_topic_that_refuses_costs_a_warning_not_the_rotation(
    topic_cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    topic_cloud.admin(
        "DELETE",
        f"/topics/{TOPIC}/role-assignments",
        {"objectId": topic_cloud.rotator.sp_object_id, "role": "EventGrid Data Sender"},
    )
    due = await asyncio.to_thread(seed_managed_secret, topic_cloud, expires_in_days=5)

    await handlers["rotate_worker"](queue_message(request_for("kv-local", due.name).to_json()))

    assert events_named(logs.records, "RotationCompleted")
    (failed,) = events_named(logs.records, "EventPublishFailed")
    assert failed["events"] >= 1
    assert topic_cloud.published_events(TOPIC) == []
