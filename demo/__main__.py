"""Entry point of the demo: make the local CA *before* anything imports aiohttp (which reads
SSL_CERT_FILE once, at import), exactly as a process started with the local cloud's `env` would."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from localcloud.tls import create_local_tls


def main() -> int:
    tls = create_local_tls(Path(tempfile.mkdtemp(prefix="rotator-demo-")))
    os.environ["SSL_CERT_FILE"] = str(tls.ca_bundle)
    os.environ["REQUESTS_CA_BUNDLE"] = str(tls.ca_bundle)
    from demo.story import run

    return run(tls, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
