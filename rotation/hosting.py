"""Names and limits of the function host's storage that the Functions edge needs at import time.

The edge (``functions/``) is imported by the Functions host on every cold start to index the app, so
it must not import the clients behind these names (the blob and queue SDKs, msgraph-sdk): those load
on the first invocation that uses them, through :func:`open_runtime_lazily`. The storage adapters
(``rotation.adapters.storage``, ``rotation.adapters.locks``) take their names from here.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from rotation.runtime import Runtime
    from rotation.settings import Settings

#: The app setting (or ``__``-prefixed setting collection) naming the host's storage account.
STORAGE_CONNECTION: Final = "AzureWebJobsStorage"

#: How the host encodes queue messages (host.json ``extensions.queues.messageEncoding``).
MessageEncoding = Literal["base64", "none"]

#: Lease period of the per-secret blob lock, in seconds (Azure Storage grants 15-60).
DEFAULT_LEASE_SECONDS: Final = 60


def open_runtime_lazily(settings: Settings) -> AbstractAsyncContextManager[Runtime]:
    """``rotation.runtime.open_runtime``, imported on first use: a cold start that serves an Event
    Grid event or an HTTP request never loads the Graph SDK or the storage clients it does not use."""
    from rotation.runtime import open_runtime

    return open_runtime(settings)


async def publish_lifecycle(settings: Settings, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish an invocation's lifecycle events when ``ROTATION_EVENTS_TOPIC`` names a topic (the
    Event Grid SDK loads only then, on first use)."""
    if settings.events_topic is None or not events:
        return
    from rotation.runtime import publish_events

    try:
        await publish_events(settings.events_topic, events)
    except Exception as error:  # whatever the SDK raises, the invocation's own outcome stands
        from rotation.observability import event

        event("EventPublishFailed", level=logging.WARNING, events=len(events), error=type(error).__name__)
