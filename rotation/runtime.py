"""Wiring: settings → the rotator's own identity → adapters → a `Reconciler`.

Used by the command line and by the function app; tests use it too, with the local cloud's
environment, so production wiring is what gets tested. This is the one module outside
`rotation.adapters` that names an adapter: everything it hands out is typed by the ports
(`rotation.service.ports`), so callers depend on what a client does, not on which SDK does it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

from rotation.adapters.graph import GraphDirectory
from rotation.adapters.keyvault import KeyVaultSecrets
from rotation.adapters.locks import DEFAULT_LEASE_SECONDS, BlobLeaseLock
from rotation.adapters.retrying import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS
from rotation.adapters.storage import STORAGE_CONNECTION as STORAGE_SETTING_NAME
from rotation.adapters.storage import (
    MessageEncoding,
    StorageQueue,
    blob_service_from_env,
    queue_client_from_env,
    storage_configured,
)
from rotation.adapters.token_probe import ClientCredentialsProbe
from rotation.service.ports import Clock, GraphPort, ReleasableLock, RequestQueue, SystemClock, TokenProbe, VaultPort
from rotation.service.reconciler import Reconciler
from rotation.settings import Settings

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "STORAGE_SETTING_NAME",
    "MessageEncoding",
    "Runtime",
    "open_runtime",
    "rotator_credential",
]


def rotator_credential() -> AsyncTokenCredential:
    """The rotator's own identity, never a secret of its own.

    In Azure Functions (and the local cloud) `IDENTITY_ENDPOINT` is set: the managed identity, the
    user-assigned one when `AZURE_CLIENT_ID` names it. Elsewhere (an operator's shell) the default
    chain, e.g. `az login`.
    """
    if os.environ.get("IDENTITY_ENDPOINT"):
        client_id = os.environ.get("AZURE_CLIENT_ID") or None
        # Its token requests get the same socket timeouts as the calls they authorise.
        return ManagedIdentityCredential(
            client_id=client_id, connection_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS
        )
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@dataclass
class Runtime:
    settings: Settings
    credential: AsyncTokenCredential
    directory: GraphPort
    vaults: dict[str, VaultPort]
    probe: TokenProbe
    reconciler: Reconciler

    def open_lock(self, *, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> ReleasableLock:
        """The queue worker's lock: a blob lease in `AzureWebJobsStorage`, as the rotator's identity.

        Not opened with the runtime, because a missing storage setting must not break the command
        line (which then keeps its in-process lock: see `storage_configured`); the caller closes it.
        """
        return BlobLeaseLock(blob_service_from_env(self.credential), lease_seconds=lease_seconds)

    @property
    def storage_configured(self) -> bool:
        """Whether `AzureWebJobsStorage` (or its identity form) is set, so that `open_lock` can work:
        then every writer, the command line included, takes the workers' lease."""
        return storage_configured()

    def open_queue(self, name: str, *, encoding: MessageEncoding) -> RequestQueue:
        """A queue of `AzureWebJobsStorage`, as the rotator's identity; the caller closes it."""
        return StorageQueue(queue_client_from_env(name, encoding=encoding, credential=self.credential))

    async def close(self) -> None:
        for vault in self.vaults.values():
            await vault.close()
        await self.directory.close()
        await self.credential.close()


@asynccontextmanager
async def open_runtime(settings: Settings | None = None, *, clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """The adapters and the reconciler for one invocation. ``clock`` is production's system clock
    unless a caller that moves time (the demo, on the local cloud's clock) passes its own."""
    settings = settings or Settings.from_env()
    credential = rotator_credential()
    budget = float(settings.throttle_retry_seconds)
    directory = GraphDirectory(credential, settings.graph_url, retry_budget_seconds=budget)
    vaults: dict[str, VaultPort] = {
        name: KeyVaultSecrets(name, url, credential, retry_budget_seconds=budget)
        for name, url in settings.vaults.items()
    }
    probe = ClientCredentialsProbe(settings.authority_host, settings.graph_url)
    reconciler = Reconciler(settings, directory, vaults, probe, clock or SystemClock())
    runtime = Runtime(settings, credential, directory, vaults, probe, reconciler)
    try:
        yield runtime
    finally:
        await runtime.close()


async def publish_events(endpoint: str, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Lifecycle events to the Event Grid topic at ``endpoint``, as the rotator's identity (the
    Event Grid SDK loads on first use: most invocations publish nothing)."""
    from rotation.adapters.eventgrid import publish

    async with rotator_credential() as credential:
        return await publish(endpoint, credential, events)
