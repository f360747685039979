"""Host glue: the queue client the worker re-enqueues with, and message bodies in log lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity.aio import ManagedIdentityCredential

from functions.host import loggable_body
from rotation.adapters.storage import blob_service_from_env, queue_client_from_env
from rotation.domain.errors import (
    RotationError,
)

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


def test_queue_client_follows_the_storage_setting() -> None:
    client = queue_client_from_env(
        "q", encoding="base64", credential=None, env={"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    )
    assert client.queue_name == "q" and "127.0.0.1:10001" in client.url
    with pytest.raises(RotationError) as caught:
        queue_client_from_env("q", encoding="none", credential=None, env={})
    assert caught.value.code == "BadSettings"


def test_both_storage_services_follow_the_same_setting() -> None:
    identity = {"AzureWebJobsStorage__accountName": "strotator"}
    credential = ManagedIdentityCredential()  # built only: no request is sent
    blob = blob_service_from_env(credential, identity)
    queue = queue_client_from_env("q", encoding="none", credential=credential, env=identity)
    assert blob.url == "https://strotator.blob.core.windows.net/"
    assert queue.url == "https://strotator.queue.core.windows.net/q"
    uris = {"AzureWebJobsStorage__blobServiceUri": "https://b.example/", "AzureWebJobsStorage__accountName": "x"}
    assert blob_service_from_env(credential, uris).url == "https://b.example/"
    with pytest.raises(RotationError, match="rotation locks"):
        blob_service_from_env(None, identity)


def test_loggable_body_cannot_forge_log_lines() -> None:
    text = loggable_body(b'{"a":1}\nRotationCompleted {"fake":true}')
    assert "\n" not in text and "\\n" in text
    assert loggable_body(b"x" * 5000).endswith("...")
