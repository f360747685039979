"""Fixtures for the function app's tests: its functions (indexed once per configuration), settings."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from functions.config import EdgeConfig
from tests.functions.harness import app_functions, app_handlers


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
