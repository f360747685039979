"""The queue message (a ReconcileRequest): camelCase on the wire, and the snake_case shape of earlier
versions still read, so messages enqueued before an upgrade are worked after it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rotation.domain.errors import BadRequestError
from rotation.domain.model import ReconcileRequest

NOW = datetime(2025, 1, 31, 12, tzinfo=UTC)
OPERATION = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
CAMEL = {
    "vault": "kv-local",
    "secret": "app-secret",
    "reason": "sweep: expires in 12 days",
    "mode": "forced",
    "operationId": OPERATION,
    "requestedAt": "2025-01-31T12:00:00Z",
}
SNAKE = {
    "vault": "kv-local",
    "secret": "app-secret",
    "reason": "sweep: expires in 12 days",
    "mode": "forced",
    "operation_id": OPERATION,
    "requested_at": "2025-01-31T12:00:00Z",
}


def expected() -> ReconcileRequest:
    return ReconcileRequest.new(
        "kv-local", "app-secret", now=NOW, reason="sweep: expires in 12 days", mode="forced", operation_id=OPERATION
    )


def test_the_message_is_written_in_camel_case() -> None:
    assert json.loads(expected().to_json()) == CAMEL


@pytest.mark.parametrize("shape", [CAMEL, SNAKE], ids=["camelCase", "snake_case (before the upgrade)"])
def test_both_shapes_are_read(shape: dict[str, str]) -> None:
    assert ReconcileRequest.from_json(json.dumps(shape)) == expected()
    assert ReconcileRequest.from_json(json.dumps(shape).encode()) == expected()


def test_a_field_given_in_both_casings_is_refused() -> None:
    with pytest.raises(BadRequestError, match="'operationId' is given twice"):
        ReconcileRequest.from_message({**CAMEL, "operation_id": OPERATION})


def test_missing_fields_are_named_as_written_now() -> None:
    with pytest.raises(BadRequestError, match="missing field\\(s\\) 'operationId', 'requestedAt'"):
        ReconcileRequest.from_message({k: v for k, v in CAMEL.items() if k not in ("operationId", "requestedAt")})
