"""Errors a user can act on: one class per code, each carrying its own meaning.

Every error carries a short machine ``code`` (stable: CLI ``--json`` output, HTTP bodies and the
``FailureReason`` tag use it) and a message that says what is wrong *and* what to do about it.
Messages never contain secret values: callers pass names, keyIds, hints and versions only.

What a caller does with an error is a property of its class, not a table elsewhere:

- ``retryable``: whether trying the same request again can help. The queue worker redelivers a
  retryable failure (the poison queue keeps it after ``maxDequeueCount``) and completes the message
  for the others. Anything unclassified is retryable: unknown is more likely transient than permanent.
- ``http_status``: the status of the HTTP reply. Upstream refusals are 502 (the caller did nothing
  wrong; the rotator's identity or a service did), transient ones 503 with ``Retry-After``.
- ``user_fault``: the input or the setup is at fault and nothing happened; the command line prints it
  as one line, like a usage error, instead of an outcome.
- ``why``: one sentence on why it is (not) retryable, for the reference in the README and the tests.
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
    retryable: ClassVar[bool] = True
    http_status: ClassVar[int] = 500
    user_fault: ClassVar[bool] = False
    why: ClassVar[str] = "an unclassified rotator error"

    def __init__(self, problem: str, remedy: str | None = None) -> None:
        self.problem = problem
        self.remedy = remedy
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return self.default_code

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
    user_fault = True
    why = "settings are fixed by a redeploy; the poison queue keeps the message until then"

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
    retryable = False
    http_status = 409
    user_fault = True
    why = "the tags are unusable; acting on them could remove the working credential"

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
    retryable = False
    http_status = 404
    user_fault = True
    why = "the secret has no ProviderAddress tag; a human must tag it"

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


def bind_command(vault: str, secret: str, app_id: str, *, service_principal: bool = False) -> str:
    """The one command that binds a secret to its app (run by an owner of the app or an admin), or to
    the app's service principal (run by an owner of the service principal or an admin)."""
    command = f"python -m rotation adopt {vault} {secret} --app {app_id}"
    return f"{command} --service-principal" if service_principal else command


class NotBoundError(RotationError):
    """The secret names an app whose owners have not bound it: the app's ``tags`` do not name this
    vault host and secret, so the rotator does nothing at all for it (a Key Vault tag is no authority)."""

    default_code = "NotBound"
    retryable = False
    http_status = 409
    user_fault = True
    why = "the app's owners have not bound this secret to the app; only they (or an admin) can"

    def __init__(self, vault: str, secret: str, app_id: str, host: str, *, on: str = "application") -> None:
        self.vault = vault
        self.secret = secret
        self.app_id = app_id
        self.host = host
        self.command = bind_command(vault, secret, app_id, service_principal=on == "servicePrincipal")
        if on == "servicePrincipal":
            # The service principal's owners control its passwords, so only its own tags bind it:
            # a binding on the app registration does not count here.
            super().__init__(
                f"Secret '{secret}' in vault '{vault}' ({host}) is not bound to the service principal of "
                f"application {app_id}: the service principal's tags do not name it (a binding on the app "
                "registration does not count for a service principal's password), so the rotator leaves it alone.",
                f"An owner of the service principal (or an admin) binds it with: {self.command} (or by hand, "
                f"appending to its tags: az ad sp update --id {app_id} --set tags=<its tags plus "
                f"'rotator-sp-binding:{host}/{secret.lower()}'>).",
            )
            return
        super().__init__(
            f"Secret '{secret}' in vault '{vault}' ({host}) is not bound to application {app_id}: the app's "
            "tags do not name it, so the rotator leaves it alone.",
            f"An owner of the app (or an admin) binds it with: {self.command} (or by hand, appending to "
            f"the app's tags: az ad app update --id {app_id} --set tags=<its tags plus "
            f"'rotator-binding:{host}/{secret.lower()}'>).",
        )

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["bindCommand"] = self.command
        return data


class OwnIdentityError(RotationError):
    """``ProviderAddress`` names the rotator's own identity: it never rotates the secret it signs in with."""

    default_code = "OwnIdentity"
    retryable = False
    http_status = 409
    user_fault = True
    why = "the secret names the rotator's own identity, which it never rotates"

    def __init__(self, vault: str, secret: str, app_id: str) -> None:
        self.vault = vault
        self.secret = secret
        super().__init__(
            f"Secret '{secret}' in vault '{vault}' names application {app_id}, the rotator's own identity; "
            "the rotator never rotates its own credentials.",
            "Remove the ProviderAddress tag, or fix it to name the app whose secret this is.",
        )


class BindingDeniedError(RotationError):
    """The caller of ``adopt`` may not write the app's tags (not an owner, not an admin): 403."""

    default_code = "BindingDenied"
    retryable = False
    http_status = 403
    user_fault = True
    why = "only the app's owners or a directory admin may bind a secret to it"

    def __init__(self, app_id: str, command: str, by_hand: str, *, service_principal: bool = False) -> None:
        self.app_id = app_id
        target = f"the service principal of application {app_id}" if service_principal else f"application {app_id}"
        owner = f"the service principal of app {app_id}" if service_principal else f"app {app_id}"
        super().__init__(
            f"You may not bind a secret to {target}: you must be an owner of {owner} or an "
            "admin (Microsoft Graph answered 403).",
            f"Nothing was written. Ask an owner or an admin to run: {command} (or by hand: {by_hand}).",
        )


class SecretNotFoundError(RotationError):
    """The secret named in a request does not exist (or has no enabled version)."""

    default_code = "SecretNotFound"
    retryable = False
    http_status = 404
    user_fault = True
    why = "the secret does not exist (or its latest version is disabled)"

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
    retryable = False
    http_status = 404
    user_fault = True
    why = "the vault is not in ROTATION_VAULTS; a configuration change is needed"

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
    retryable = False
    http_status = 502
    user_fault = True
    why = (
        "the rotator's identity lacks a role; RBAC changes take minutes, longer than the redelivery window, "
        "and the hourly sweep retries once it is granted"
    )

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
    retryable = False
    why = "an app management policy forbids the credential; an administrator must act"

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
    retryable = False
    why = (
        "the new credential was rolled back; retrying at once would create another credential that fails the "
        "same way (see the AADSTS remedy); the sweep retries on its cadence"
    )

    def __init__(
        self, problem: str, remedy: str | None = None, *, aadsts_code: int | None = None, outage: bool = False
    ) -> None:
        self.aadsts_code = aadsts_code
        #: The validation ended on the network or an Entra outage: it says nothing about the secret.
        self.outage = outage
        super().__init__(
            problem,
            remedy or "The previous credential is still valid; see the AADSTS remedy and run the rotation again.",
        )

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.aadsts_code is not None:
            data["aadsts"] = self.aadsts_code
        return data


class EvidenceUnavailableError(RotationError):
    """``ROTATION_RETIREMENT_EVIDENCE=required`` and the sign-in report cannot be read: nothing retires."""

    default_code = "EvidenceUnavailable"
    retryable = False
    why = "the report stays unreadable until a person grants the permission (or the licence); the sweep tries again"

    def __init__(self, app_id: str) -> None:
        super().__init__(
            f"Retirement waits for sign-in evidence (ROTATION_RETIREMENT_EVIDENCE=required), but Microsoft Graph "
            f"will not show the rotator the sign-in report for application {app_id}; nothing was retired.",
            "Grant the rotator's identity the Graph application permission AuditLog.Read.All (the tenant needs "
            "Entra ID P1 or P2), or set ROTATION_RETIREMENT_EVIDENCE=auto to fall back to the grace period.",
        )


class SupersededError(RotationError):
    """Someone else wrote a newer version of the secret while this run worked on it.

    The run stops before its next write: it never disables the latest version, nor one newer than
    its own, and the newer writer (a person, or a concurrent run) knows what that version holds.
    """

    default_code = "Superseded"
    http_status = 409
    why = (
        "another writer changed the secret during the run; the next reconcile decides afresh from the "
        "version that writer left"
    )

    def __init__(self, vault: str, secret: str, own: str | None, latest: str | None) -> None:
        super().__init__(
            f"Secret '{secret}' in vault '{vault}' got a newer version ({latest}) than the one this run "
            f"acted on ({own}) while the run was working; it stopped before disabling or retiring anything.",
            "Nothing is needed if the newer version is intended (a person or another rotation wrote it); "
            "the next reconcile continues from it.",
        )


class ThrottledError(RotationError):
    """A service kept answering 429 / ``Directory_ConcurrencyViolation`` beyond the retry budget."""

    default_code = "Throttled"
    http_status = 503
    why = "the service asked us to slow down; the redelivery delay is the back-off"

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
    retryable = False
    why = "Graph returned something that is not a secret value; never stored, never retried blindly"


class BadRequestError(RotationError):
    """A reconcile request (queue message, HTTP body, CLI input) is malformed."""

    default_code = "BadRequest"
    retryable = False
    http_status = 400
    user_fault = True
    why = "the message itself is invalid; it will never parse differently"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(
            "Invalid reconcile request: " + "; ".join(self.problems) + ".",
            "Send a JSON object with 'vault' and 'secret' (and optionally 'reason' and "
            "'mode': 'normal' or 'emergency').",
        )


class InvalidNameError(BadRequestError):
    """A vault or secret name given by a person (an HTTP route, a command-line argument) that Key
    Vault would refuse. Same code and status as :class:`BadRequestError`; only the message differs:
    it states the naming rule instead of describing a queue message."""

    def __init__(self, problem: str) -> None:
        self.problems = (problem,)
        RotationError.__init__(self, problem)


class LockHeld(RotationError):
    """Another worker is reconciling the same secret right now; this one should stand down."""

    default_code = "LockHeld"
    http_status = 409
    why = "another worker holds the secret's lock; the worker defers the message without spending an attempt"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Another worker is already reconciling '{key}'.",
            "Nothing to do: that worker converges the secret; retry later if needed.",
        )


class ApplicationNotFoundError(RotationError):
    """``ProviderAddress`` names an app the rotator cannot see (absent, or not owned by it)."""

    default_code = "ApplicationNotFound"
    retryable = False
    user_fault = True
    why = "ProviderAddress names no app the rotator owns; a human must fix the tag or ownership"


class PasswordLifetimePolicyError(PolicyBlockedError):
    """addPassword refused the requested lifetime; nothing was created, a shorter one may pass."""


class PasswordLimitError(RotationError):
    """The app already holds the most passwords it may (apps open to personal accounts: two)."""

    default_code = "PasswordLimit"
    retryable = False
    why = "the app holds the most passwords it may; a human must remove an unused one"


class SecretDisabledError(RotationError):
    """The version the rotator needs is disabled."""

    default_code = "SecretDisabled"
    retryable = False
    http_status = 409
    why = "the version needed is disabled; a human must enable it"


class SecretSoftDeletedError(RotationError):
    """The secret is deleted but recoverable: its name cannot be reused until recovered or purged."""

    default_code = "SecretSoftDeleted"
    retryable = False
    http_status = 409
    why = "the secret is soft-deleted; a human must recover or purge it"


class AlreadyManagedError(RotationError):
    """``adopt`` found the secret managed for another app already (never a reconcile outcome)."""

    default_code = "AlreadyManaged"
    retryable = False
    why = "the command line's adopt found the secret managed already (never a reconcile outcome)"


class KeyVaultError(RotationError):
    """Key Vault answered something the rotator does not expect."""

    default_code = "KeyVaultError"
    http_status = 502
    why = "an unexpected Key Vault answer; worth another try before a human looks"


class NoValueError(RotationError):
    """Key Vault returned a secret bundle without a value."""

    default_code = "NoValue"
    why = "Key Vault returned a bundle without a value; not expected to persist"


class GraphError(RotationError):
    """Microsoft Graph answered something the rotator does not expect."""

    default_code = "GraphError"
    http_status = 502
    why = "an unexpected Graph answer; worth another try before a human looks"


class ServiceUnavailableError(RotationError):
    """5xx or transport failures beyond the in-process retry budget."""

    default_code = "ServiceUnavailable"
    http_status = 503
    why = "5xx or transport failures beyond the in-process retry budget"


class LockLostError(RotationError):
    """The lease on the secret could not be renewed mid-reconcile; the run stopped before its next write."""

    default_code = "LockLost"
    why = "the lease renewal failed mid-reconcile; the next attempt continues from the recorded state"


class LockUnavailableError(RotationError):
    """The lock's storage account did not answer, or refused the lease for a reason other than a holder."""

    default_code = "LockUnavailable"
    why = "the lock's storage account did not answer"


class OutputError(RotationError):
    """The command line could not write a file it was asked to write."""

    default_code = "OutputError"
    retryable = False
    user_fault = True
    why = "the output path is not writable; the caller chooses another"


# --- managed certificates (issue 15) --------------------------------------------------------------


def certificate_reset_command(app_id: str, certificate: str, vault_name: str) -> str:
    """The one command that puts a Key Vault certificate on an app, by a person allowed to (``--append``
    keeps the app's other credentials)."""
    return f"az ad app credential reset --id {app_id} --cert {certificate} --keyvault {vault_name} --append"


class NoUsableCertificateError(RotationError):
    """No version of the managed certificate holds a key the app accepts now (first adoption: its
    thumbprint is not on the app; or every such key has expired or been removed). Graph's ``addKey``
    needs a proof signed by one, so only a person can add the certificate, once."""

    default_code = "NoUsableCertificate"
    retryable = False
    http_status = 409
    user_fault = True
    why = "addKey needs a proof signed by a certificate the app accepts; only a person can add the first one"

    def __init__(self, vault: str, certificate: str, app_id: str, vault_name: str, reason: str) -> None:
        self.vault = vault
        self.certificate = certificate
        self.app_id = app_id
        self.command = certificate_reset_command(app_id, certificate, vault_name)
        super().__init__(
            f"Certificate '{certificate}' in vault '{vault}' cannot be rotated for application {app_id}: {reason}. "
            "Graph's addKey needs a proof signed by a certificate the app already accepts, so nothing was changed.",
            f"Once, a person who may change the app adds the certificate's current version: {self.command} "
            f"(or Graph: POST /applications/{{object id}}/addKey, or the portal's Certificates & secrets); "
            "the rotator takes over from the next run.",
        )

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["command"] = self.command
        return data


class ProofRefusedError(RotationError):
    """Graph refused an addKey/removeKey proof of possession (401 ``Authentication_MissingOrMalformed``):
    its signature, audience, issuer or lifetime did not check out, e.g. a clock far off Entra's."""

    default_code = "ProofRefused"
    retryable = False
    http_status = 502
    why = "Graph refused the signed proof; the same proof would be refused again, the sweep tries a fresh one"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"Microsoft Graph refused the proof of possession to {what} (HTTP 401: its signature, audience, "
            "issuer or lifetime did not check out); nothing was changed.",
            "Check that the rotator's clock is right and that the signing certificate is still valid on the app; "
            "the next run signs a fresh proof.",
        )


class CertificateNotFoundError(RotationError):
    """The certificate named in a request does not exist in the vault."""

    default_code = "CertificateNotFound"
    retryable = False
    http_status = 404
    user_fault = True
    why = "the certificate does not exist; a human must create it or fix the name"

    def __init__(self, vault: str, certificate: str) -> None:
        self.vault = vault
        self.certificate = certificate
        super().__init__(
            f"Certificate '{certificate}' was not found in vault '{vault}'.",
            "Check the name; a managed certificate is a Key Vault certificate whose latest version is tagged "
            "ProviderAddress=<the app's Application (client) ID>.",
        )


class CertificatesDisabledError(RotationError):
    """A request names a certificate, and ``ROTATION_CERTIFICATES`` is off."""

    default_code = "CertificatesDisabled"
    retryable = False
    http_status = 409
    user_fault = True
    why = "certificate rotation is off (ROTATION_CERTIFICATES); turning it on needs two Key Vault roles"

    def __init__(self, vault: str, certificate: str) -> None:
        super().__init__(
            f"Certificate '{certificate}' in vault '{vault}' is not rotated: ROTATION_CERTIFICATES is off.",
            "Deploy with rotationCertificates=true (it grants the rotator 'Key Vault Certificates Officer' and "
            "'Key Vault Crypto User' on the vault and sets ROTATION_CERTIFICATES=true).",
        )


def error_classes() -> list[type[RotationError]]:
    """Every error class with a code of its own (the base included), for reference and tests."""
    found: list[type[RotationError]] = []
    pending: list[type[RotationError]] = [RotationError]
    while pending:
        cls = pending.pop()
        if all(known.default_code != cls.default_code for known in found):
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.default_code)
