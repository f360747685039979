"""Sequential keep-alive throughput of the local cloud: token requests and Key Vault gets.

The local cloud must never be the bottleneck of a benchmark of the rotator. This measures, on one
keep-alive HTTPS connection per endpoint (requests.Session), how many requests per second it answers
for a client-credentials token request and for a Key Vault `GET /secrets/{name}`.

Run: `make bench` (or `.venv/bin/python -m benchmarks.emulator_throughput [--requests N]`).
Results are recorded in benchmarks/RESULTS.md with the hardware they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from localcloud.tls import create_local_tls

# Export the CA before anything imports aiohttp (the local cloud itself uses it as a server only).
_TLS = create_local_tls(Path(tempfile.mkdtemp(prefix="bench-cloud-")))
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

import requests  # noqa: E402

from localcloud.cloud import LocalCloud  # noqa: E402


def measure(session: requests.Session, send: object, count: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) over `count` sequential requests after a warm-up."""
    assert callable(send)
    for _ in range(min(50, count)):
        send()
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        response = send()
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return count / elapsed, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint (default 2000)")
    args = parser.parse_args()
    with LocalCloud(tls=_TLS) as cloud:
        app = cloud.admin("POST", "/applications", {"displayName": "bench"})
        secret = cloud.admin("POST", f"/applications/{app['id']}/passwords", {})["secretText"]
        token_url = f"{cloud.authority}/{cloud.tenant_id}/oauth2/v2.0/token"
        form = {
            "client_id": app["appId"],
            "client_secret": secret,
            "grant_type": "client_credentials",
            "scope": "https://vault.azure.net/.default",
        }
        # The app reads the vault with its own token, like any consumer.
        identity = cloud.admin("POST", "/identities", {"displayName": "bench-reader"})
        cloud.admin(
            "POST",
            "/role-assignments",
            {"objectId": identity["objectId"], "vault": "kv-local", "role": "Key Vault Secrets Officer"},
        )
        with requests.Session() as session:
            vault_token = session.post(
                token_url,
                data={**form, "client_id": identity["appId"], "client_secret": identity["clientSecret"]},
                timeout=10,
            ).json()["access_token"]
            vault = cloud.vault_url("kv-local")
            headers = {"Authorization": f"Bearer {vault_token}"}
            put = session.put(
                f"{vault}/secrets/bench?api-version=7.5", json={"value": "x" * 40}, headers=headers, timeout=10
            )
            assert put.status_code == 200, put.text
            results = {
                "token request": measure(
                    session, lambda: session.post(token_url, data=form, timeout=10), args.requests
                ),
                "Key Vault get": measure(
                    session,
                    lambda: session.get(f"{vault}/secrets/bench/?api-version=7.5", headers=headers, timeout=10),
                    args.requests,
                ),
            }
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "requests_per_endpoint": args.requests,
        "results": {
            name: {"requests_per_second": round(rps), "p99_ms": round(p99, 2)} for name, (rps, p99) in results.items()
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
