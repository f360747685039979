"""Helpers for ``function_app.py``: input validation, caller roles, event payloads, retry decisions.

The function app stays "triggers only": it turns a trigger's input into a call into ``rotation``
and the result into a trigger's output. Everything that needs a decision lives here, free of
Azure Functions imports (a trigger object is read by attribute name), so it is unit-tested without
a host and ``rotation/`` keeps knowing nothing of the host beyond the names of its settings.
Nothing here performs I/O; :func:`queue_client_from_env` only *builds* a client.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from rotation.domain.errors import RotationError, SettingsError
from rotation.domain.model import (
    REASON_MAX,
    SECRET_NAME_RULE,
    Outcome,
    ReconcileRequest,
    is_valid_secret_name,
)

# --------------------------------------------------------------------------------------------------
# Names shared by the bindings and the code that talks to the same resources directly

#: The queue every trigger feeds and the worker drains (DESIGN.md, "Flow").
REQUESTS_QUEUE: Final = "rotation-requests"
#: Where the host moves a message after host.json's ``maxDequeueCount`` failed attempts.
POISON_QUEUE: Final = f"{REQUESTS_QUEUE}-poison"
#: The app setting (or ``__``-prefixed setting collection) naming the host's storage account.
STORAGE_CONNECTION: Final = "AzureWebJobsStorage"
#: ``extensions.http.routePrefix`` in host.json.
ROUTE_PREFIX: Final = "api"

ROLE_CLAIM_TYPES: Final = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
_OBJECT_ID_CLAIMS: Final = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_APP_ID_CLAIMS: Final = ("appid", "azp")
CLIENT_PRINCIPAL_HEADER: Final = "X-MS-CLIENT-PRINCIPAL"
#: Far above any real principal (a few KB with many groups); larger is refused before decoding.
_PRINCIPAL_MAX: Final = 64 * 1024


# --------------------------------------------------------------------------------------------------
# HTTP: errors and replies


class ApiError(Exception):
    """An HTTP answer other than success, raised anywhere in a handler and shaped at the edge."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Reply:
    """What an HTTP handler answers, before it becomes a ``func.HttpResponse``."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    # A document that is not JSON (the inventory page): sent as is, with its own media type.
    document: str | None = None
    mimetype: str = "application/json"

    def to_json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=False)

    def payload(self) -> str:
        return self.document if self.document is not None else self.to_json()


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape of the HTTP API: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


def error_reply(error: ApiError) -> Reply:
    return Reply(error.status, error_body(error.code, error.message), error.headers)


def internal_error_reply(operation_id: str) -> Reply:
    """A 500 that says where to look (the operation id in the logs) and nothing about the cause:
    exception text can carry anything, so it goes to the log, never to the caller."""
    return Reply(
        500,
        error_body(
            "InternalError",
            f"The rotator failed unexpectedly; search the logs for operation id {operation_id}.",
        ),
        {"x-ms-operation-id": operation_id},
    )


#: ``Retry-After`` of a 503 (a transient failure: throttling, a service not answering).
RETRY_AFTER_SECONDS: Final = 30


def api_error_from(error: RotationError) -> ApiError:
    """Turn a rotation error into an HTTP error; its message is actionable and holds no value."""
    status = error.http_status
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return ApiError(status, error.code, error.message, headers)


# --------------------------------------------------------------------------------------------------
# HTTP: input


@dataclass(frozen=True)
class RotateCommand:
    """The body of ``POST /api/secrets/{vault}/{name}/rotate``."""

    reason: str
    emergency: bool = False

    @property
    def mode(self) -> Literal["forced", "emergency"]:
        # POST .../rotate always rotates now; "emergency" also retires the old credential at once.
        return "emergency" if self.emergency else "forced"


_ROTATE_FIELDS: Final = ("reason", "emergency")
#: A body larger than this is not a reason and an emergency flag.
BODY_MAX: Final = 8 * 1024


def parse_rotate_body(body: bytes) -> RotateCommand:
    """Validate the rotate body strictly: a JSON object with a ``reason`` (1-500 printable
    characters) and an optional boolean ``emergency``; anything else is a 400 listing every problem."""
    if len(body) > BODY_MAX:
        raise ApiError(413, "BodyTooLarge", f"The request body must be at most {BODY_MAX} bytes.")
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "BadRequest",
            'The request body must be a JSON object like {"reason": "why", "emergency": false}.',
        )
    problems: list[str] = []
    unknown = sorted(str(k) for k in data if k not in _ROTATE_FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown)}")
    reason = data.get("reason")
    if reason is None:
        problems.append("'reason' is required: say why the secret must be rotated")
    elif not isinstance(reason, str):
        problems.append(f"'reason' must be a string, got {_json_type(reason)}")
    elif not reason.strip():
        problems.append("'reason' must not be empty")
    elif len(reason) > REASON_MAX:
        problems.append(f"'reason' is {len(reason)} characters; at most {REASON_MAX} are allowed")
    elif not reason.isprintable():
        # A control character in a reason would let a caller forge log lines.
        problems.append("'reason' must be printable text on one line")
    emergency = data.get("emergency", False)
    if not isinstance(emergency, bool):
        problems.append(f"'emergency' must be true or false, got {_json_type(emergency)}")
    if problems:
        raise ApiError(400, "BadRequest", "Invalid rotate request: " + "; ".join(problems) + ".")
    assert isinstance(reason, str) and isinstance(emergency, bool)
    return RotateCommand(reason=reason.strip(), emergency=emergency)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def require_vault(vault: str, configured: Collection[str]) -> str:
    """The configured vault's canonical (lower-case) name, or a 404 that does not list the others:
    the vault list is configuration, not something an HTTP caller needs to learn."""
    key = vault.strip().lower()
    if key not in configured:
        raise ApiError(404, "UnknownVault", f"Vault '{vault[:40]}' is not managed by this rotator.")
    return key


def require_secret_name(name: str) -> str:
    if not is_valid_secret_name(name):
        raise ApiError(400, "BadRequest", f"'{name[:40]}' is not a Key Vault secret name ({SECRET_NAME_RULE}).")
    return name


def status_path(vault: str, secret: str) -> str:
    return f"/{ROUTE_PREFIX}/secrets/{quote(vault, safe='')}/{quote(secret, safe='')}"


def status_url(request_url: str, vault: str, secret: str) -> str:
    """Absolute URL of the secret's status, on the host the caller used (behind a proxy this is
    what the platform forwarded; a relative ``Location`` would be valid too)."""
    parts = urlsplit(request_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return origin + status_path(vault, secret)


# --------------------------------------------------------------------------------------------------
# HTTP: the caller (App Service authentication)


@dataclass(frozen=True)
class Caller:
    """Who called, as far as the platform told us. ``authenticated`` is False with a function key only."""

    authenticated: bool
    identity: str | None = None
    auth_type: str | None = None
    roles: frozenset[str] = frozenset()

    def describe(self) -> str:
        if not self.authenticated:
            return "function key"
        return f"{self.auth_type or 'principal'}:{self.identity or 'unknown'}"


def parse_client_principal(header: str) -> Caller:
    """Decode ``X-MS-CLIENT-PRINCIPAL``: base64 of ``{"auth_typ", "claims": [{"typ", "val"}],
    "name_typ", "role_typ"}``. Raises ``ValueError`` saying what is wrong.

    Role claims are those typed ``roles``, the WS-Federation role URI, or whatever ``role_typ``
    names; App Service maps claim names, so all three occur.
    """
    text = header.strip()
    if not text:
        raise ValueError("the header is empty")
    if len(text) > _PRINCIPAL_MAX:
        raise ValueError("the header is too large")
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("the header is not base64-encoded JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the decoded header is not a JSON object")
    claims = payload.get("claims")
    if not isinstance(claims, list):
        raise ValueError("the decoded header has no 'claims' array")
    role_types = set(ROLE_CLAIM_TYPES)
    role_typ = payload.get("role_typ")
    if isinstance(role_typ, str) and role_typ:
        role_types.add(role_typ)
    roles: set[str] = set()
    values: dict[str, str] = {}
    for claim in claims:
        if not isinstance(claim, dict):
            raise ValueError("a claim is not an object with 'typ' and 'val'")
        typ, val = claim.get("typ"), claim.get("val")
        if not isinstance(typ, str) or not isinstance(val, str):
            raise ValueError("a claim lacks a string 'typ' or 'val'")
        if typ in role_types:
            roles.add(val)
        values.setdefault(typ, val)
    identity = next((values[c] for c in (*_OBJECT_ID_CLAIMS, *_APP_ID_CLAIMS) if c in values), None)
    auth_type = payload.get("auth_typ")
    return Caller(
        authenticated=True,
        identity=identity,
        auth_type=auth_type if isinstance(auth_type, str) else None,
        roles=frozenset(roles),
    )


def authorize_operator(headers: Mapping[str, str], role: str) -> Caller:
    """Allow an emergency-capable operation.

    - Header present (App Service authentication is on and the platform vouches for the caller):
      the caller must hold the app role ``role`` (``ROTATION_OPERATOR_ROLE``), else 403. A header
      that cannot be read is a 403 too: failing open on a garbled identity would be worse.
    - Header absent: App Service authentication is off, and the function key (auth level
      FUNCTION) is the only gate; whoever holds the key is an operator. Without platform
      authentication a client could also *send* the header itself, but that gains nothing the key
      does not already grant, so the check stays sound.
    """
    header = _header(headers, CLIENT_PRINCIPAL_HEADER)
    if header is None:
        return Caller(authenticated=False)
    try:
        caller = parse_client_principal(header)
    except ValueError as exc:
        raise ApiError(
            403, "Forbidden", f"The caller's identity ({CLIENT_PRINCIPAL_HEADER}) could not be read: {exc}."
        ) from None
    if role not in caller.roles:
        raise ApiError(
            403,
            "Forbidden",
            f"The caller lacks the app role '{role}' required to rotate secrets; ask an administrator to "
            "assign it on the rotator's app registration (Enterprise applications > Users and groups).",
        )
    return caller


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # func.HttpRequest headers are case-insensitive already; a plain dict (tests, other hosts) is not.
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


# --------------------------------------------------------------------------------------------------
# Event Grid: the trigger's object -> the payload rotation.domain.events.parse_event reads


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


# --------------------------------------------------------------------------------------------------
# Queue worker: what to do with an outcome


class Disposition(StrEnum):
    """What the worker does with the queue message after a reconcile."""

    DONE = "done"  # succeeded: complete the message
    GIVE_UP = "give_up"  # failed for good: log RotationFailed, complete the message
    RETRY = "retry"  # may succeed later: raise, the host redelivers (poison after maxDequeueCount)


def disposition(outcome: Outcome) -> Disposition:
    """Decide the queue message's fate from the reconcile outcome: done on success; otherwise the
    error's own ``retryable`` decides between a redelivery (the poison queue keeps the message after
    ``maxDequeueCount`` attempts) and giving up (see ``rotation.domain.errors`` for each code's why)."""
    if outcome.error_code is None:
        return Disposition.DONE
    return Disposition.RETRY if outcome.retryable else Disposition.GIVE_UP


# --------------------------------------------------------------------------------------------------
# Queue worker: deferring a message whose secret is locked elsewhere

#: A request whose secret stayed locked this long is dropped (with an error log) instead of deferred
#: again. A lease outliving every reconcile (functionTimeout) can only be a manual infinite lease;
#: the sweep re-creates the work once that is released.
DEFER_MAX_AGE: Final = timedelta(hours=6)


def defer_delay_seconds(lease_seconds: int, *, rng: random.Random | None = None) -> int:
    """How long the re-enqueued message stays invisible: one lease period (a crashed holder's lease
    has expired by then; a live holder has had time to finish) plus jitter, so deferred duplicates
    do not all come back in the same second."""
    jitter = (rng or random).uniform(0, lease_seconds / 2)
    return max(1, math.ceil(lease_seconds + jitter))


def deferral_expired(request: ReconcileRequest, now: datetime) -> bool:
    return now - request.requested_at > DEFER_MAX_AGE


# --------------------------------------------------------------------------------------------------
# Queue messages: encoding and the client used to re-enqueue

MessageEncoding = Literal["base64", "none"]


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


def queue_client_from_env(
    queue: str,
    *,
    encoding: MessageEncoding,
    credential: AsyncTokenCredential | None,
    env: Mapping[str, str],
) -> QueueClient:
    """A client for ``queue`` in the ``AzureWebJobsStorage`` account, connected as the host is.

    A connection string (``UseDevelopmentStorage=true`` with Azurite), or the identity-based form
    (``AzureWebJobsStorage__queueServiceUri`` / ``__accountName``) with the app's identity.
    """
    policies: dict[str, Any] = (
        {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": BinaryBase64DecodePolicy()}
        if encoding == "base64"
        else {}
    )
    connection = env.get(STORAGE_CONNECTION, "").strip()
    if connection:
        return QueueClient.from_connection_string(connection, queue, **policies)
    uri = env.get("AzureWebJobsStorage__queueServiceUri", "").strip()
    account = env.get("AzureWebJobsStorage__accountName", "").strip()
    if not uri and account:
        uri = f"https://{account}.queue.core.windows.net"
    if not uri or credential is None:
        raise SettingsError(
            [
                "No storage account is configured for the rotation queue: set AzureWebJobsStorage (a connection "
                "string; UseDevelopmentStorage=true with Azurite) or AzureWebJobsStorage__accountName for "
                "identity-based access."
            ]
        )
    return QueueClient(uri, queue, credential=credential, **policies)


# --------------------------------------------------------------------------------------------------
# Logging helpers


def loggable_body(body: bytes, limit: int = 2048) -> str:
    """A queue message body for a log line: decoded leniently, one line, bounded. Messages never
    hold secret values (they are ReconcileRequests), but their content is untrusted input."""
    text = body[:limit].decode("utf-8", errors="replace")
    flat = json.dumps(text)[1:-1]  # escapes newlines and control characters: no forged log lines
    return flat + ("..." if len(body) > limit else "")
