"""Cold start of the function app: import time and peak memory of `function_app`, against the floor.

The Functions host imports function_app.py to index the app on every cold start, so what it imports
is paid by every function's first invocation on a new instance. The floor is what the app cannot do
without: `azure.functions` (the host's types) and `azure.identity.aio` (the managed identity every
invocation that calls Azure needs). Each figure is the median of fresh interpreters, one per sample
(`python -c`), measured inside the child: wall time of the import statement and the peak resident
set (ru_maxrss) at its end. Also measured: the first invocation of each family's heavy imports
(what the worker and the inventory load on first use), to show where the cost moved.

Run: `make bench` (or `.venv/bin/python -m benchmarks.cold_start [--samples N]`); results go in
benchmarks/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "floor: azure.functions + azure.identity.aio": "import azure.functions, azure.identity.aio",
    "function_app (every function indexed)": "import function_app",
    "function_app + the worker's first reconcile imports": (
        "import function_app, rotation.runtime, rotation.tools.inventory, functions.bearer, jwt, aiohttp"
    ),
}

CHILD = """
import resource, time, json, os
os.environ.setdefault("ROTATION_VAULTS", "kv-bench")
started = time.perf_counter()
{statement}
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def sample(statement: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(statement=statement)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    for name, statement in CASES.items():
        runs = [sample(statement) for _ in range(args.samples)]
        results[name] = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mib": statistics.median(r["peak_mib"] for r in runs),
        }
    floor = results[next(iter(CASES))]
    print(f"machine: {platform.machine()} {platform.processor() or ''} Python {platform.python_version()}")
    print(f"{'case':<55} {'import s':>9} {'x floor':>8} {'peak MiB':>9} {'x floor':>8}")
    for name, figures in results.items():
        print(
            f"{name:<55} {figures['seconds']:>9.3f} {figures['seconds'] / floor['seconds']:>8.2f} "
            f"{figures['peak_mib']:>9.1f} {figures['peak_mib'] / floor['peak_mib']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
