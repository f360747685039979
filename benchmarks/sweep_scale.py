"""The timer sweep at scale: N managed secrets across several vaults, scanned the way the timer does
(list calls only, one listing of the rotator's apps), with its Key Vault requests, time and peak
Python memory (tracemalloc, the sweep alone); and what a dry run of the due ones costs.

Goal (issue 14): ⌈N/25⌉ Key Vault list calls per vault and nothing else; memory flat in N beyond the
page. Seeding writes the secrets through the real SDK (concurrently), so it takes a while for
10,000.

Run: `.venv/bin/python -m benchmarks.sweep_scale [--secrets N] [--vaults V] [--due D]`
(`make bench` runs it with 2,000); results in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

from localcloud.tls import shared_local_tls

# Before anything imports aiohttp: it reads SSL_CERT_FILE once (as tests/conftest.py does).
_TLS = shared_local_tls()
os.environ["SSL_CERT_FILE"] = str(_TLS.ca_bundle)
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

from azure.identity.aio import ManagedIdentityCredential  # noqa: E402
from azure.keyvault.secrets.aio import SecretClient  # noqa: E402

from emulator.rotator_profile import RotatorCloud  # noqa: E402
from rotation.runtime import open_runtime  # noqa: E402
from rotation.service.sweep import ScanTally, needs_attention, scan, work_requests  # noqa: E402
from rotation.settings import Settings  # noqa: E402


async def seed(cloud: RotatorCloud, vaults: list[str], count: int, due: int) -> None:
    """`count` managed secrets spread over `vaults`, `due` of them expiring within the window."""
    now = datetime.now(UTC).replace(microsecond=0)
    gate = asyncio.Semaphore(32)
    async with ManagedIdentityCredential() as credential:
        clients = {v: SecretClient(cloud.vault_url(v), credential, verify_challenge_resource=False) for v in vaults}
        try:

            async def one(index: int) -> None:
                tags = {"ProviderAddress": str(uuid.uuid4()), "CredentialId": str(uuid.uuid4())}
                expires = now + timedelta(days=5 if index < due else 80)
                async with gate:
                    await clients[vaults[index % len(vaults)]].set_secret(
                        f"s{index:05d}", f"value-{uuid.uuid4().hex}", tags=tags, expires_on=expires
                    )

            await asyncio.gather(*(one(i) for i in range(count)))
        finally:
            for client in clients.values():
                await client.close()


async def sweep(settings: Settings, *, trace: bool) -> tuple[int, int, float, float]:
    """The timer's scan (page by page, keeping what needs attention): (managed secrets seen, requests
    it would enqueue, seconds, peak MiB of Python memory allocated during it, when traced)."""
    async with open_runtime(settings) as runtime:
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        now = datetime.now(UTC)
        tally = ScanTally()
        statuses = await scan(
            settings,
            runtime.vaults,
            now,
            failures={},
            catalog=runtime.directory,
            keep=needs_attention(settings, now),
            tally=tally,
        )
        work = work_requests(statuses, now, source="sweep")
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
        if trace:
            tracemalloc.stop()
        return tally.managed, len(work), seconds, peak


async def dry_run(settings: Settings) -> float:
    from rotation.cli.manage import _sweep_all

    started = time.perf_counter()
    await _sweep_all(settings, concurrency=8, dry_run=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=2000)
    parser.add_argument("--vaults", type=int, default=4)
    parser.add_argument("--due", type=int, default=20)
    args = parser.parse_args(argv)
    vaults = [f"kv-scale-{i}" for i in range(args.vaults)]
    cloud = RotatorCloud(tls=_TLS, vaults=tuple(vaults)).start()
    try:
        os.environ.update(cloud.env)
        asyncio.run(seed(cloud, vaults, args.secrets, args.due))
        settings = Settings.from_env(dict(os.environ))
        mark = len(cloud.admin("GET", "/requests?since=0")["requests"])
        managed, enqueued, seconds, _ = asyncio.run(sweep(settings, trace=False))
        log = cloud.admin("GET", f"/requests?since={mark}")["requests"]
        _, _, _, peak = asyncio.run(sweep(settings, trace=True))  # tracing slows it: measured apart
        mark = len(cloud.admin("GET", "/requests?since=0")["requests"])
        dry_seconds = asyncio.run(dry_run(settings))
        dry_log = cloud.admin("GET", f"/requests?since={mark}")["requests"]
    finally:
        cloud.stop()
    keyvault = [r for r in log if r["service"] == "keyvault" and r["status"] != 401]
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "secrets": args.secrets,
        "vaults": args.vaults,
        "managed_found": managed,
        "enqueued": enqueued,
        "keyvault_requests": len(keyvault),
        "keyvault_list_calls": sum(
            1 for r in keyvault if r["method"] == "GET" and r["path"].split("?")[0] == "/secrets"
        ),
        "expected_list_calls": sum(-(-len(range(i, args.secrets, args.vaults)) // 25) for i in range(args.vaults)),
        "graph_requests": sum(1 for r in log if r["service"] == "graph"),
        "seconds": round(seconds, 2),
        "peak_python_mib": round(peak, 1),
        "dry_run": {
            "seconds": round(dry_seconds, 2),
            "keyvault_requests": sum(1 for r in dry_log if r["service"] == "keyvault" and r["status"] != 401),
            "graph_requests": sum(1 for r in dry_log if r["service"] == "graph"),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
