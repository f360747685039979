"""A fleet rotation under a Graph write budget: N managed secrets due at once, reconciled with
bounded concurrency (what `python -m rotation sweep --concurrency C` does), while the local cloud
enforces Graph's identity-write limit at a rate the machine can exceed.

Reports: rotations that succeeded and failed, wall time, rotations per second, Graph writes that
succeeded and were refused (429), the share of the budget the fleet used, and the requests per
rotation by service. The share is writes / (bucket capacity + refill rate x elapsed): what the
budget allowed in that time, burst included. Goal (issue 14): at least 80 %, zero failures.

Run: `make bench` (or `.venv/bin/python -m benchmarks.fleet [--secrets N] [--concurrency C]
[--writes W --window S]`); results go in benchmarks/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import Counter

from localcloud.tls import shared_local_tls

# Before anything imports aiohttp: it reads SSL_CERT_FILE once (as tests/conftest.py does).
_TLS = shared_local_tls()
os.environ["SSL_CERT_FILE"] = str(_TLS.ca_bundle)
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

from emulator.rotator_profile import RotatorCloud  # noqa: E402
from rotation.domain.model import ReconcileRequest  # noqa: E402
from rotation.runtime import open_runtime  # noqa: E402
from rotation.service.sweep import reconcile_all  # noqa: E402
from rotation.settings import Settings  # noqa: E402
from tests.integration.seed import seed_managed_secret  # noqa: E402


async def rotate_fleet(cloud: RotatorCloud, names: list[str], concurrency: int) -> tuple[list[bool], float]:
    settings = Settings.from_env(
        {
            **cloud.env,
            "ROTATION_GRACE_HOURS": "24",
            "ROTATION_VALIDATION_SUCCESSES": "1",
            "ROTATION_THROTTLE_RETRY_SECONDS": "300",
        }
    )
    async with open_runtime(settings) as runtime:
        now = runtime.reconciler.clock.now()
        requests = [ReconcileRequest.new("kv-local", name, now=now, reason="fleet benchmark") for name in names]
        started = time.perf_counter()
        outcomes = await reconcile_all(runtime.reconciler, requests, concurrency=concurrency)
        return [o.ok for o in outcomes], time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--writes", type=int, default=10, help="Graph writes allowed per window")
    parser.add_argument("--window", type=float, default=10.0, help="the window, in seconds")
    args = parser.parse_args(argv)
    cloud = RotatorCloud(tls=_TLS).start()
    try:
        os.environ.update(cloud.env)
        names = [seed_managed_secret(cloud, expires_in_days=5).name for _ in range(args.secrets)]
        cloud.admin(
            "PUT",
            "/config",
            {"throttle": {"enabled": True, "graphWrites": args.writes, "graphWindowSeconds": args.window}},
        )
        since = len(cloud.admin("GET", "/requests?since=0")["requests"])
        oks, elapsed = asyncio.run(rotate_fleet(cloud, names, args.concurrency))
        log = cloud.admin("GET", f"/requests?since={since}")["requests"]
    finally:
        cloud.stop()
    writes = [r for r in log if r["service"] == "graph" and r["method"] in ("POST", "PATCH", "DELETE")]
    done = sum(1 for r in writes if r["status"] < 400)
    refused = sum(1 for r in writes if r["status"] == 429)
    allowed = args.writes + args.writes / args.window * elapsed
    by_service = Counter(r["service"] for r in log if r["status"] != 429)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "secrets": args.secrets,
        "concurrency": args.concurrency,
        "budget": f"{args.writes} Graph writes per {args.window:g} s",
        "rotations_ok": sum(oks),
        "rotations_failed": len(oks) - sum(oks),
        "seconds": round(elapsed, 1),
        "rotations_per_second": round(len(oks) / elapsed, 2),
        "graph_writes_ok": done,
        "graph_writes_refused_429": refused,
        "budget_used_percent": round(100 * done / allowed, 1),
        "requests_per_rotation": {service: round(count / len(oks), 1) for service, count in sorted(by_service.items())},
    }
    print(json.dumps(report, indent=2))
    return 0 if report["rotations_failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
