"""Event Grid: Key Vault's ``SecretNearExpiry`` / ``SecretExpired`` become queued reconcile requests.

Annotations are evaluated at import (no ``from __future__ import annotations``): the Python worker
inspects the trigger function's to pick converters.
"""

import logging
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func

from functions.config import EdgeConfig
from functions.host import REQUESTS_QUEUE, STORAGE_CONNECTION, invocation_settings, log_enqueued, new_blueprint
from rotation.domain.events import ACTIONABLE, Ignored, KeyVaultEvent, MalformedEvent, parse_event
from rotation.domain.model import format_utc, new_operation_id
from rotation.observability import event as log_event


def blueprint(config: EdgeConfig) -> func.Blueprint:
    bp = new_blueprint()

    @bp.event_grid_trigger(arg_name="event")
    @bp.queue_output(arg_name="requests", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
    async def on_key_vault_event(event: func.EventGridEvent, requests: func.Out[str]) -> None:
        """Turn a near-expiry/expired event into a queued reconcile request, and nothing more.

        Events are hints: the worker re-reads the secret. So an event of another type (above all
        ``SecretNewVersionCreated``, which our own writes fire), of a vault not in ``ROTATION_VAULTS``
        (matched by host, so an aliased vault gets its events under its alias),
        or one that cannot be parsed is logged and dropped; raising would make Event Grid redeliver it
        for 24 hours to the same verdict. Only a broken configuration raises (Event Grid then retries
        while it is fixed). Both the Event Grid and the CloudEvents schema are accepted.
        """
        payload = event_payload(event)  # certificate events too, when ROTATION_CERTIFICATES is on
        settings = invocation_settings("on_key_vault_event", new_operation_id())
        parsed = parse_event(payload, known_vaults=settings.vaults)
        if isinstance(parsed, KeyVaultEvent) and parsed.about_certificate and not settings.certificates:
            # A managed vault's certificate, but certificates are off here: expected, not a warning.
            reason = "certificate rotation is off (ROTATION_CERTIFICATES)"
            log_event("EventIgnored", eventId=parsed.event_id, eventType=parsed.type, reason=reason)
        elif isinstance(parsed, KeyVaultEvent):
            request = parsed.to_request(config.clock())
            requests.set(request.to_json())
            log_enqueued(request, source="event", **event_facts(parsed))
        else:
            log_dropped(parsed, payload)

    return bp


def event_facts(event: KeyVaultEvent) -> dict[str, Any]:
    return {
        "eventId": event.event_id,
        "eventType": event.type,
        "schema": event.schema,
        "vaultVersion": event.version,
        "expires": format_utc(event.exp) if event.exp else None,
    }


def log_dropped(parsed: Ignored | MalformedEvent, payload: Mapping[str, Any]) -> None:
    """Why an event leads nowhere, at the level it deserves."""
    if isinstance(parsed, Ignored):
        # An actionable type that is still ignored came from a vault this rotator does not manage:
        # a subscription wider than ROTATION_VAULTS, worth a warning.
        unmanaged = parsed.event_type in ACTIONABLE
        log_event(
            "EventFromUnmanagedVault" if unmanaged else "EventIgnored",
            level=logging.WARNING if unmanaged else logging.INFO,
            eventId=parsed.event_id,
            eventType=parsed.event_type,
            reason=parsed.reason,
        )
        return
    log_event(
        "EventMalformed",
        level=logging.WARNING,
        eventId=parsed.event_id,
        problem=parsed.message,
        hint=typeless_event_hint(payload),
    )


# --------------------------------------------------------------------------------------------------
# The trigger's object -> the payload rotation.domain.events.parse_event reads


def event_payload(event: object) -> dict[str, Any]:
    """The event as ``rotation.domain.events.parse_event`` takes it, from either trigger type.

    azure-functions >= 1.25 decodes a CloudEvents delivery (it carries ``specversion``) into
    ``func.CloudEvent`` (``type``, ``source``), even when the parameter is annotated
    ``func.EventGridEvent``; an Event Grid schema delivery becomes ``func.EventGridEvent``
    (``event_type``, ``topic``). Older libraries built an ``EventGridEvent`` from a CloudEvent too,
    losing its type; such an event comes out without ``eventType`` and is reported as malformed
    (see :func:`typeless_event_hint`).
    """
    get_json: Callable[[], Any] | None = getattr(event, "get_json", None)
    data = get_json() if callable(get_json) else None
    if hasattr(event, "specversion"):
        return {
            "specversion": getattr(event, "specversion", None),
            "id": getattr(event, "id", None),
            "source": getattr(event, "source", None),
            "type": getattr(event, "type", None),
            "subject": getattr(event, "subject", None),
            "data": data,
        }
    payload: dict[str, Any] = {
        "id": getattr(event, "id", None),
        "topic": getattr(event, "topic", None),
        "subject": getattr(event, "subject", None),
        "data": data,
    }
    event_type = getattr(event, "event_type", None)
    if event_type is not None:
        payload["eventType"] = event_type
    return payload


def typeless_event_hint(payload: Mapping[str, Any]) -> str | None:
    """Why an event has no type, when the cause is known: an Event Grid envelope without
    ``eventType`` is what an older azure-functions makes of a CloudEvents delivery."""
    if "specversion" in payload or payload.get("eventType") or payload.get("type"):
        return None
    return (
        "the event carries no type; a CloudEvents delivery decoded by an azure-functions library older "
        "than 1.25 looks like this. Set PYTHON_ISOLATE_WORKER_DEPENDENCIES=1 so the worker uses the "
        "app's pinned azure-functions, or subscribe with the Event Grid schema"
    )
