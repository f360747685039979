"""The queue worker: reconcile one secret under its blob lease; and the poison queue's alert line.

Annotations are evaluated at import (no ``from __future__ import annotations``): the Python worker
inspects the trigger functions' to pick converters.
"""

import logging
import time

import azure.functions as func

from functions.config import EdgeConfig
from functions.disposition import defer, settle
from functions.host import (
    POISON_QUEUE,
    REQUESTS_QUEUE,
    STORAGE_CONNECTION,
    invocation_settings,
    loggable_body,
    new_blueprint,
    request_dims,
)
from rotation.domain.errors import BadRequestError, LockHeld, RotationError
from rotation.domain.model import ReconcileRequest, format_utc
from rotation.hosting import publish_lifecycle
from rotation.observability import collecting_lifecycle
from rotation.observability import event as log_event
from rotation.settings import Settings

log = logging.getLogger("rotation.functions")


def blueprint(config: EdgeConfig) -> func.Blueprint:
    bp = new_blueprint()

    @bp.queue_trigger(arg_name="msg", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
    async def rotate_worker(msg: func.QueueMessage) -> None:
        """Reconcile one secret under its blob lease, then complete, defer or fail the message.

        - A malformed message is logged (``MessageRejected``, with every problem) and completed: it can
          never parse differently, and raising would only move it to the poison queue five tries later.
        - The lease ``rotation-locks/{vault}/{secret}`` is held for the whole reconcile and renewed while
          validation waits. If another worker holds it, the message is *deferred* (see
          ``functions.disposition.defer``): re-enqueued for later, and this delivery completes.
          Nothing is ever rotated twice: the lease serialises workers and the reconciler re-reads.
        - The outcome decides the rest (``functions.disposition``): success completes; a permanent
          error logs ``RotationFailed`` and completes; anything that a retry may fix raises
          ``RotationRetry``, and after ``maxDequeueCount`` attempts the host moves the message to
          ``rotation-requests-poison`` (see ``rotation_poisoned``).
        """
        request = parse_message(msg)
        if request is not None:
            await reconcile_under_lease(request, config, dequeue_count=msg.dequeue_count)

    @bp.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection=STORAGE_CONNECTION)
    async def rotation_poisoned(msg: func.QueueMessage) -> None:
        """Log a message the worker failed on ``maxDequeueCount`` times: alerts match
        ``message startswith "RotationPoisoned"``. The line carries the message body (a reconcile
        request, never a secret value) because this trigger consumes the poison message: the log is
        the record to replay it from once the cause is fixed."""
        log_poisoned(msg)

    return bp


def parse_message(msg: func.QueueMessage) -> ReconcileRequest | None:
    """The request in the message, or ``None`` (logged as ``MessageRejected``) if there is none."""
    body = msg.get_body()
    try:
        return ReconcileRequest.from_json(body)
    except BadRequestError as error:
        log_event(
            "MessageRejected",
            level=logging.ERROR,
            messageId=msg.id,
            dequeueCount=msg.dequeue_count,
            problems=list(error.problems),
            body=loggable_body(body),
        )
        return None


async def reconcile_under_lease(request: ReconcileRequest, config: EdgeConfig, *, dequeue_count: int | None) -> None:
    """Hold the secret's lease while the reconciler works, then settle the message (see
    ``functions.disposition``); a lease held elsewhere defers the request instead. The lifecycle
    events it logged are published when it ends (``ROTATION_EVENTS_TOPIC``), whatever the outcome."""
    settings = invocation_settings("rotate_worker", request.operation_id)
    with collecting_lifecycle() as collected:
        try:
            await _reconcile_and_settle(request, config, settings, dequeue_count=dequeue_count)
        finally:
            await publish_lifecycle(settings, collected)


async def _reconcile_and_settle(
    request: ReconcileRequest, config: EdgeConfig, settings: Settings, *, dequeue_count: int | None
) -> None:
    dims = request_dims(request)
    started = time.monotonic()
    async with config.runtime(settings) as runtime:
        lock = runtime.open_lock(lease_seconds=config.lock_lease_seconds)
        try:
            async with lock.hold(request.lock_key) as held:
                log_event("LockAcquired", lockKey=request.lock_key, dequeueCount=dequeue_count, **dims)
                outcome = await runtime.reconciler.reconcile(request, held=held)
                renewals = held.renewals
        except LockHeld:
            await defer(request, runtime, config)
            return
        except RotationError as error:
            # The lock's storage account failed us (LockUnavailable): nothing was done, try again.
            log_event(
                "RotationRetrying",
                level=logging.WARNING,
                errorCode=error.code,
                error=error.message,
                dequeueCount=dequeue_count,
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
                dequeueCount=dequeue_count,
                **dims,
            )
            log.exception("Unexpected failure reconciling %s (operation %s)", request.lock_key, request.operation_id)
            raise
        finally:
            await lock.close()
    settle(outcome, request, dequeue_count=dequeue_count, renewals=renewals, seconds=time.monotonic() - started)


def log_poisoned(msg: func.QueueMessage) -> None:
    """One error line per poisoned message, with its ids when it parses and its body either way."""
    body = msg.get_body()
    try:
        dims = request_dims(ReconcileRequest.from_json(body))
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
