"""Every Graph and Key Vault request has its own socket timeouts, not the SDKs' 300 s (finding 11).

A stalled request (the local cloud's `stall` fault: no answer for 60 s) fails as a transport error
after the read timeout, and the one retry policy (`with_retries`, under the throttle budget) sends
it again; the call succeeds. The timeouts are shrunk for the test (the production values sit in
`rotation.adapters.retrying`); the wall-clock bound is only the safety net.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.adapters import graph, keyvault, retrying
from rotation.runtime import open_runtime
from tests.integration.reconcile_helpers import clear_faults, make_settings, requests_since, seed

STALL = {"stall": True, "delayMs": 60_000, "count": 1}
SAFETY_NET_SECONDS = 25.0  # far below one stall, far above a 1 s timeout plus a retry


def test_the_production_timeouts_are_far_below_the_sdk_default() -> None:
    assert retrying.CONNECT_TIMEOUT_SECONDS <= 10 and retrying.READ_TIMEOUT_SECONDS <= 30


async def test_a_stalled_key_vault_read_times_out_and_is_retried(
    cloud: RotatorCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyvault, "READ_TIMEOUT_SECONDS", 1.0)
    seeded = await seed(cloud, expires_in_days=10)
    settings = make_settings()
    async with open_runtime(settings) as runtime:
        vault = runtime.vaults[seeded.vault]
        await vault.get(seeded.name)  # the rotator's token is in hand: only the read itself stalls
        mark = int(cloud.admin("GET", "/requests?since=0")["next"])
        cloud.admin(
            "POST", "/faults", {"service": "keyvault", "method": "GET", "pathRegex": f"/secrets/{seeded.name}", **STALL}
        )
        try:
            found = await asyncio.wait_for(vault.get(seeded.name), SAFETY_NET_SECONDS)
        finally:
            clear_faults(cloud)
    assert found is not None and found.value.reveal() == seeded.value
    reads = [r for r in requests_since(cloud, mark) if r["service"] == "keyvault" and seeded.name in r["path"]]
    assert [r["status"] for r in reads] == [0, 200], reads  # the stalled one, then the retry


async def test_a_stalled_graph_read_times_out_and_is_retried(
    cloud: RotatorCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph, "_GRAPH_TIMEOUT", httpx.Timeout(1.0, connect=1.0))
    seeded = await seed(cloud, expires_in_days=10)
    settings = make_settings()
    async with open_runtime(settings) as runtime:
        await runtime.directory.get_application(seeded.app_id)
        mark = int(cloud.admin("GET", "/requests?since=0")["next"])
        cloud.admin("POST", "/faults", {"service": "graph", "method": "GET", "pathRegex": seeded.app_id, **STALL})
        try:
            app = await asyncio.wait_for(runtime.directory.get_application(seeded.app_id), SAFETY_NET_SECONDS)
        finally:
            clear_faults(cloud)
    assert app.app_id == seeded.app_id
    reads = [r for r in requests_since(cloud, mark) if r["service"] == "graph" and seeded.app_id in r["path"]]
    assert [r["status"] for r in reads] == [0, 200], reads
