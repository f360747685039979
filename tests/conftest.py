"""Shared fixtures: one local cloud per test session (plus private ones on demand), each a
`RotatorCloud`: the generic local cloud with the rotator's managed identity and `ROTATION_*` env.

The CA bundle is made and exported *before* anything imports aiohttp or httpx: aiohttp reads
`SSL_CERT_FILE` once, at import, exactly as a real process started with the cloud's `env` would.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from localcloud.tls import shared_local_tls

# The same TLS as localcloud/tests' own suite when both run in one session.
_TLS = shared_local_tls()
os.environ["SSL_CERT_FILE"] = str(_TLS.ca_bundle)
os.environ["REQUESTS_CA_BUNDLE"] = str(_TLS.ca_bundle)

import pytest  # noqa: E402
from azure.keyvault.secrets._shared import http_challenge_cache  # noqa: E402

from emulator.rotator_profile import RotatorCloud  # noqa: E402
from rotation.adapters.retrying import GATE  # noqa: E402
from rotation.service.steps import forget_evidence_refusal  # noqa: E402

# Azurite (blob + queue), started once per session by the tests that need storage.
pytest_plugins = ["tests.azurite"]


def _start_cloud(**kwargs: Any) -> RotatorCloud:
    return RotatorCloud(tls=_TLS, **kwargs).start()


@pytest.fixture(scope="session")
def cloud() -> Iterator[RotatorCloud]:
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


@pytest.fixture(autouse=True)
def _reset_shared_cloud(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    # A 429 one test provoked must not pace the next test's calls (the gate is per process), nor a
    # refused sign-in report keep the next test's rotator from reading it.
    GATE.reset()
    forget_evidence_refusal()
    # Key Vault's SDK caches each vault's challenge (its tenant) by host:port for the whole process;
    # a private cloud's port, once it stopped, may be another cloud's (another tenant's) next.
    http_challenge_cache.clear()
    if "cloud" in request.fixturenames:
        shared: RotatorCloud = request.getfixturevalue("cloud")
        shared.admin("DELETE", "/faults")
        shared.admin(
            "PUT",
            "/config",
            {"propagationSeconds": 0, "replicas": 3, "latencyMs": 0, "throttle": {"enabled": False}},
        )


@pytest.fixture
def private_cloud() -> Iterator[Callable[..., RotatorCloud]]:
    """A factory for clouds of a test's own (for clock moves, throttling, odd vault sets)."""
    started: list[RotatorCloud] = []

    def make(**kwargs: Any) -> RotatorCloud:
        local = _start_cloud(**kwargs)
        started.append(local)
        return local

    yield make
    for local in started:
        local.stop()


@pytest.fixture(scope="session")
def ca_bundle() -> str:
    return str(_TLS.ca_bundle)
