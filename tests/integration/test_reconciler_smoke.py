from __future__ import annotations

import asyncio
import os

from emulator.cloud import LocalCloud
from rotation.model import ReconcileRequest
from rotation.runtime import open_runtime
from rotation.settings import Settings
from tests.integration.seed import seed_managed_secret


def test_forced_rotation_end_to_end(cloud: LocalCloud) -> None:
    seeded = seed_managed_secret(cloud, expires_in_days=5)
    settings = Settings.from_env({**os.environ, "ROTATION_GRACE_HOURS": "0", "ROTATION_VALIDATION_SUCCESSES": "1",
                                  "ROTATION_ORPHAN_MARGIN_MINUTES": "0"})

    async def run() -> dict:
        async with open_runtime(settings) as runtime:
            from datetime import UTC, datetime
            request = ReconcileRequest.new(seeded.vault, seeded.name, now=datetime.now(UTC), reason="test")
            outcome = await runtime.reconciler.reconcile(request)
            return outcome.to_dict()

    since = cloud.admin("GET", "/requests?since=0")["next"]
    result = asyncio.run(run())
    print(result)
    log = cloud.admin("GET", f"/requests?since={since}")["requests"]
    for r in log:
        print(r)
    assert result["ok"], result
