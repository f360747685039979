"""Host glue: the names the bindings share, host.json, the requests queue, settings per invocation.

Nothing here performs I/O at import: :func:`invocation_settings` reads the environment when a function
runs, so a bad setting fails one invocation with a clear message instead of the whole app at start-up.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Final

import azure.functions as func

from rotation.domain.errors import SettingsError
from rotation.domain.model import ReconcileRequest
from rotation.hosting import STORAGE_CONNECTION as STORAGE_SETTING_NAME
from rotation.hosting import MessageEncoding
from rotation.observability import event as log_event
from rotation.settings import Settings

# --------------------------------------------------------------------------------------------------
# Names shared by the bindings and the code that talks to the same resources directly

#: The queue every trigger feeds and the worker drains (DESIGN.md, "Flow").
REQUESTS_QUEUE: Final = "rotation-requests"
#: Where the host moves a message after host.json's ``maxDequeueCount`` failed attempts.
POISON_QUEUE: Final = f"{REQUESTS_QUEUE}-poison"
#: The app setting (or ``__``-prefixed setting collection) naming the host's storage account.
STORAGE_CONNECTION: Final = STORAGE_SETTING_NAME
#: ``extensions.http.routePrefix`` in host.json.
ROUTE_PREFIX: Final = "api"


def new_blueprint() -> func.Blueprint:
    """An empty Blueprint for one trigger family (azure-functions leaves its ``__init__`` untyped)."""
    return func.Blueprint()  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------------------------------
# Settings, once per invocation

# Warnings already logged by this process: a setting's warning is worth one line, not one per call.
_warned: set[str] = set()


def invocation_settings(function: str, operation_id: str) -> Settings:
    """Read the settings for this invocation; a bad one is logged with every problem and re-raised."""
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        log_event(
            "SettingsInvalid",
            level=logging.ERROR,
            function=function,
            operationId=operation_id,
            problems=list(error.problems),
        )
        raise
    for warning in settings.warnings:
        if warning not in _warned:
            _warned.add(warning)
            log_event("SettingsWarning", level=logging.WARNING, warning=warning)
    return settings


# --------------------------------------------------------------------------------------------------
# Queue messages: the encoding the host decodes


def message_encoding(host_json: Path) -> MessageEncoding:
    """``extensions.queues.messageEncoding`` from host.json (the host's default is base64).

    A message this app writes itself (a deferral) must be encoded the way the host decodes the
    ones it triggers on, or the worker would see base64 text instead of JSON.
    """
    try:
        config = json.loads(host_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "base64"
    queues = config.get("extensions", {}).get("queues", {}) if isinstance(config, dict) else {}
    value = queues.get("messageEncoding", "base64") if isinstance(queues, dict) else "base64"
    return "none" if isinstance(value, str) and value.lower() == "none" else "base64"


# --------------------------------------------------------------------------------------------------
# Logging helpers


def request_dims(request: ReconcileRequest) -> dict[str, Any]:
    """The dimensions every log line about one request carries, so its story can be queried."""
    return {
        "operationId": request.operation_id,
        "vault": request.vault,
        "secret": request.secret,
        "mode": request.mode,
    }


def log_enqueued(request: ReconcileRequest, *, source: str, **facts: Any) -> None:
    log_event("RotationEnqueued", source=source, reason=request.reason, **request_dims(request), **facts)


def loggable_body(body: bytes, limit: int = 2048) -> str:
    """A queue message body for a log line: decoded leniently, one line, bounded. Messages never
    hold secret values (they are ReconcileRequests), but their content is untrusted input."""
    text = body[:limit].decode("utf-8", errors="replace")
    flat = json.dumps(text)[1:-1]  # escapes newlines and control characters: no forged log lines
    return flat + ("..." if len(body) > limit else "")
