"""A certificate authority made at start, a server certificate for loopback, and a CA bundle file.

The bundle holds the system roots (certifi) plus the local CA, so that one file can be given to
`REQUESTS_CA_BUNDLE` (requests, used by the sync SDKs) and `SSL_CERT_FILE` (aiohttp and httpx) without
breaking any other HTTPS the same process does.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme


@dataclass(frozen=True)
class LocalTLS:
    server_context: ssl.SSLContext
    ca_bundle: Path
    ca_pem: bytes
    directory: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))


def create_local_tls(directory: Path | None = None) -> LocalTLS:
    directory = directory or Path(tempfile.mkdtemp(prefix="local-cloud-"))
    ca = trustme.CA(organization_name="Local cloud (emulator) CA")
    server_cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    ca_pem = ca.cert_pem.bytes()
    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca_pem)
    (directory / "local-ca.pem").write_bytes(ca_pem)
    return LocalTLS(server_context=context, ca_bundle=bundle, ca_pem=ca_pem, directory=directory)


_SHARED: LocalTLS | None = None


def shared_local_tls() -> LocalTLS:
    """One TLS for the whole process: every cloud a process starts (test suites, the demo) is trusted
    by the one CA bundle it exported before aiohttp read `SSL_CERT_FILE`."""
    global _SHARED
    if _SHARED is None:
        _SHARED = create_local_tls()
    return _SHARED
