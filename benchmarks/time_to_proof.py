"""Time to proof: how long after Entra's last replica accepts a new secret the rotator has proven it.

The local cloud gives each new password a moment per replica (uniform in the propagation window W)
from which that replica accepts it; a token request reaches one random replica, as in Entra. For
each trial a due secret is rotated through the production wiring (`ROTATION_VALIDATION_SUCCESSES`
consecutive sign-ins, default 3) and the benchmark reports the overshoot: the moment the
`ValidationPassed` line is logged minus the last replica's moment, and the token requests per second
the validation sent for the app. Goal (issue 14): under 2 s beyond W, at most one token request per
second per app (Entra answers client-credential floods with `Retry-After: 60`).

Run: `make bench` (or `.venv/bin/python -m benchmarks.time_to_proof [--trials N] [--window W]`);
results go in benchmarks/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import time
from datetime import UTC, datetime

from localcloud.tls import shared_local_tls

# Before anything imports aiohttp: it reads SSL_CERT_FILE once (as tests/conftest.py does).
_TLS = shared_local_tls()
os.environ["SSL_CERT_FILE"] = str(_TLS.ca_bundle)
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

from emulator.rotator_profile import RotatorCloud  # noqa: E402
from rotation.domain.model import ReconcileRequest  # noqa: E402
from rotation.runtime import open_runtime  # noqa: E402
from rotation.settings import Settings  # noqa: E402
from tests.integration.seed import seed_managed_secret  # noqa: E402


class PassedAt(logging.Handler):
    """Wall-clock time of the last `ValidationPassed` line."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("ValidationPassed "):
            self.at = time.time()


async def rotate(cloud: RotatorCloud, name: str) -> tuple[str | None, float]:
    settings = Settings.from_env({**cloud.env, "ROTATION_GRACE_HOURS": "24"})
    async with open_runtime(settings) as runtime:
        request = ReconcileRequest.new("kv-local", name, now=datetime.now(UTC), reason="time-to-proof benchmark")
        outcome = await runtime.reconciler.reconcile(request)
        assert outcome.ok, outcome.to_dict()
        return outcome.created_key_id, outcome.timings.get("validate", 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--window", type=float, default=10.0, help="propagation window W, seconds")
    args = parser.parse_args(argv)
    passed = PassedAt()
    logging.getLogger("rotation").addHandler(passed)
    logging.getLogger("rotation").setLevel(logging.INFO)
    overshoots: list[float] = []  # negative: proven before the last replica accepted it
    rates: list[float] = []
    cloud = RotatorCloud(tls=_TLS).start()
    try:
        os.environ.update(cloud.env)
        cloud.admin("PUT", "/config", {"propagationSeconds": args.window, "replicas": 3})
        for _ in range(args.trials):
            seeded = seed_managed_secret(cloud, expires_in_days=5)
            since = len(cloud.admin("GET", "/requests?since=0")["requests"])
            key_id, validate_seconds = asyncio.run(rotate(cloud, seeded.name))
            assert key_id is not None and passed.at is not None
            ready = next(p for p in cloud.passwords(seeded.object_id) if p.key_id.lower() == key_id.lower())
            overshoots.append(passed.at - max(ready.replica_ready).timestamp())
            log = cloud.admin("GET", f"/requests?since={since}")["requests"]
            probes = [r for r in log if r["service"] == "entra" and r["path"].endswith("/oauth2/v2.0/token")]
            # Requests per second as the pace between them: n probes span n - 1 pauses.
            rates.append((len(probes) - 1) / max(validate_seconds, 1.0))
    finally:
        cloud.stop()
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "window_seconds": args.window,
        "trials": args.trials,
        "overshoot_seconds": {
            "median": round(statistics.median(overshoots), 2),
            "max": round(max(overshoots), 2),
            "all": [round(o, 2) for o in overshoots],
        },
        "token_requests_per_second_per_app": {
            "max": round(max(rates), 2),
            "median": round(statistics.median(rates), 2),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
