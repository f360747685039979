"""Fixtures of the local cloud's own suite: one cloud per session (plus private ones on demand).

Each cloud has one system-assigned managed identity, `workload`, with `Application.ReadWrite.OwnedBy`
on Graph and Key Vault Secrets Officer on every vault, so that `ManagedIdentityCredential()` works
with the cloud's `env` alone. The CA bundle is made and exported *before* anything imports aiohttp
or httpx: aiohttp reads `SSL_CERT_FILE` once, at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from localcloud.tls import shared_local_tls

# Shared with any other suite in the same session (aiohttp trusts one bundle per process).
_TLS = shared_local_tls()
os.environ["SSL_CERT_FILE"] = str(_TLS.ca_bundle)
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

import pytest  # noqa: E402
from azure.keyvault.secrets._shared import http_challenge_cache  # noqa: E402

from localcloud.cloud import LocalCloud, ManagedIdentity  # noqa: E402

WORKLOAD = "workload (managed identity)"


def _start_cloud(**kwargs: Any) -> LocalCloud:
    local = LocalCloud(tls=_TLS, **kwargs).start()
    local.create_managed_identity(
        WORKLOAD,
        graph_app_roles=["Application.ReadWrite.OwnedBy"],
        vault_roles={"*": ["Key Vault Secrets Officer"]},
        system_assigned=True,
    )
    return local


def workload_of(local: LocalCloud) -> ManagedIdentity:
    [identity] = [i for i in local.managed_identities() if i.system_assigned]
    return identity


@pytest.fixture(scope="session")
def cloud() -> Iterator[LocalCloud]:
    """The session's local cloud, its `env` exported. Tests that move its clock or config use
    `private_cloud` instead; faults and config are reset after each test."""
    local = _start_cloud(vaults=("kv-local", "kv-second"))
    saved = {key: os.environ.get(key) for key in local.env}
    os.environ.update(local.env)
    yield local
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    local.stop()


@pytest.fixture
def workload(cloud: LocalCloud) -> ManagedIdentity:
    """The shared cloud's system-assigned identity (what `ManagedIdentityCredential()` signs in as)."""
    return workload_of(cloud)


@pytest.fixture(autouse=True)
def _reset_shared_cloud(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    # Key Vault's SDK caches each vault's challenge (its tenant) by host:port for the whole process;
    # a cloud's port, once it stopped, may be another cloud's (another tenant's) next.
    http_challenge_cache.clear()
    if "cloud" in request.fixturenames:
        shared: LocalCloud = request.getfixturevalue("cloud")
        shared.admin("DELETE", "/faults")
        shared.admin(
            "PUT",
            "/config",
            {
                "propagationSeconds": 0,
                "replicas": 3,
                "latencyMs": 0,
                "throttle": {"enabled": False},
                "signInReportDelaySeconds": 86400,
            },
        )
        # The shared cloud's clock must never move (its tokens and events would age for everyone).
        assert abs((shared.now() - datetime.now(UTC)).total_seconds()) < 60


@pytest.fixture
def private_cloud() -> Iterator[Callable[..., LocalCloud]]:
    """A factory for clouds of a test's own (for clock moves, throttling, odd vault sets)."""
    started: list[LocalCloud] = []

    def make(**kwargs: Any) -> LocalCloud:
        local = _start_cloud(**kwargs)
        started.append(local)
        return local

    yield make
    for local in started:
        local.stop()


@pytest.fixture(scope="session")
def ca_bundle() -> str:
    return str(_TLS.ca_bundle)
