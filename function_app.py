"""The Azure Function app (Python v2 programming model): triggers only.

Each function parses its trigger's input, asks ``rotation`` to do the work and shapes the output;
decisions live in ``rotation`` (``functions.support`` for the host-facing ones).

    timer "sweep" ────────────┐
    Event Grid (Key Vault) ───┼──► queue "rotation-requests" ──► rotate_worker: blob lease ──► reconcile
    POST /api/secrets/…/rotate┘                                   (poison: rotation_poisoned logs it)
    GET  /api/secrets[/{vault}/{name}]  read-only state, from value-free Key Vault list calls

Nothing here does network I/O at import time: settings are read, and clients opened, once per
invocation (``Settings.from_env()``, ``open_runtime``), so a bad setting fails one invocation with a
clear message instead of the whole app at start-up.

Annotations are evaluated at import (no ``from __future__ import annotations``): the Python worker
inspects them to pick converters, and ``func.Out[typing.List[str]]`` is the output type its queue
converter accepts for several messages (``list[str]`` is not recognised as iterable there).
"""

import contextlib
import json
import logging
import os
import time
import typing
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from functions.support import (
    POISON_QUEUE,
    REQUESTS_QUEUE,
    STORAGE_CONNECTION,
    ApiError,
    Disposition,
    Reply,
    api_error_from,
    authorize_operator,
    defer_delay_seconds,
    deferral_expired,
    disposition,
    error_body,
    error_reply,
    event_payload,
    internal_error_reply,
    loggable_body,
    message_encoding,
    parse_rotate_body,
    queue_client_from_env,
    require_secret_name,
    require_vault,
    status_url,
    typeless_event_hint,
)
from rotation import redact
from rotation.adapters.locks import DEFAULT_LEASE_SECONDS, BlobLeaseLock, blob_service_from_env
from rotation.domain.errors import BadRequestError, LockHeld, RotationError, SettingsError, TagError
from rotation.domain.events import ACTIONABLE, Ignored, KeyVaultEvent, MalformedEvent, parse_event
from rotation.domain.model import ManagedSecret, Outcome, ReconcileRequest, SecretVersion, format_utc, new_operation_id
from rotation.observability import event as log_event
from rotation.runtime import Runtime, open_runtime
from rotation.service.sweep import scan, status_of, work_requests
from rotation.settings import Settings
from rotation.tools.inventory import inventory_response

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

log = logging.getLogger("rotation.functions")

#: Lease period of the per-secret blob lock (15-60 s). The lock renews it every third of the period
#: while a reconcile runs, so a long validation keeps it; a crashed worker's lease lapses within it.
LOCK_LEASE_SECONDS: int = DEFAULT_LEASE_SECONDS
#: Visibility delay of a deferred message; ``None`` means one lease period plus jitter.
DEFER_DELAY_SECONDS: int | None = None
HOST_JSON = Path(__file__).with_name("host.json")

# azure-core logs every request's URL and headers at INFO: noise (and ingestion cost) next to the
# rotator's own decision logs. Only that logger is quietened; identity and SDK warnings still flow.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
# The host's handler is on the root logger when this module is imported: scrub secret values there.
redact.install()

_warned: set[str] = set()


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(function: str, operation_id: str) -> Settings:
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
        if warning not in _warned:  # once per process, not once per invocation
            _warned.add(warning)
            log_event("SettingsWarning", level=logging.WARNING, warning=warning)
    return settings


# ==================================================================================================
# Timer: the sweep


@app.timer_trigger(arg_name="timer", schedule="%ROTATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
@app.queue_output(arg_name="requests", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
async def sweep(
    timer: func.TimerRequest,
    requests: func.Out[typing.List[str]],  # noqa: UP006 - the worker's queue converter needs typing.List
) -> None:
    """Enqueue one reconcile request per managed secret that needs work, found with list calls only.

    A past-due run (the app was down at the scheduled time) is logged and does the same work: the
    sweep is level-triggered, so running late is exactly as correct as running on time.
    """
    operation_id = new_operation_id()
    started = time.monotonic()
    now = _now()
    if timer.past_due:
        log_event("SweepPastDue", level=logging.WARNING, operationId=operation_id)
    settings = _settings("sweep", operation_id)
    failures: dict[str, RotationError] = {}
    try:
        async with open_runtime(settings) as runtime:
            statuses = await scan(settings, runtime.vaults, now, failures=failures)
    except RotationError as error:
        log_event(
            "SweepFailed", level=logging.ERROR, operationId=operation_id, errorCode=error.code, error=error.message
        )
        raise
    work = work_requests(statuses, now, source="sweep")
    if work:
        requests.set([request.to_json() for request in work])
    for request in work:
        log_event(
            "RotationEnqueued",
            operationId=request.operation_id,
            sweepId=operation_id,
            vault=request.vault,
            secret=request.secret,
            reason=request.reason,
            source="sweep",
        )
    log_event(
        "SweepCompleted",
        operationId=operation_id,
        pastDue=timer.past_due,
        managed=len(statuses),
        enqueued=len(work),
        problems=sum(1 for s in statuses if s.problem),
        unreadableVaults=",".join(sorted(failures)) or None,
        seconds=round(time.monotonic() - started, 3),
    )
    if failures:
        # The other vaults' work is enqueued already; failing the run makes the unreadable vault visible.
        raise next(iter(failures.values()))


# ==================================================================================================
# Event Grid: Key Vault's SecretNearExpiry / SecretExpired


@app.event_grid_trigger(arg_name="event")
@app.queue_output(arg_name="requests", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
async def on_key_vault_event(event: func.EventGridEvent, requests: func.Out[str]) -> None:
    """Turn a near-expiry/expired event into a queued reconcile request, and nothing more.

    Events are hints: the worker re-reads the secret. So an event of another type (above all
    ``SecretNewVersionCreated``, which our own writes fire), of a vault not in ``ROTATION_VAULTS``,
    or one that cannot be parsed is logged and dropped; raising would make Event Grid redeliver it
    for 24 hours to the same verdict. Only a broken configuration raises (Event Grid then retries
    while it is fixed). Both the Event Grid and the CloudEvents schema are accepted.
    """
    operation_id = new_operation_id()
    payload = event_payload(event)
    settings = _settings("on_key_vault_event", operation_id)
    parsed = parse_event(payload, known_vaults=settings.vaults.keys())
    if isinstance(parsed, KeyVaultEvent):
        request = parsed.to_request(_now())
        requests.set(request.to_json())
        log_event(
            "RotationEnqueued",
            operationId=request.operation_id,
            vault=request.vault,
            secret=request.secret,
            reason=request.reason,
            source="event",
            eventId=parsed.event_id,
            eventType=parsed.type,
            schema=parsed.schema,
            vaultVersion=parsed.version,
            expires=format_utc(parsed.exp) if parsed.exp else None,
        )
    elif isinstance(parsed, Ignored):
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
    else:
        assert isinstance(parsed, MalformedEvent)
        log_event(
            "EventMalformed",
            level=logging.WARNING,
            eventId=parsed.event_id,
            problem=parsed.message,
            hint=typeless_event_hint(payload),
        )


# ==================================================================================================
# Queue: the worker and the poison queue


class RotationRetry(Exception):
    """Raised so that the host redelivers the message (after host.json's visibilityTimeout)."""


@app.queue_trigger(arg_name="msg", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
async def rotate_worker(msg: func.QueueMessage) -> None:
    """Reconcile one secret under its blob lease, then complete, defer or fail the message.

    - A malformed message is logged (``MessageRejected``, with every problem) and completed: it can
      never parse differently, and raising would only move it to the poison queue five tries later.
    - The lease ``rotation-locks/{vault}/{secret}`` is held for the whole reconcile and renewed while
      validation waits. If another worker holds it, the message is *deferred*: the same request is
      re-enqueued with a visibility delay of about one lease period (encoded as host.json's
      ``messageEncoding`` says) and this delivery completes, so waiting costs no delivery attempt.
      If the re-enqueue itself fails, the exception makes the host redeliver instead. Nothing is
      ever rotated twice: the lease serialises workers and the reconciler re-reads the state.
    - The outcome decides the rest (table in ``functions.support.disposition``): success
      completes; a permanent error logs ``RotationFailed`` and completes; anything that a retry may
      fix raises ``RotationRetry``, and after ``maxDequeueCount`` attempts the host moves the message
      to ``rotation-requests-poison`` (see ``rotation_poisoned``).
    """
    body = msg.get_body()
    try:
        request = ReconcileRequest.from_json(body)
    except BadRequestError as error:
        log_event(
            "MessageRejected",
            level=logging.ERROR,
            messageId=msg.id,
            dequeueCount=msg.dequeue_count,
            problems=list(error.problems),
            body=loggable_body(body),
        )
        return
    dims = _request_dims(request)
    settings = _settings("rotate_worker", request.operation_id)
    started = time.monotonic()
    outcome: Outcome | None = None
    renewals = 0
    async with open_runtime(settings) as runtime:
        lock = BlobLeaseLock(blob_service_from_env(runtime.credential), lease_seconds=LOCK_LEASE_SECONDS)
        try:
            async with lock.hold(request.lock_key) as held:
                log_event("LockAcquired", lockKey=request.lock_key, dequeueCount=msg.dequeue_count, **dims)
                outcome = await runtime.reconciler.reconcile(request, held=held)
                renewals = held.renewals
        except LockHeld:
            await _defer(request, runtime)
            return
        except RotationError as error:
            # The lock's storage account failed us (LockUnavailable): nothing was done, try again.
            log_event(
                "RotationRetrying",
                level=logging.WARNING,
                errorCode=error.code,
                error=error.message,
                dequeueCount=msg.dequeue_count,
                **dims,
            )
            raise
        except Exception as error:
            # Not a rotator error: a bug or an SDK surprise. Log it with the ids, let the host retry.
            log_event(
                "RotationRetrying",
                level=logging.ERROR,
                errorCode="Unexpected",
                error=type(error).__name__,
                dequeueCount=msg.dequeue_count,
                **dims,
            )
            log.exception("Unexpected failure reconciling %s (operation %s)", request.lock_key, request.operation_id)
            raise
        finally:
            await lock.close()
    assert outcome is not None
    _finish(outcome, request, msg, renewals, time.monotonic() - started)


def _request_dims(request: ReconcileRequest) -> dict[str, Any]:
    return {
        "operationId": request.operation_id,
        "vault": request.vault,
        "secret": request.secret,
        "mode": request.mode,
    }


def _finish(outcome: Outcome, request: ReconcileRequest, msg: func.QueueMessage, renewals: int, seconds: float) -> None:
    decision = disposition(outcome)
    facts = {
        **_request_dims(request),
        "action": outcome.action.value,
        "state": outcome.state.value if outcome.state else None,
        "createdKeyId": outcome.created_key_id,
        "vaultVersion": outcome.vault_version,
        "retiredKeyIds": ",".join(outcome.retired_key_ids) or None,
        "removedOrphans": ",".join(outcome.removed_orphans) or None,
        "validationAttempts": outcome.validation_attempts or None,
        "timings": {step: round(took, 3) for step, took in outcome.timings.items()} or None,
        "leaseRenewals": renewals,
        "dequeueCount": msg.dequeue_count,
        "seconds": round(seconds, 3),
    }
    if decision is Disposition.DONE:
        log_event("WorkerCompleted", **facts)
        return
    if decision is Disposition.GIVE_UP:
        log_event(
            "RotationFailed",
            level=logging.ERROR,
            errorCode=outcome.error_code,
            error=outcome.error_message,
            disposition="completed: a retry cannot fix this",
            **facts,
        )
        return
    log_event(
        "RotationRetrying",
        level=logging.WARNING,
        errorCode=outcome.error_code,
        error=outcome.error_message,
        disposition="redelivered by the host; poison queue after maxDequeueCount",
        **facts,
    )
    raise RotationRetry(
        f"Reconcile of {request.lock_key} (operation {request.operation_id}) failed with "
        f"{outcome.error_code}; the host will deliver the message again."
    )


async def _defer(request: ReconcileRequest, runtime: Runtime) -> None:
    """Another worker holds the secret's lease: put the request back for later, at no attempt's cost."""
    dims = _request_dims(request)
    if deferral_expired(request, _now()):
        log_event(
            "RotationDeferralAbandoned",
            level=logging.ERROR,
            lockKey=request.lock_key,
            requestedAt=format_utc(request.requested_at),
            hint="the lock blob has been leased for hours; check for a manual infinite lease",
            **dims,
        )
        return
    delay = DEFER_DELAY_SECONDS if DEFER_DELAY_SECONDS is not None else defer_delay_seconds(LOCK_LEASE_SECONDS)
    client = queue_client_from_env(
        REQUESTS_QUEUE, encoding=message_encoding(HOST_JSON), credential=runtime.credential, env=os.environ
    )
    async with client:
        try:
            await client.send_message(request.to_json(), visibility_timeout=delay)
        except ResourceNotFoundError:
            # The host creates the queue with the first output binding write; a fresh account may
            # not have it yet.
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
            await client.send_message(request.to_json(), visibility_timeout=delay)
    log_event("RotationDeferred", lockKey=request.lock_key, delaySeconds=delay, **dims)


@app.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection=STORAGE_CONNECTION)
async def rotation_poisoned(msg: func.QueueMessage) -> None:
    """Log a message the worker failed on ``maxDequeueCount`` times: alerts match
    ``message startswith "RotationPoisoned"``. The line carries the message body (a reconcile
    request, never a secret value) because this trigger consumes the poison message: the log is
    the record to replay it from once the cause is fixed."""
    body = msg.get_body()
    try:
        dims = _request_dims(ReconcileRequest.from_json(body))
    except BadRequestError:
        dims = {}
    log_event(
        "RotationPoisoned",
        level=logging.ERROR,
        messageId=msg.id,
        dequeueCount=msg.dequeue_count,
        insertedAt=format_utc(msg.insertion_time) if msg.insertion_time else None,
        body=loggable_body(body),
        **dims,
    )


# ==================================================================================================
# HTTP


async def _http(function: str, req: func.HttpRequest, handle: Callable[[str], Awaitable[Reply]]) -> func.HttpResponse:
    """The edge: every outcome becomes JSON, nothing escapes as a stack trace."""
    operation_id = new_operation_id()
    started = time.monotonic()
    try:
        reply = await handle(operation_id)
    except ApiError as error:
        reply = error_reply(error)
    except SettingsError as error:
        reply = Reply(500, error_body(error.code, error.message))
    except RotationError as error:
        reply = error_reply(api_error_from(error))
    except Exception:
        # The traceback goes to the log (through the redaction filter); the caller gets the id.
        log.exception("Unhandled error in %s (operation %s)", function, operation_id)
        reply = internal_error_reply(operation_id)
    log_event(
        "HttpHandled",
        level=logging.WARNING if reply.status >= 500 else logging.INFO,
        function=function,
        operationId=operation_id,
        method=req.method,
        status=reply.status,
        errorCode=reply.body.get("error", {}).get("code") if reply.status >= 400 else None,
        seconds=round(time.monotonic() - started, 3),
    )
    headers = {"x-ms-operation-id": operation_id, "Cache-Control": "no-store", **reply.headers}
    return func.HttpResponse(reply.payload(), status_code=reply.status, headers=headers, mimetype=reply.mimetype)


async def _managed_version(runtime: Runtime, vault: str, name: str) -> SecretVersion:
    """The latest version's attributes and tags (a value-free list call: the HTTP API never needs
    a value), or the 404 saying why the secret is not something the rotator manages."""
    latest = await runtime.vaults[vault].get_properties(name)
    if latest is None:
        raise ApiError(404, "SecretNotFound", f"Secret '{name}' was not found in vault '{vault}'.")
    if not latest.managed:
        raise ApiError(
            404,
            "NotManaged",
            f"Secret '{name}' in vault '{vault}' is not managed by the rotator (no ProviderAddress tag).",
        )
    return latest


@app.route(route="secrets/{vault}/{name}/rotate", methods=["POST"])
@app.queue_output(arg_name="requests", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
async def rotate_secret(req: func.HttpRequest, requests: func.Out[str]) -> func.HttpResponse:
    """Ask for a rotation now: ``{"reason": "...", "emergency": false}`` -> 202 and a status URL.

    Checks, in order, before anything is enqueued: settings (500), the operator role when App
    Service authentication is on (403; see ``authorize_operator``), the vault (404), the name and
    body (400), then one value-free Key Vault read (the version list): the secret must exist and
    be managed (404), with usable tags and an enabled latest version (409).

    Like ``python -m rotation rotate --force``: ``"emergency": false`` rotates now and keeps the old
    credential for the grace period (a planned roll; it waits if an earlier retirement is still
    pending); ``"emergency": true`` rotates now and retires the old credential as soon as the new one
    is proven (a leak).
    """

    async def handle(operation_id: str) -> Reply:
        settings = _settings("rotate_secret", operation_id)
        caller = authorize_operator(req.headers, settings.operator_role)
        vault = require_vault(req.route_params.get("vault", ""), settings.vaults)
        name = require_secret_name(req.route_params.get("name", ""))
        command = parse_rotate_body(req.get_body())
        try:
            request = ReconcileRequest.new(
                vault, name, now=_now(), reason=command.reason, mode=command.mode, operation_id=operation_id
            )
        except BadRequestError as error:
            raise ApiError(400, error.code, error.message) from None
        async with open_runtime(settings) as runtime:
            latest = await _managed_version(runtime, vault, name)
        try:
            ManagedSecret.from_version(latest)
        except TagError as error:
            raise ApiError(409, error.code, error.message) from None
        if not latest.enabled:
            # The reconciler could not read it either; enqueueing would only fail in the worker.
            raise ApiError(
                409,
                "SecretDisabled",
                f"The latest version of secret '{name}' is disabled; enable it (or write a working value "
                "as a new version) and ask again.",
            )
        requests.set(request.to_json())
        log_event(
            "RotationEnqueued",
            source="http",
            caller=caller.describe(),
            reason=request.reason,
            **_request_dims(request),
        )
        url = status_url(req.url, vault, name)
        return Reply(202, {"operationId": operation_id, "statusUrl": url}, {"Location": url})

    return await _http("rotate_secret", req, handle)


@app.route(route="secrets/{vault}/{name}", methods=["GET"])
async def secret_status(req: func.HttpRequest) -> func.HttpResponse:
    """The rotation state of one managed secret (never its value): expiry, state, pending retirement."""

    async def handle(operation_id: str) -> Reply:
        settings = _settings("secret_status", operation_id)
        vault = require_vault(req.route_params.get("vault", ""), settings.vaults)
        name = require_secret_name(req.route_params.get("name", ""))
        async with open_runtime(settings) as runtime:
            latest = await _managed_version(runtime, vault, name)
        now = _now()
        return Reply(200, status_of(latest, settings, now).to_dict(now))

    return await _http("secret_status", req, handle)


@app.route(route="secrets", methods=["GET"])
async def list_secrets(req: func.HttpRequest) -> func.HttpResponse:
    """Every managed secret of every configured vault (``?vault=`` for one), from list calls only."""

    async def handle(operation_id: str) -> Reply:
        settings = _settings("list_secrets", operation_id)
        only = req.params.get("vault")
        if only is not None:
            only = require_vault(only, settings.vaults)
        now = _now()
        async with open_runtime(settings) as runtime:
            statuses = await scan(settings, runtime.vaults, now, only=only)
        return Reply(
            200,
            {
                "generatedAt": format_utc(now),
                "count": len(statuses),
                "secrets": [status.to_dict(now) for status in statuses],
            },
        )

    return await _http("list_secrets", req, handle)


@app.route(route="inventory", methods=["GET"])
async def inventory(req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/inventory?days=N&format=json|html``: every credential of every app the rotator can
    read, with days to expiry and the vault secret managing it (see ``rotation.tools.inventory``). Read-only;
    list calls only, never a secret value."""

    async def handle(operation_id: str) -> Reply:
        settings = _settings("inventory", operation_id)
        async with open_runtime(settings) as runtime:
            status, content_type, document = await inventory_response(
                runtime, req.params.get("days"), req.params.get("format")
            )
        mimetype = content_type.split(";", 1)[0]
        if mimetype == "application/json":
            return Reply(status, json.loads(document))
        # A self-contained page; nosniff keeps a browser from guessing another type for it.
        return Reply(status, {}, {"X-Content-Type-Options": "nosniff"}, document=document, mimetype=mimetype)

    return await _http("inventory", req, handle)
