"""`python -m localcloud serve [--port N] [--vault NAME ...]`: start the local cloud and print one JSON line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable

from localcloud.cloud import DEFAULT_VAULT, LocalCloud


def main(
    argv: list[str] | None = None,
    *,
    prog: str = "python -m localcloud",
    make_cloud: Callable[..., LocalCloud] = LocalCloud,
) -> int:
    """`make_cloud(port=…, vaults=…)` builds the cloud: a caller's profile of the cloud
    (one that adds the identities its app needs) passes its own."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve Entra ID, managed identity, Graph and Key Vault on loopback")
    serve.add_argument("--port", type=int, default=0, help="main port (Entra, Graph, admin); default: a free one")
    serve.add_argument(
        "--vault",
        action="append",
        dest="vaults",
        metavar="NAME",
        help=f"a vault to create (default: {DEFAULT_VAULT})",
    )
    serve.add_argument("--propagation-seconds", type=float, default=0.0, help="secret propagation window")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    try:
        cloud = make_cloud(port=args.port, vaults=tuple(args.vaults or (DEFAULT_VAULT,))).start()
    except (OSError, ValueError) as exc:
        print(f"error: cannot start the local cloud: {exc}", file=sys.stderr)
        return 1
    if args.propagation_seconds:
        cloud.admin("PUT", "/config", {"propagationSeconds": args.propagation_seconds})
    print(json.dumps(cloud.describe()), flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
