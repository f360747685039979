"""What one reconcile costs, per mode, in requests by kind: the minimum the design allows, pinned so
that a change that adds a request shows up here (the figures are in benchmarks/RESULTS.md too)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulator.rotator_profile import RotatorCloud
from tests.integration.reconcile_helpers import start_private_cloud
from tests.integration.rotation_cost import CASES, cost_of

GET_APP, ADD, REMOVE = "Graph GET application", "Graph POST addPassword", "Graph POST removePassword"
# ROTATION_RETIREMENT_EVIDENCE=auto (the default): a retirement after the grace period asks for the
# sign-in report first (here refused: the rotator lacks AuditLog.Read.All, and the grace period decides).
REPORT = "Graph GET sign-in report"
GET, PUT, PATCH, LIST = (
    "Key Vault GET secret",
    "Key Vault PUT secret",
    "Key Vault PATCH secret",
    "Key Vault GET versions",
)
PROBE = "token request (probe)"
# Steady state: read the secret and the app, add, prove (one success here), store, read back: the
# minimum, since proof comes before the store and the read-back checks what consumers will read.
ROTATE = {GET: 2, GET_APP: 1, ADD: 1, PROBE: 1, PUT: 1}
# Retiring after the grace period: the secret read, and re-read before the removal and before the
# disabling; the app read, and re-read before the removal (which serves the disabling too); the
# versions listed once; one version disabled; the tags cleared.
RETIRE = {GET: 3, GET_APP: 2, REPORT: 1, REMOVE: 1, LIST: 1, PATCH: 2}
EXPECTED: dict[str, dict[str, int]] = {
    "due, grace 24 h (the steady state)": ROTATE,
    "due, grace 0 (rotate and retire in one run)": {
        **ROTATE,
        GET: 4,
        GET_APP: 2,
        REPORT: 1,
        REMOVE: 1,
        LIST: 1,
        PATCH: 2,
    },
    "forced (an operator's planned roll)": ROTATE,
    # The emergency is recorded first (one PATCH of the current version's tags).
    "emergency (retire the leaked one at once)": {**ROTATE, GET: 4, GET_APP: 2, REMOVE: 1, LIST: 1, PATCH: 3},
    "retirement after the grace period": RETIRE,
    "nothing to do": {GET: 1, GET_APP: 1},
}


@pytest.mark.parametrize("name", list(CASES))
async def test_rotation_cost(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    cost = await cost_of(cloud, CASES[name])
    assert dict(cost) == EXPECTED[name]
