"""The retry policy under throttling: a 429 paces every caller of the service (the process's gate),
and throttled attempts are bounded by the time cap, not by the attempt count."""

from __future__ import annotations

import asyncio

import pytest

from rotation.adapters.retrying import MAX_ATTEMPTS, ThrottleGate, Transient, with_retries
from rotation.domain.errors import ServiceUnavailableError, ThrottledError


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, *, throttled: bool, retry_after: float | None = 0.0) -> tuple[list[int], object]:
    calls: list[int] = []

    async def operation() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise Transient("graph", "429" if throttled else "503", retry_after=retry_after, throttled=throttled)
        return "done"

    return calls, operation


async def test_throttling_is_waited_out_past_the_attempt_count_while_the_time_cap_allows() -> None:
    calls, operation = failing(MAX_ATTEMPTS + 4, throttled=True)
    result: object = await with_retries(
        operation,  # type: ignore[arg-type]
        service="graph",
        budget_seconds=30,
        what="add a password",
        initial_backoff=0.001,
        gate=ThrottleGate(),
    )
    assert result == "done" and len(calls) == MAX_ATTEMPTS + 5


async def test_other_failures_still_stop_at_the_attempt_count() -> None:
    calls, operation = failing(100, throttled=False)
    with pytest.raises(ServiceUnavailableError):
        await with_retries(
            operation,  # type: ignore[arg-type]
            service="graph",
            budget_seconds=30,
            what="add a password",
            initial_backoff=0.001,
            max_backoff=0.001,
            gate=ThrottleGate(),
        )
    assert len(calls) == MAX_ATTEMPTS


async def test_one_callers_429_makes_every_caller_of_that_service_wait_its_retry_after() -> None:
    fake = FakeTime()
    gate = ThrottleGate(clock=fake.clock, sleep=fake.sleep)
    _, throttled = failing(1, throttled=True, retry_after=5.0)
    # The first caller is throttled and gives up at once (a tiny budget): the gate stays closed 5 s.
    with pytest.raises(ThrottledError):
        await with_retries(throttled, service="graph", budget_seconds=0, what="x", gate=gate)  # type: ignore[arg-type]
    assert gate.closed_for("graph") == 5.0 and gate.closed_for("keyvault") == 0.0

    order: list[str] = []

    async def second() -> str:
        order.append(f"called at {fake.now}")
        return "ok"

    assert await with_retries(second, service="graph", budget_seconds=30, what="y", gate=gate) == "ok"
    assert fake.sleeps == [5.0] and order == ["called at 5.0"]  # not one request before Retry-After
    # Another service is not held up.
    assert await with_retries(second, service="keyvault", budget_seconds=30, what="z", gate=gate) == "ok"
    assert fake.sleeps == [5.0]


async def test_a_later_shorter_retry_after_never_reopens_the_gate_early() -> None:
    fake = FakeTime()
    gate = ThrottleGate(clock=fake.clock, sleep=fake.sleep)
    gate.close_for("graph", 10)
    gate.close_for("graph", 2)
    await asyncio.gather(gate.wait("graph"), gate.wait("graph"))
    assert fake.now == 10.0


async def test_a_gate_closed_beyond_the_budget_fails_as_throttled_at_once() -> None:
    fake = FakeTime()
    gate = ThrottleGate(clock=fake.clock, sleep=fake.sleep)
    gate.close_for("graph", 300)
    calls, operation = failing(0, throttled=True)
    with pytest.raises(ThrottledError):
        await with_retries(operation, service="graph", budget_seconds=120, what="x", gate=gate)  # type: ignore[arg-type]
    assert calls == [] and fake.sleeps == []  # neither a request nor a wait past the cap


async def test_key_vault_throttling_paces_only_the_vault_that_answered_429() -> None:
    fake = FakeTime()
    gate = ThrottleGate(clock=fake.clock, sleep=fake.sleep)
    gate.close_for("Key Vault kv-a", 5)
    _, ok = failing(0, throttled=False)
    await with_retries(ok, service="Key Vault", gate_key="Key Vault kv-b", budget_seconds=30, what="x", gate=gate)  # type: ignore[arg-type]
    assert fake.sleeps == []
    await with_retries(ok, service="Key Vault", gate_key="Key Vault kv-a", budget_seconds=30, what="x", gate=gate)  # type: ignore[arg-type]
    assert fake.sleeps == [5.0]
