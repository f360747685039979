"""Errors a user can act on.

Every error carries a short machine ``code`` (stable: CLI ``--json`` output, HTTP bodies and the
``FailureReason`` tag use it) and a message that says what is wrong *and* what to do about it.
Messages never contain secret values: callers pass names, keyIds, hints and versions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar


class RotationError(Exception):
    """Base of every error the rotator raises on purpose.

    ``problem`` says what is wrong, ``remedy`` what to do; ``str(error)`` joins them so that a bare
    ``log.error("%s", err)`` is already actionable.
    """

    default_code: ClassVar[str] = "RotationError"

    def __init__(self, problem: str, remedy: str | None = None, *, code: str | None = None) -> None:
        self.problem = problem
        self.remedy = remedy
        self.code = code or self.default_code
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if not self.remedy:
            return self.problem
        separator = " " if self.problem.endswith((".", ":", "!", "?")) else ". "
        return f"{self.problem}{separator}{self.remedy}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for HTTP responses and ``--json`` output."""
        return {"code": self.code, "message": self.message}


class SettingsError(RotationError):
    """One or more environment settings are invalid; ``problems`` has one line per bad variable.

    All problems are collected before raising so an operator fixes the app settings in one go
    instead of redeploying once per typo.
    """

    default_code = "BadSettings"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = len(self.problems)
        noun = "setting is" if count == 1 else "settings are"
        super().__init__(f"{count} {noun} invalid", "fix the app settings (or local.settings.json) and restart")

    @property
    def message(self) -> str:
        # One line per bad variable, after the summary, so each can be fixed without re-reading.
        lines = "".join(f"\n- {p}" for p in self.problems)
        return f"{self.problem}; {self.remedy}:{lines}"


class TagError(RotationError):
    """A managed secret's tags are malformed or contradict each other.

    The rotator refuses to act on such a secret: guessing could remove the working credential.
    """

    default_code = "BadTags"

    def __init__(self, vault: str, secret: str, problems: Sequence[str]) -> None:
        self.vault = vault
        self.secret = secret
        self.problems: tuple[str, ...] = tuple(problems)
        lines = "; ".join(self.problems)
        super().__init__(
            f"Secret '{secret}' in vault '{vault}' has unusable rotation tags: {lines}.",
            "Correct the tags on the secret's latest version (Key Vault > Secrets > the secret > "
            "current version > Tags), then run the rotation again.",
        )


class NotManagedError(RotationError):
    """The secret exists but carries no ``ProviderAddress`` tag, so the rotator must leave it alone."""

    default_code = "NotManaged"

    def __init__(self, vault: str, secret: str, detail: str | None = None) -> None:
        self.vault = vault
        self.secret = secret
        problem = f"Secret '{secret}' in vault '{vault}' is not managed by the rotator"
        problem += f" ({detail})." if detail else "."
        super().__init__(
            problem,
            "To manage it, tag its latest version with ProviderAddress=<the app's Application (client) ID>"
            " (and TenantId if the app lives in another tenant).",
        )


class SecretNotFoundError(RotationError):
    """The secret named in a request does not exist (or has no enabled version)."""

    default_code = "SecretNotFound"

    def __init__(self, vault: str, secret: str) -> None:
        self.vault = vault
        self.secret = secret
        super().__init__(
            f"Secret '{secret}' was not found in vault '{vault}' (or its latest version is disabled).",
            "Check the secret name; create the secret with the app's current client secret value and a "
            "ProviderAddress tag to bring it under management.",
        )


class UnknownVaultError(RotationError):
    """A request names a vault that is not in ``ROTATION_VAULTS``."""

    default_code = "UnknownVault"

    def __init__(self, vault: str, known: Iterable[str]) -> None:
        self.vault = vault
        self.known: tuple[str, ...] = tuple(sorted(known))
        listed = ", ".join(self.known) or "none"
        super().__init__(
            f"Vault '{vault}' is not one of the vaults this rotator manages ({listed}).",
            "Add it to ROTATION_VAULTS (and grant the rotator's identity access to it), or fix the name.",
        )


class PermissionDeniedError(RotationError):
    """The rotator's own identity lacks a permission; ``missing`` names it precisely."""

    default_code = "PermissionDenied"

    def __init__(self, service: str, missing: str, *, action: str | None = None) -> None:
        self.service = service
        self.missing = missing
        self.action = action
        what = f" to {action}" if action else ""
        super().__init__(
            f"The rotator's identity was denied access{what} in {service}.",
            f"Grant it {missing}, wait a few minutes for the assignment to take effect, and run again.",
        )


class PolicyBlockedError(RotationError):
    """An app management policy forbids the credential the rotator needs (addition or lifetime)."""

    default_code = "PolicyBlocked"

    def __init__(self, problem: str, remedy: str | None = None) -> None:
        super().__init__(
            problem,
            remedy
            or "Ask an Entra administrator to exempt this app from the app management policy "
            "(or the rotator's identity via excludeActors), or move the app to certificate credentials.",
        )


class ValidationFailedError(RotationError):
    """The new secret could not be proven to work; the rotation was (or must be) rolled back.

    ``aadsts_code`` is the last AADSTS code seen, when there was one; the AADSTS catalogue turns it
    into a cause and a remedy.
    """

    default_code = "ValidationFailed"

    def __init__(self, problem: str, remedy: str | None = None, *, aadsts_code: int | None = None) -> None:
        self.aadsts_code = aadsts_code
        super().__init__(
            problem,
            remedy or "The previous credential is still valid; see the AADSTS remedy and run the rotation again.",
        )

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.aadsts_code is not None:
            data["aadsts"] = self.aadsts_code
        return data


class ThrottledError(RotationError):
    """A service kept answering 429 / ``Directory_ConcurrencyViolation`` beyond the retry budget."""

    default_code = "Throttled"

    def __init__(self, service: str, waited_seconds: float, retry_after: float | None = None) -> None:
        self.service = service
        self.waited_seconds = waited_seconds
        self.retry_after = retry_after
        hint = f" (it asked for another {retry_after:g} s)" if retry_after is not None else ""
        super().__init__(
            f"{service} is throttling the rotator; gave up after {waited_seconds:.0f} s{hint}.",
            "Nothing was lost: the next sweep or a queue retry continues where this stopped. If it persists, "
            "lower ROTATION_SWEEP_CONCURRENCY or raise ROTATION_THROTTLE_RETRY_SECONDS.",
        )


class GuardError(RotationError):
    """A value about to be written to Key Vault is not plausibly a client secret value.

    Typical cause: the Secret *ID* (a GUID) was copied instead of the secret *value*.
    """

    default_code = "UnsafeValue"


class BadRequestError(RotationError):
    """A reconcile request (queue message, HTTP body, CLI input) is malformed."""

    default_code = "BadRequest"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(
            "Invalid reconcile request: " + "; ".join(self.problems) + ".",
            "Send a JSON object with 'vault' and 'secret' (and optionally 'reason' and "
            "'mode': 'normal' or 'emergency').",
        )


class LockHeld(RotationError):
    """Another worker is reconciling the same secret right now; this one should stand down."""

    default_code = "LockHeld"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Another worker is already reconciling '{key}'.",
            "Nothing to do: that worker converges the secret; retry later if needed.",
        )
