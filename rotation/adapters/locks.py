"""Locks that keep two workers from reconciling the same secret at once.

`BlobLeaseLock` is the distributed one: a lease on the blob `rotation-locks/{vault}/{secret}` in the
function app's own storage account, renewed in the background for as long as the reconcile runs
(validation can wait minutes; a lease lasts at most 60 s). A crashed holder simply stops renewing, and
the lease expires by itself. The command line's in-process lock is `rotation.service.ports.InProcessLock`
(re-exported here for older imports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from rotation import hosting
from rotation.domain.errors import LockHeld, LockUnavailableError
from rotation.service.ports import HeldLock, InProcessLock

log = logging.getLogger("rotation.lock")

__all__ = ["DEFAULT_LEASE_SECONDS", "LOCK_CONTAINER", "BlobLeaseLock", "InProcessLock"]

LOCK_CONTAINER = "rotation-locks"
DEFAULT_LEASE_SECONDS = hosting.DEFAULT_LEASE_SECONDS


class BlobLeaseLock:
    """The `ReleasableLock` port over a blob lease; `close` closes the storage client."""

    def __init__(
        self,
        service: BlobServiceClient,
        *,
        container: str = LOCK_CONTAINER,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if not 15 <= lease_seconds <= 60:
            raise ValueError("a blob lease lasts 15 to 60 seconds")
        self._service = service
        self._container = container
        self.lease_seconds = lease_seconds
        self._container_ready = False

    async def close(self) -> None:
        await self._service.close()

    async def _ensure_container(self) -> None:
        if self._container_ready:
            return
        with contextlib.suppress(ResourceExistsError):
            await self._service.create_container(self._container)
        self._container_ready = True

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[HeldLock]:
        """Hold the lease on `key` (e.g. `kv-prod/app-secret`) or raise `LockHeld` at once."""
        await self._ensure_container()
        blob = self._service.get_blob_client(self._container, key.lower())
        with contextlib.suppress(ResourceExistsError):
            # An empty blob is the lock's anchor; it stays between rotations.
            await blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob)
        try:
            await lease.acquire(lease_duration=self.lease_seconds)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise LockHeld(key) from exc
            raise LockUnavailableError(
                f"Could not take the lock blob {self._container}/{key}: HTTP {exc.status_code}.",
                "Check AzureWebJobsStorage and the identity's 'Storage Blob Data Owner' role.",
            ) from exc
        held = HeldLock(key)
        renewing = asyncio.create_task(self._renew(lease, held))
        try:
            yield held
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            try:
                await lease.release()
            except HttpResponseError as exc:
                # An expired or taken-over lease cannot be released; the next holder has it already.
                log.warning("Could not release the lease on %s: HTTP %s", key, exc.status_code)

    async def _renew(self, lease: BlobLeaseClient, held: HeldLock) -> None:
        # Renew at a third of the period: two renewals may fail before the lease is lost.
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await lease.renew()
                held.renewals += 1
            except HttpResponseError as exc:
                held.lost = True
                log.error(
                    "Lost the lease on %s (HTTP %s); the reconcile will stop before its next write",
                    held.key,
                    exc.status_code,
                    extra={"custom_dimensions": {"event": "LockLost", "key": held.key}},
                )
                return
            except Exception:  # a transport hiccup: try again at the next interval
                log.warning("Lease renewal for %s failed; retrying", held.key, exc_info=True)
