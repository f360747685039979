"""Fixtures for the function app's tests: its functions (indexed once), settings, the queue."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import function_app
from tests.functions.harness import app_functions, app_handlers


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """The app's functions by name (``get_functions`` is called once per app, in the harness)."""
    return app_functions()


@pytest.fixture(scope="session")
def handlers() -> dict[str, Any]:
    """The user functions behind them, called exactly as the Python worker would."""
    return app_handlers()


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


@pytest.fixture
def short_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortest lease Azure allows, and deferred messages visible again after a second."""
    monkeypatch.setattr(function_app, "LOCK_LEASE_SECONDS", 15)
    monkeypatch.setattr(function_app, "DEFER_DELAY_SECONDS", 1)
