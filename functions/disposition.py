"""What the queue worker does with a message after a reconcile: complete it, give up on it, have the
host redeliver it, or put it back for later because another worker holds the secret's lock."""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from functions.config import EdgeConfig
from functions.host import REQUESTS_QUEUE, message_encoding, request_dims
from rotation.domain.model import Outcome, ReconcileRequest, format_utc
from rotation.observability import event as log_event

if TYPE_CHECKING:
    from rotation.runtime import Runtime

# --------------------------------------------------------------------------------------------------
# After a reconcile


class RotationRetry(Exception):
    """Raised so that the host redelivers the message (after host.json's visibilityTimeout)."""


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


def settle(
    outcome: Outcome, request: ReconcileRequest, *, dequeue_count: int | None, renewals: int, seconds: float
) -> None:
    """Log what the reconcile did and act on :func:`disposition`: return (the host completes the
    message) or raise :class:`RotationRetry` (the host redelivers it; poison after maxDequeueCount).

    ``outcome.requeue_after`` is not acted on here: the sweep and Key Vault's events bring the secret
    back when it is due, and a completed message is the host's cheapest state.
    """
    decision = disposition(outcome)
    facts: dict[str, Any] = {
        **request_dims(request),
        "action": outcome.action.value,
        "state": outcome.state.value if outcome.state else None,
        "createdKeyId": outcome.created_key_id,
        "vaultVersion": outcome.vault_version,
        "retiredKeyIds": ",".join(outcome.retired_key_ids) or None,
        "removedOrphans": ",".join(outcome.removed_orphans) or None,
        "validationAttempts": outcome.validation_attempts or None,
        "timings": {step: round(took, 3) for step, took in outcome.timings.items()} or None,
        "leaseRenewals": renewals,
        "dequeueCount": dequeue_count,
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


# --------------------------------------------------------------------------------------------------
# Deferring a message whose secret is locked elsewhere

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


async def defer(request: ReconcileRequest, runtime: Runtime, config: EdgeConfig) -> None:
    """Another worker holds the secret's lease: put the same request back on the queue, invisible for
    about one lease period, and let this delivery complete, so waiting costs no delivery attempt.

    The message is encoded as host.json's ``messageEncoding`` says (the host decodes it that way).
    If the re-enqueue fails, the exception makes the host redeliver instead: nothing is lost.
    """
    dims = request_dims(request)
    if deferral_expired(request, config.clock()):
        log_event(
            "RotationDeferralAbandoned",
            level=logging.ERROR,
            lockKey=request.lock_key,
            requestedAt=format_utc(request.requested_at),
            hint="the lock blob has been leased for hours; check for a manual infinite lease",
            **dims,
        )
        return
    delay = config.defer_delay_seconds or defer_delay_seconds(config.lock_lease_seconds)
    queue = runtime.open_queue(REQUESTS_QUEUE, encoding=message_encoding(config.host_json))
    try:
        await queue.send(request.to_json(), visibility_timeout=delay)
    finally:
        await queue.close()
    log_event("RotationDeferred", lockKey=request.lock_key, delaySeconds=delay, **dims)
