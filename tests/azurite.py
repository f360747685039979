"""The Azurite storage emulator (Blob + Queue) for the test session, as a pytest plugin.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.azurite"]``. The session
fixture ``azurite`` runs `emulator.azurite.running_azurite` (free loopback ports, in memory, silent)
and exports ``AzureWebJobsStorage`` as a connection string for the whole session.

A missing Azurite fails the tests that need it with what to run: CI installs it with ``npm ci``
(``make test``), so a silent skip would hide a broken setup.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.azurite import Azurite, AzuriteMissing, running_azurite

__all__ = ["Azurite", "azurite"]


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Blob and Queue emulators for the session; ``AzureWebJobsStorage`` points at them."""
    try:
        with running_azurite() as emulator:
            yield emulator
    except AzuriteMissing as missing:
        pytest.fail(str(missing), pytrace=False)
