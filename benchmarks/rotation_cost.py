"""The requests one reconcile sends, by service and kind, for each mode (counts, so any machine gives
the same figures); `tests/integration/test_rotation_cost.py` pins them.

Run: `make bench` (or `.venv/bin/python -m benchmarks.rotation_cost`); results in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import os

from localcloud.tls import shared_local_tls

# Before anything imports aiohttp: it reads SSL_CERT_FILE once (as tests/conftest.py does).
_TLS = shared_local_tls()
os.environ["SSL_CERT_FILE"] = str(_TLS.ca_bundle)
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

from emulator.rotator_profile import RotatorCloud  # noqa: E402
from tests.integration.rotation_cost import CASES, cost_of  # noqa: E402


def main() -> int:
    print(f"{'mode':<48} {'total':>5}  by kind")
    for name, case in CASES.items():
        cloud = RotatorCloud(tls=_TLS).start()  # its own clock: the retirement case moves it
        try:
            os.environ.update(cloud.env)
            cost = asyncio.run(cost_of(cloud, case))
        finally:
            cloud.stop()
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(cost.items()))
        print(f"{name:<48} {sum(cost.values()):>5}  {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
