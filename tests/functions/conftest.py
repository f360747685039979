"""Fixtures for the function app's tests: its functions (indexed once per configuration), settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.rotator_profile import OPERATOR_ROLE, READER_ROLE, ApiClient, RotatorCloud
from functions.config import EdgeConfig
from tests.functions import harness
from tests.functions.harness import app_functions, app_handlers


@dataclass(frozen=True)
class ApiCallers:
    """Callers of the shared cloud's rotator API, each with a token got by azure-identity's
    ClientSecretCredential (as an operator's tool would): an operator, a reader, and an app of the
    tenant with no role on the API."""

    operator: ApiClient
    reader: ApiClient
    stranger: ApiClient
    operator_token: str
    reader_token: str
    stranger_token: str


@pytest.fixture(scope="session")
def api_callers(cloud: RotatorCloud) -> ApiCallers:
    operator = cloud.api_client("on-call operator", OPERATOR_ROLE)
    reader = cloud.api_client("dashboard", READER_ROLE)
    stranger = cloud.api_client("some other app")
    return ApiCallers(
        operator,
        reader,
        stranger,
        cloud.api_token(operator),
        cloud.api_token(reader),
        cloud.api_token(stranger),
    )


@pytest.fixture(autouse=True)
def _operator_bearer(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests on the shared cloud call the HTTP routes as the operator unless they say otherwise."""
    if "cloud" not in request.fixturenames:
        yield
        return
    callers: ApiCallers = request.getfixturevalue("api_callers")
    harness.DEFAULT_BEARER[:] = [callers.operator_token]
    yield
    harness.DEFAULT_BEARER.clear()


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """The app's functions by name (``get_functions`` is called once per app, in the harness)."""
    return app_functions()


@pytest.fixture
def edge_config() -> EdgeConfig:
    """How the triggers run: production's defaults. A test module overrides this fixture to run the
    same functions with another configuration (a short lease, a failing runtime)."""
    return EdgeConfig()


@pytest.fixture
def handlers(edge_config: EdgeConfig) -> dict[str, Any]:
    """The user functions of an app built with ``edge_config``, called exactly as the Python worker would."""
    return app_handlers(edge_config)


@pytest.fixture
def fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """One token success proves a secret (the shared cloud propagates at once by default)."""
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "1")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything at DEBUG, the rotator's decision logs included even if an in-process run of the
    command line raised the ``rotation`` logger's level earlier in the session."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="rotation")
    return caplog
