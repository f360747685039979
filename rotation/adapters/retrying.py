"""One retry policy for every call to Graph and Key Vault, built on tenacity.

The SDKs' own retry layers are switched off in the adapters, so that each attempt is visible here:
throttling (429, honouring `Retry-After`), `Directory_ConcurrencyViolation`, 5xx and transport errors
are retried with exponential back-off and jitter under one total time cap; everything else (403 above
all) surfaces at once, because waiting cannot fix a missing permission.

Throttling is the service telling every caller to slow down, not one request: a 429's `Retry-After`
closes the :class:`ThrottleGate` of that service for the whole process, so concurrent rotations (a
fleet sweep, the worker's batch) wait together and then proceed at the service's pace, instead of
each spending its own attempts against the budget. Throttled attempts therefore count against the
time cap only; `MAX_ATTEMPTS` bounds the other failures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay
from tenacity.stop import stop_base
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


class ThrottleGate:
    """When each service may next be called, for every caller in this process: a 429's
    `Retry-After` closes it (:meth:`close_for`), and every attempt first waits for it (:meth:`wait`).

    One gate per process, like the SDKs' connection pools: the budget Graph enforces (per app and
    tenant) is shared by all of this process's calls, so one caller's 429 is everyone's.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._open_at: dict[str, float] = {}

    def close_for(self, service: str, seconds: float) -> None:
        self._open_at[service] = max(self._open_at.get(service, 0.0), self._clock() + seconds)

    def closed_for(self, service: str) -> float:
        """Seconds until ``service`` may be called again (0 when it may now)."""
        return max(0.0, self._open_at.get(service, 0.0) - self._clock())

    async def wait(self, service: str) -> None:
        while (delay := self.closed_for(service)) > 0:
            await self._sleep(delay)

    def reset(self) -> None:
        """Forget every closure (a test that starts a fresh local cloud starts a fresh budget)."""
        self._open_at.clear()


#: The process's gate (see :class:`ThrottleGate`).
GATE = ThrottleGate()


class _StopAfterFailures(stop_base):
    """Stop after ``limit`` failures that were not throttling: a service pacing its callers with 429s
    is no reason to give up while the time cap allows waiting."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._failures = 0

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        if not (isinstance(error, Transient) and error.throttled):
            self._failures += 1
        return self._failures >= self._limit


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    service: str,
    budget_seconds: float,
    what: str,
    initial_backoff: float = 0.5,
    max_backoff: float = 30.0,
    gate: ThrottleGate = GATE,
    gate_key: str | None = None,
) -> T:
    """Run `operation`, retrying `Transient` failures until `budget_seconds` have passed; every
    attempt waits for the gate of `gate_key` (default: `service`) first, and a throttled one closes
    it for its `Retry-After` (Key Vault throttles per vault, so its adapter keys the gate by vault)."""
    started = time.monotonic()
    key = gate_key or service

    async def attempt_once() -> T:
        closed_for = gate.closed_for(key)
        if closed_for > 0 and closed_for > budget_seconds - (time.monotonic() - started):
            # The service asked every caller to wait longer than this call may: give up now, as a
            # throttled call that ran out of budget would, instead of waiting past the cap.
            raise ThrottledError(service, time.monotonic() - started, closed_for)
        await gate.wait(key)
        try:
            return await operation()
        except Transient as exc:
            if exc.throttled:
                gate.close_for(key, exc.retry_after if exc.retry_after is not None else initial_backoff)
            raise

    retrying = AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, Transient)),
        wait=_Wait(initial_backoff, max_backoff),
        stop=stop_after_delay(budget_seconds) | _StopAfterFailures(MAX_ATTEMPTS),
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
                return await attempt_once()
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
