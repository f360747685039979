"""HTTP replies: the status URL, and a rotator error as an HTTP status and body."""

from __future__ import annotations

from pathlib import Path

from functions.replies import api_error_from, status_url
from rotation.domain.errors import (
    NotManagedError,
    PermissionDeniedError,
    RotationError,
    ThrottledError,
    UnknownVaultError,
)

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


def test_status_url_is_on_the_callers_host() -> None:
    url = status_url("https://func.example.net/api/secrets/kv-a/s-1/rotate?code=k", "kv-a", "s-1")
    assert url == "https://func.example.net/api/secrets/kv-a/s-1"


def test_rotation_errors_map_to_http_statuses() -> None:
    assert api_error_from(NotManagedError("kv", "s")).status == 404
    assert api_error_from(PermissionDeniedError("Graph", "a role")).status == 502
    throttled = api_error_from(ThrottledError("Graph", 120.0))
    assert throttled.status == 503 and throttled.headers["Retry-After"].isdigit()
    assert api_error_from(RotationError("x")).status == 500


def test_an_unknown_vault_is_answered_without_the_configured_list() -> None:
    # The command line lists the configured vaults (its user configured them); an HTTP caller
    # learns nothing about the configuration.
    error = api_error_from(UnknownVaultError("kv-other", ["kv-local", "kv-second"]))
    assert (error.status, error.code) == (404, "UnknownVault")
    assert "kv-other" in error.message and "kv-local" not in error.message
