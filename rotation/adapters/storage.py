"""The function app's own storage account (`AzureWebJobsStorage`), reached the way Azure Functions
itself reaches it: a connection string (Azurite locally: `UseDevelopmentStorage=true`) or the
identity-based form (`AzureWebJobsStorage__accountName`, or `__blobServiceUri` / `__queueServiceUri`)
with the app's managed identity.

The blob service holds the per-secret leases (`rotation.adapters.locks`); the queue service holds the
reconcile requests, which the worker re-enqueues when it defers one (`StorageQueue`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any, Literal

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from rotation.domain.errors import SettingsError
from rotation.hosting import STORAGE_CONNECTION, MessageEncoding

__all__ = ["STORAGE_CONNECTION", "MessageEncoding"]


def _account(service: Literal["blob", "queue"], env: Mapping[str, str], credential: object, purpose: str) -> str:
    """The connection string, or the service URI for identity-based access; one clear settings error
    when neither is configured."""
    connection = env.get(STORAGE_CONNECTION, "").strip()
    if connection:
        return connection
    uri = env.get(f"{STORAGE_CONNECTION}__{service}ServiceUri", "").strip()
    account = env.get(f"{STORAGE_CONNECTION}__accountName", "").strip()
    if not uri and account:
        uri = f"https://{account}.{service}.core.windows.net"
    if not uri or credential is None:
        raise SettingsError(
            [
                f"No storage account is configured for the {purpose}: set {STORAGE_CONNECTION} (a connection "
                f"string; UseDevelopmentStorage=true with Azurite) or {STORAGE_CONNECTION}__accountName for "
                "identity-based access."
            ]
        )
    return uri


def storage_configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether `AzureWebJobsStorage` is configured in either form (connection string, or the identity
    form's account name or service URI), i.e. whether this process can reach the workers' leases."""
    source = os.environ if env is None else env
    names = (STORAGE_CONNECTION, f"{STORAGE_CONNECTION}__accountName", f"{STORAGE_CONNECTION}__blobServiceUri")
    return any(source.get(name, "").strip() for name in names)


def _is_uri(value: str) -> bool:
    return value.startswith("https://")


def blob_service_from_env(
    credential: AsyncTokenCredential | None, env: Mapping[str, str] | None = None
) -> BlobServiceClient:
    """The blob service of `AzureWebJobsStorage` (the rotation locks live there)."""
    target = _account("blob", os.environ if env is None else env, credential, "rotation locks")
    if _is_uri(target):
        return BlobServiceClient(target, credential=credential)
    return BlobServiceClient.from_connection_string(target)


def queue_client_from_env(
    queue: str,
    *,
    encoding: MessageEncoding,
    credential: AsyncTokenCredential | None,
    env: Mapping[str, str] | None = None,
) -> QueueClient:
    """A client for ``queue`` in `AzureWebJobsStorage`. A message the app writes itself must be encoded
    the way the host decodes the ones it triggers on (host.json's ``messageEncoding``)."""
    policies: dict[str, Any] = (
        {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": BinaryBase64DecodePolicy()}
        if encoding == "base64"
        else {}
    )
    target = _account("queue", os.environ if env is None else env, credential, "rotation queue")
    if _is_uri(target):
        return QueueClient(target, queue, credential=credential, **policies)
    return QueueClient.from_connection_string(target, queue, **policies)


class StorageQueue:
    """The `RequestQueue` port over one Azure Storage queue."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    async def send(self, message: str, *, visibility_timeout: int) -> None:
        try:
            await self._client.send_message(message, visibility_timeout=visibility_timeout)
        except ResourceNotFoundError:
            # The host creates the queue with the first output binding write; a fresh account may not
            # have it yet.
            with contextlib.suppress(ResourceExistsError):
                await self._client.create_queue()
            await self._client.send_message(message, visibility_timeout=visibility_timeout)

    async def close(self) -> None:
        await self._client.close()
