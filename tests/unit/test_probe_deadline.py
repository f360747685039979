"""Each token probe is bounded by what is left of the validation deadline (finding 11).

The reconciler passes every attempt the deadline's remaining seconds (measured on its monotonic
timer seam, here the fake clock); the adapter turns that into the attempt's timeout, within a floor
(the attempt at the deadline still gets a chance) and a cap (no attempt waits longer than that).
"""

from __future__ import annotations

import pytest

from rotation.adapters.token_probe import PROBE_TIMEOUT_FLOOR_SECONDS, PROBE_TIMEOUT_SECONDS, attempt_timeout
from rotation.domain.model import Action
from tests.unit.test_reconciler_branches import make_world, seed


async def test_every_attempt_is_told_the_remaining_deadline() -> None:
    w = make_world()
    seed(w, expires_in=None)
    w.probe.propagation_probes = 10**6  # never proven: validation runs to its 60 s deadline
    outcome = await w.reconcile("forced")
    assert outcome.action is Action.NONE and outcome.error_code == "ValidationFailed"
    attempts = outcome.validation_attempts
    assert attempts >= 3 and len(w.probe.timeouts) == attempts
    elapsed = 0.0
    for index, within in enumerate(w.probe.timeouts):
        assert within == pytest.approx(60 - elapsed), f"attempt {index + 1}"
        if index < len(w.clock.sleeps):
            elapsed += w.clock.sleeps[index]
    assert all(within is not None and 0 <= within <= 60 for within in w.probe.timeouts)


@pytest.mark.parametrize(
    ("remaining", "timeout"),
    [
        (None, PROBE_TIMEOUT_SECONDS),
        (600.0, PROBE_TIMEOUT_SECONDS),
        (7.5, 7.5),
        (0.1, PROBE_TIMEOUT_FLOOR_SECONDS),
        (-3.0, PROBE_TIMEOUT_FLOOR_SECONDS),
    ],
)
def test_an_attempt_gets_the_remaining_deadline_within_the_floor_and_the_cap(
    remaining: float | None, timeout: float
) -> None:
    assert attempt_timeout(remaining) == timeout
    assert PROBE_TIMEOUT_FLOOR_SECONDS < PROBE_TIMEOUT_SECONDS <= 30
