"""One retry policy for every call to Graph and Key Vault, built on tenacity.

The SDKs' own retry layers are switched off in the adapters, so that each attempt is visible here:
throttling (429, honouring `Retry-After`), `Directory_ConcurrencyViolation`, 5xx and transport errors
are retried with exponential back-off and jitter under one total time cap; everything else (403 above
all) surfaces at once, because waiting cannot fix a missing permission.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from rotation.domain.errors import ServiceUnavailableError, ThrottledError

T = TypeVar("T")
log = logging.getLogger("rotation.retry")

MAX_ATTEMPTS = 8

# Socket timeouts of every Graph and Key Vault request (and of the rotator's own token requests).
# The SDKs' default is 300 s for each, so one hung request could outlast a whole invocation (10 min
# on Consumption) while the retry budget below never gets a say. With these, a hung attempt fails as
# a transport error, which `with_retries` retries under the same throttle budget as any other
# transient failure: the budget keeps its meaning, only no single attempt can swallow it. Both are
# far above what a healthy call takes (well under a second) and above Graph's slowest writes.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Transient(Exception):
    """A failure worth another attempt; `retry_after` is what the service asked for, if anything."""

    service: str
    reason: str
    retry_after: float | None = None
    throttled: bool = False

    def __str__(self) -> str:
        return f"{self.service}: {self.reason}"


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; Graph may send fractions ("2.128"). HTTP dates are not used by these
    services, so anything else counts as absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class _Wait:
    """Exponential back-off with full jitter, but never shorter than the service's `Retry-After`."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._backoff = wait_random_exponential(multiplier=initial, max=maximum)

    def __call__(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, Transient) and error.retry_after is not None:
            return max(error.retry_after, backoff if not error.throttled else 0.0)
        return backoff


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    service: str,
    budget_seconds: float,
    what: str,
    initial_backoff: float = 0.5,
    max_backoff: float = 30.0,
) -> T:
    """Run `operation`, retrying `Transient` failures until `budget_seconds` have passed."""
    started = time.monotonic()
    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, Transient)),
        wait=_Wait(initial_backoff, max_backoff),
        stop=stop_after_delay(budget_seconds) | stop_after_attempt(MAX_ATTEMPTS),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "Retrying %s after %s (attempt %d)",
            what,
            state.outcome.exception() if state.outcome else "?",
            state.attempt_number,
            extra={"custom_dimensions": {"event": "Retry", "service": service, "operation": what}},
        ),
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await operation()
    except Transient as exc:
        waited = time.monotonic() - started
        if exc.throttled:
            raise ThrottledError(service, waited, exc.retry_after) from exc
        raise ServiceUnavailableError(
            f"{service} kept failing while the rotator tried to {what} ({exc.reason}); gave up after {waited:.0f} s.",
            "Nothing was lost: the next attempt continues where this one stopped. Check the service's "
            "health and the network path from the rotator.",
        ) from exc
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
