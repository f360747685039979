"""The requests one reconcile sends, by service and kind, for each mode: what `benchmarks.rotation_cost`
prints and `test_rotation_cost` pins (counts, never time).

Counted: Graph, Key Vault and the token endpoint (the validation probes). Not counted: the rotator's
own managed-identity tokens (cached per process) and Key Vault's 401 challenge handshake (once per
client).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from emulator.rotator_profile import RotatorCloud
from rotation.domain.model import Action
from tests.integration.reconcile_helpers import (
    CloudClock,
    Seeded,
    advance_clock,
    make_settings,
    mark,
    reconcile,
    requests_since,
    seed,
)

Mode = Literal["normal", "forced", "emergency"]


@dataclass(frozen=True)
class Case:
    """One reconcile: how the secret is seeded, the settings, the mode, and what it must do."""

    expires_in_days: float
    grace_hours: int
    mode: Mode
    action: Action
    #: Run once first (a rotation), then move the cloud's clock by this much and reconcile again.
    after_a_rotation: timedelta | None = None


CASES: dict[str, Case] = {
    "due, grace 24 h (the steady state)": Case(5, 24, "normal", Action.ROTATED),
    "due, grace 0 (rotate and retire in one run)": Case(5, 0, "normal", Action.ROTATED),
    "forced (an operator's planned roll)": Case(200, 24, "forced", Action.ROTATED),
    "emergency (retire the leaked one at once)": Case(200, 24, "emergency", Action.ROTATED),
    "retirement after the grace period": Case(5, 24, "normal", Action.RETIRED, timedelta(hours=25)),
    "nothing to do": Case(200, 24, "normal", Action.NONE),
}


def kind(record: dict[str, object]) -> str:
    path = str(record["path"]).split("?")[0]
    service = str(record["service"])
    if service == "entra":
        return "token request (probe)"
    if service == "graph":
        if "/reports/appCredentialSignInActivities" in path:
            return "Graph GET sign-in report"
        for action in ("addPassword", "removePassword"):
            if path.endswith(action):
                return f"Graph POST {action}"
        return f"Graph {record['method']} application"
    if path.endswith("/versions"):
        return "Key Vault GET versions"
    return f"Key Vault {record['method']} secret"


def counted(log: list[dict[str, object]]) -> Counter[str]:
    return Counter(
        kind(r)
        for r in log
        if r["service"] in ("graph", "keyvault", "entra") and not (r["service"] == "keyvault" and r["status"] == 401)
    )


async def cost_of(cloud: RotatorCloud, case: Case, seed_one: Callable[..., Awaitable[Seeded]] = seed) -> Counter[str]:
    """The requests of the reconcile that `case` describes (the second one, after a rotation)."""
    seeded = await seed_one(cloud, expires_in_days=case.expires_in_days)
    settings = make_settings(cloud.env, grace_hours=case.grace_hours, validation_successes=1)
    clock = CloudClock(cloud)
    if case.after_a_rotation is not None:
        first = await reconcile(settings, seeded, clock=clock)
        assert first.ok and first.action is Action.ROTATED, first.to_dict()
        advance_clock(cloud, case.after_a_rotation)
    since = mark(cloud)
    outcome = await reconcile(settings, seeded, mode=case.mode, clock=clock)
    assert outcome.ok and outcome.action is case.action, outcome.to_dict()
    return counted(requests_since(cloud, since))
