from __future__ import annotations

import pytest

from rotation.domain.errors import (
    BadRequestError,
    GuardError,
    LockHeld,
    NotManagedError,
    PasswordLimitError,
    PermissionDeniedError,
    PolicyBlockedError,
    RotationError,
    SecretNotFoundError,
    SettingsError,
    TagError,
    ThrottledError,
    UnknownVaultError,
    ValidationFailedError,
)

ALL_ERRORS: list[tuple[RotationError, str]] = [
    (SettingsError(["ROTATION_VAULTS is required"]), "BadSettings"),
    (TagError("kv1", "s1", ["CredentialId='x' is not a GUID"]), "BadTags"),
    (NotManagedError("kv1", "s1"), "NotManaged"),
    (SecretNotFoundError("kv1", "s1"), "SecretNotFound"),
    (UnknownVaultError("kv9", ["kv1", "kv2"]), "UnknownVault"),
    (PermissionDeniedError("Microsoft Graph", "Application.ReadWrite.OwnedBy"), "PermissionDenied"),
    (PolicyBlockedError("Password addition is blocked by policy."), "PolicyBlocked"),
    (ValidationFailedError("Not proven.", aadsts_code=7000215), "ValidationFailed"),
    (ThrottledError("Microsoft Graph", 120.4, 2.128), "Throttled"),
    (GuardError("The value is a GUID.", "Copy the value."), "UnsafeValue"),
    (BadRequestError(["'vault' must be a string"]), "BadRequest"),
    (LockHeld("kv1/s1"), "LockHeld"),
]


@pytest.mark.parametrize(("error", "code"), ALL_ERRORS, ids=[c for _, c in ALL_ERRORS])
def test_every_error_has_a_code_and_an_actionable_message(error: RotationError, code: str) -> None:
    assert isinstance(error, RotationError)
    assert error.code == code
    assert error.remedy, "every error says what to do"
    assert error.remedy in error.message
    assert str(error) == error.message
    data = error.to_dict()
    assert data["code"] == code
    assert data["message"] == error.message


def test_message_joins_problem_and_remedy_with_one_separator() -> None:
    assert RotationError("It broke", "Fix it.").message == "It broke. Fix it."
    assert RotationError("It broke.", "Fix it.").message == "It broke. Fix it."
    assert RotationError("It broke.").message == "It broke."


def test_a_code_is_its_class_and_carries_its_meaning() -> None:
    error = PasswordLimitError("x", "y")
    assert error.code == "PasswordLimit" and not error.retryable and error.http_status == 500
    assert ThrottledError("Graph", 1.0).retryable and ThrottledError.http_status == 503
    assert NotManagedError("kv", "s").user_fault and not ValidationFailedError("x").user_fault


def test_settings_error_lists_each_problem_on_its_own_line() -> None:
    error = SettingsError(["ROTATION_VAULTS is required", "ROTATION_VALIDITY_DAYS='x': expected a number"])
    lines = str(error).splitlines()
    assert lines[0].startswith("2 settings are invalid")
    assert lines[1:] == ["- ROTATION_VAULTS is required", "- ROTATION_VALIDITY_DAYS='x': expected a number"]
    assert error.problems == ("ROTATION_VAULTS is required", "ROTATION_VALIDITY_DAYS='x': expected a number")
    assert str(SettingsError(["one"])).startswith("1 setting is invalid")


def test_permission_denied_names_what_to_grant() -> None:
    error = PermissionDeniedError("Key Vault 'kv1'", "the Key Vault Secrets Officer role", action="write secrets")
    assert "Key Vault Secrets Officer" in str(error)
    assert "to write secrets" in str(error)
    assert error.service == "Key Vault 'kv1'"
    assert error.missing == "the Key Vault Secrets Officer role"


def test_validation_failed_carries_the_aadsts_code() -> None:
    assert ValidationFailedError("x", aadsts_code=700016).to_dict()["aadsts"] == 700016
    assert "aadsts" not in ValidationFailedError("x").to_dict()


def test_unknown_vault_lists_the_known_ones() -> None:
    error = UnknownVaultError("kv9", ["kv2", "kv1"])
    assert "(kv1, kv2)" in str(error)
    assert "ROTATION_VAULTS" in str(error)
    assert "none" in str(UnknownVaultError("kv9", []))


def test_throttled_mentions_retry_after_when_known() -> None:
    assert "2.128 s" in str(ThrottledError("Graph", 10, 2.128))
    assert "asked for" not in str(ThrottledError("Graph", 10))


def test_tag_error_names_vault_secret_and_problems() -> None:
    error = TagError("kv1", "db-password", ["a", "b"])
    assert "'db-password'" in str(error) and "'kv1'" in str(error)
    assert error.problems == ("a", "b")
