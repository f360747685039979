"""The Azurite storage emulator (Blob + Queue) for the test session, as a pytest plugin.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.azurite"]``. The session
fixture ``azurite`` runs `localcloud.azurite.running_azurite` (free loopback ports, in memory, silent)
with the repository's ``node_modules/.bin`` (``npm ci``; ``AZURITE_BIN`` overrides it)
and exports ``AzureWebJobsStorage`` as a connection string for the whole session.

A missing Azurite fails the tests that need it with what to run: CI installs it with ``npm ci``
(``make test``), so a silent skip would hide a broken setup.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from localcloud.azurite import Azurite, AzuriteMissing, running_azurite

__all__ = ["Azurite", "azurite", "requests_queue"]

NODE_BIN = Path(__file__).resolve().parents[1] / "node_modules" / ".bin"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Blob and Queue emulators for the session; ``AzureWebJobsStorage`` points at them."""
    try:
        with running_azurite(search=[NODE_BIN]) as emulator:
            yield emulator
    except AzuriteMissing as missing:
        pytest.fail(f"{missing} In this repository `make test` runs `npm ci`.", pytrace=False)


@pytest.fixture
async def requests_queue(azurite: Azurite) -> AsyncIterator[QueueClient]:
    """The ``rotation-requests`` queue (base64, as host.json says), empty at the start and the end."""
    client = QueueClient.from_connection_string(
        azurite.connection_string,
        "rotation-requests",
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()
    await client.clear_messages()
    try:
        yield client
    finally:
        await client.clear_messages()
        await client.close()
