"""What the worker does with a message after a reconcile, and when it defers."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import rotation
from functions.disposition import Disposition, defer_delay_seconds, deferral_expired, disposition
from rotation.domain.errors import (
    LockLostError,
    NotManagedError,
    PermissionDeniedError,
    RotationError,
    ServiceUnavailableError,
    ThrottledError,
    ValidationFailedError,
    error_classes,
)
from rotation.domain.model import Outcome, ReconcileRequest

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


def _rotation_sources() -> list[Path]:
    return [*(ROOT / "rotation").rglob("*.py"), *(ROOT / "functions").rglob("*.py"), ROOT / "function_app.py"]


def test_every_error_is_a_class_of_its_own_code() -> None:
    """No bare ``RotationError(..., code=...)``: a code's meaning (retry, HTTP status, user fault) lives
    on its class, so a new failure cannot slip past the worker's and the HTTP edge's decisions."""
    for module in pkgutil.walk_packages(rotation.__path__, "rotation."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for path in _rotation_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "RotationError":
                raise AssertionError(f"{path}:{node.lineno}: raise a RotationError subclass with its own code")
    classes = error_classes()
    codes = [cls.default_code for cls in classes]
    assert {"NotManaged", "Throttled", "LockLost", "ServiceUnavailable", "PasswordLimit"} <= set(codes)
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert cls.why and (cls is RotationError or cls.why != RotationError.why), cls
        assert 400 <= cls.http_status <= 599, cls


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, Disposition.DONE),
        (NotManagedError("kv", "s"), Disposition.GIVE_UP),
        (ValidationFailedError("not proven"), Disposition.GIVE_UP),
        (PermissionDeniedError("Graph", "a role"), Disposition.GIVE_UP),
        (ThrottledError("Graph", 120.0), Disposition.RETRY),
        (LockLostError("lost"), Disposition.RETRY),
        (ServiceUnavailableError("down"), Disposition.RETRY),
        (RotationError("never heard of it"), Disposition.RETRY),
    ],
)
def test_disposition(error: RotationError | None, expected: Disposition) -> None:
    outcome = Outcome("op", "kv-local", "s")
    if error is not None:
        outcome = outcome.with_error(error)
    assert disposition(outcome) is expected


# ---------------------------------------------------------------------------------------- deferral


def test_defer_delay_is_a_lease_period_plus_jitter() -> None:
    rng = random.Random(7)
    delays = {defer_delay_seconds(60, rng=rng) for _ in range(200)}
    assert min(delays) >= 60 and max(delays) <= 90 and len(delays) > 10
    assert 15 <= defer_delay_seconds(15) <= 23


def test_a_request_deferred_for_hours_is_abandoned() -> None:
    now = datetime(2025, 1, 31, 12, tzinfo=UTC)
    fresh = ReconcileRequest.new("kv-local", "s", now=now - timedelta(minutes=5))
    stale = ReconcileRequest.new("kv-local", "s", now=now - timedelta(hours=7))
    assert not deferral_expired(fresh, now)
    assert deferral_expired(stale, now)
