"""Lifecycle events for subscribers: CloudEvents 1.0 published to an Event Grid topic with the
rotator's managed identity (role "EventGrid Data Sender" on the topic), never a shared key.

What is published is what was logged (``rotation.observability.collecting_lifecycle``): ids, keyIds,
versions, dates and codes, scrubbed once more by the redaction registry. Publishing never fails an
invocation: a topic that refuses or is down costs a warning (``EventPublishFailed``), and the log
lines remain the record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.core.messaging import CloudEvent
from azure.eventgrid.aio import EventGridPublisherClient

from rotation.observability import event
from rotation.redact import registry

#: CloudEvent ``type`` prefix: subscribers filter on ``Rotator.RotationCompleted`` and so on.
TYPE_PREFIX: Final = "Rotator."
SOURCE: Final = "/rotation"


def cloud_event(name: str, facts: dict[str, Any]) -> CloudEvent[dict[str, str]]:
    """The CloudEvent of one logged lifecycle event (a ``RotationFailed`` for ``NotBound`` is ``NotBound``)."""
    kind = "NotBound" if name == "RotationFailed" and facts.get("errorCode") == "NotBound" else name
    data = {key: registry.scrub(str(value)) for key, value in facts.items()}
    vault, secret = facts.get("vault"), facts.get("secret")
    subject = f"{vault}/{secret}" if vault and secret else None
    return CloudEvent(source=SOURCE, type=TYPE_PREFIX + kind, data=data, subject=subject)


async def publish(endpoint: str, credential: AsyncTokenCredential, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Publish ``events`` to the topic at ``endpoint`` in one batch; the number published (0 on failure)."""
    if not events:
        return 0
    batch = [cloud_event(name, facts) for name, facts in events]
    try:
        async with EventGridPublisherClient(endpoint, credential) as client:
            await client.send(batch)
    except (AzureError, OSError) as error:
        event("EventPublishFailed", level=logging.WARNING, events=len(batch), error=type(error).__name__)
        return 0
    return len(batch)
