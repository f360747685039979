"""Host glue: the queue client the worker re-enqueues with, and message bodies in log lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.host import loggable_body, queue_client_from_env
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


def test_loggable_body_cannot_forge_log_lines() -> None:
    text = loggable_body(b'{"a":1}\nRotationCompleted {"fake":true}')
    assert "\n" not in text and "\\n" in text
    assert loggable_body(b"x" * 5000).endswith("...")
