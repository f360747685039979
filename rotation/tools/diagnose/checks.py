"""The checks: pure functions from the gathered facts (:class:`.facts.Observed`) to results.

No I/O here, and nothing reads the secret value except :func:`value_shape`, which reduces it to
facts that reveal no more than Graph's ``hint`` (its length, its first three characters, its shape).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from rotation.domain import aadsts, policy
from rotation.domain.errors import RotationError, TagError, bind_command
from rotation.domain.model import (
    ManagedSecret,
    RotationState,
    Sensitive,
    Tag,
    binding_prefix,
    format_utc,
    is_guid,
    is_valid_tenant_id,
)
from rotation.domain.state import tagged_credential_id
from rotation.redact import registry
from rotation.tools.common import shorten
from rotation.tools.diagnose.certificate_checks import certificate_checks
from rotation.tools.diagnose.certificate_value import StoredCertificate, stored_certificate
from rotation.tools.diagnose.credentials import (
    check_app_credentials,
    check_credential_match,
    check_credential_validity,
)
from rotation.tools.diagnose.facts import APP_ONLY_FORBIDDEN_TENANTS, AppLookup, Observed
from rotation.tools.diagnose.results import Check, Diagnosis, Status, ValueShape
from rotation.tools.diagnose.usage_checks import check_consumer_credential
from rotation.tools.diagnose.wording import days_between, skip, stripped, when

#: The default sweep runs hourly and retires at its first run after RetireAfter; two missed runs
#: mean something keeps failing, not that the sweep has not come round yet.
RETIREMENT_SLACK: Final = timedelta(hours=2)
MAX_SECRET_LENGTH: Final = 64  # Entra documents client secret values as 16-64 characters
CURRENT_LENGTH: Final = 40
_CURRENT_MARKER: Final = "8Q~"
_BARE_OR_BRACED_GUID = re.compile(
    r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$"
)
# Characters a shell, a .env file or a YAML/JSON template rewrites or cuts at when the value is
# pasted unquoted: variable expansion ($), command substitution (`), history expansion (!), quotes,
# escapes (\) and Windows' %VAR% expansion.
_SHELL_CHARACTERS: Final = {
    "$": "variable expansion",
    "`": "command substitution",
    "!": "history expansion",
    '"': "quoting",
    "'": "quoting",
    "\\": "escaping",
    "%": "%VAR% expansion and URL escapes",
}
# Characters that change meaning in a hand-built x-www-form-urlencoded token request unless the
# value is URL-encoded (SDKs encode it; curl -d and hand-written HTTP clients often do not).
_FORM_CHARACTERS: Final = {"+": "becomes a space", "&": "ends the field", "=": "splits the field", "#": "ends the URL"}


def value_shape(value: Sensitive) -> ValueShape:
    """Shape facts about ``value``; the only function here that looks at the value itself."""
    text = value.reveal()
    core = text.strip()
    return ValueShape(
        length=len(text),
        hint=core[:3],
        empty=not core,
        guid=bool(_BARE_OR_BRACED_GUID.match(core)),
        surrounding_whitespace=text != core,
        leading_whitespace=text != text.lstrip(),
        trailing_whitespace=text != text.rstrip(),
        trailing_newline=text.endswith(("\n", "\r")),
        inner_whitespace_or_control=any(ch.isspace() or not ch.isprintable() for ch in core),
        current_format=core[3:6] == _CURRENT_MARKER,
        shell_characters=tuple(ch for ch in _SHELL_CHARACTERS if ch in core),
        form_characters=tuple(ch for ch in _FORM_CHARACTERS if ch in core),
    )


# --------------------------------------------------------------------------------------------------
# Checks: Key Vault


def check_secret_exists(seen: Observed) -> Check:
    title = "Secret exists (and is not soft-deleted)"
    if seen.version is not None:
        return Check(
            "secret.exists",
            title,
            Status.PASS,
            f"latest version {seen.version.version} created {when(seen.version.created)}",
        )
    if seen.deleted is not None:
        return Check(
            "secret.exists",
            title,
            Status.FAIL,
            f"the secret was soft-deleted on {when(seen.deleted.deleted)}; it is purged for good on "
            f"{when(seen.deleted.scheduled_purge)}",
            "A deleted secret reads as 404 SecretNotFound for every consumer, and its name cannot be reused "
            "while it is recoverable.",
            f"Recover it with every version and tag (az keyvault secret recover --vault-name {seen.vault} "
            f"--name {seen.secret}), or purge it (az keyvault secret purge ...) and create it again with the "
            "app's current secret value.",
        )
    if seen.read_problem is not None:
        return Check(
            "secret.exists",
            title,
            Status.FAIL,
            seen.read_problem,
            "The rotator's identity could not read the secret, so nothing about it can be checked.",
            "Grant the identity that runs the diagnosis the 'Key Vault Secrets User' (read) or "
            "'Key Vault Secrets Officer' role on the vault, then run the diagnosis again.",
        )
    deleted_note = f" (soft-delete state unknown: {seen.deleted_problem})" if seen.deleted_problem else ""
    return Check(
        "secret.exists",
        title,
        Status.FAIL,
        f"no secret named '{seen.secret}' in vault '{seen.vault}', and none deleted{deleted_note}",
        "Consumers reading this name get 404 SecretNotFound: the name is misspelt, the consumer reads "
        "another vault, or the secret was never created.",
        "Check the name and the vault the consumer is configured with; create the secret with the app's "
        "current client secret value if it is really missing.",
    )


def check_secret_enabled(seen: Observed) -> Check:
    title = "Latest version is enabled"
    if seen.version is None:
        return skip("secret.enabled", title, "the secret was not read")
    if seen.version.enabled:
        return Check("secret.enabled", title, Status.PASS, f"version {seen.version.version} is enabled")
    return Check(
        "secret.enabled",
        title,
        Status.FAIL,
        f"version {seen.version.version} (the latest) is disabled",
        "Key Vault answers 403 Forbidden ('Operation get is not allowed on a disabled secret') to every "
        "consumer reading the latest version.",
        "Enable the version (az keyvault secret set-attributes --enabled true ...) if its value is still "
        "good, or write the app's current secret value as a new version.",
    )


def check_secret_window(seen: Observed, rotate_before_days: int) -> Check:
    title = "Version is inside its not-before / expiry window"
    version = seen.version
    if version is None:
        return skip("secret.validity", title, "the secret was not read")
    now = seen.now
    if version.not_before is not None and version.not_before > now:
        return Check(
            "secret.validity",
            title,
            Status.FAIL,
            f"not valid before {format_utc(version.not_before)}",
            "The version is not valid yet; tools that honour nbf refuse it, and its credential may not have "
            "started either.",
            "Clear or correct the version's activation date (nbf), or write the value again without one.",
        )
    if version.expires is None:
        return Check(
            "secret.validity",
            title,
            Status.WARN,
            "the version has no expiry date",
            "Without exp, Key Vault sends no SecretNearExpiry event, so nothing warns before the credential "
            "behind it expires.",
            "Set the version's expiry to the credential's end date (a rotation does this itself).",
        )
    if version.expires <= now:
        return Check(
            "secret.validity",
            title,
            Status.FAIL,
            f"the version expired on {format_utc(version.expires)}",
            "The version is past its expiry; it normally mirrors the credential's end date, so the secret "
            "value has most likely expired in Entra too (AADSTS7000222).",
            "Rotate now (a managed secret: python -m rotation rotate VAULT SECRET; otherwise add a new secret on "
            "the app and store its value with a new expiry).",
        )
    days = days_between(version.expires, now)
    if days <= rotate_before_days:
        return Check(
            "secret.validity",
            title,
            Status.WARN,
            f"expires in {days:.1f} days ({format_utc(version.expires)})",
            "The secret is inside its rotation window.",
            "Rotate soon; a managed secret is rotated by the next sweep.",
        )
    return Check("secret.validity", title, Status.PASS, f"expires in {days:.0f} days ({format_utc(version.expires)})")


def check_pinned_versions(seen: Observed) -> Check:
    """Consumers that read a specific version id keep using it after the latest moved on."""
    title = "No enabled older version names a credential that is gone"
    if seen.version is None:
        return skip("secret.versions", title, "the secret was not read")
    if not seen.versions:
        return skip("secret.versions", title, "the version list was not read")
    enabled = [v for v in seen.versions if v.enabled]
    summary = f"{len(seen.versions)} version(s), {len(enabled)} enabled"
    if seen.app is None:
        return Check("secret.versions", title, Status.PASS, summary + "; the app was not read, so not cross-checked")
    dead: list[str] = []
    for version in enabled:
        if version.version == seen.version.version:
            continue
        key_id = tagged_credential_id(version)
        if key_id and seen.app.credential(key_id) is None:
            dead.append(f"{version.version} (credential {key_id})")
    if not dead:
        return Check("secret.versions", title, Status.PASS, summary)
    return Check(
        "secret.versions",
        title,
        Status.WARN,
        f"{summary}; enabled older version(s) whose credential no longer exists: {', '.join(dead)}",
        "A consumer configured with a version id (not the bare secret URI) keeps reading that version after "
        "rotations, and its credential has been removed from the app.",
        "Point consumers at the versionless secret URI, and disable versions whose credential is gone.",
    )


# --------------------------------------------------------------------------------------------------
# Checks: tenant and app


def check_tenant_format(seen: Observed) -> Check:
    title = "Tenant id is well-formed"
    tenant = seen.tenant_id
    if tenant is None:
        return Check(
            "tenant.format",
            title,
            Status.WARN,
            "no tenant known: the secret has no TenantId tag, --tenant was not given and ROTATION_TENANT_ID is not set",
            "Without a tenant the sign-in and the tenant checks cannot be made.",
            "Pass --tenant <Directory (tenant) ID>, or tag the secret with TenantId.",
        )
    source = f" (from {seen.tenant_source})" if seen.tenant_source else ""
    if tenant.lower() in APP_ONLY_FORBIDDEN_TENANTS:
        return Check(
            "tenant.format",
            title,
            Status.FAIL,
            f"tenant '{tenant}'{source} is a multi-tenant alias, not a tenant",
            "App-only (client credentials) tokens need a specific tenant (AADSTS50059).",
            "Use the Directory (tenant) ID GUID from the app registration's Overview page.",
        )
    if not is_valid_tenant_id(tenant):
        entry = aadsts.lookup(900023)
        return Check(
            "tenant.format",
            title,
            Status.FAIL,
            f"tenant '{shorten(tenant)}'{source} is neither a GUID nor a domain name (AADSTS900023)",
            entry.causes[0] if entry else "the tenant id is malformed",
            entry.remedy if entry else "Use the Directory (tenant) ID GUID.",
        )
    return Check("tenant.format", title, Status.PASS, f"tenant {tenant}{source}")


def check_tenant_exists(seen: Observed) -> Check:
    title = "Tenant exists"
    lookup = seen.tenant
    if lookup is None:
        return skip("tenant.exists", title, "no well-formed tenant to look up")
    if lookup.exists is True:
        resolved = f" (tenant id {lookup.tenant_id})" if lookup.tenant_id and lookup.tenant_id != seen.tenant_id else ""
        return Check("tenant.exists", title, Status.PASS, f"Entra knows tenant {seen.tenant_id}{resolved}")
    if lookup.exists is False:
        code = lookup.code or 90002
        entry = aadsts.lookup(code)
        return Check(
            "tenant.exists",
            title,
            Status.FAIL,
            f"Entra does not know tenant '{seen.tenant_id}' (AADSTS{code})",
            "; ".join(entry.causes) if entry else "no tenant has that id or domain",
            entry.remedy if entry else "Check the Directory (tenant) ID.",
        )
    return Check(
        "tenant.exists",
        title,
        Status.WARN,
        f"could not ask Entra about the tenant: {lookup.detail}",
        "The tenant's OpenID configuration could not be read, so its existence is unknown.",
        "Check AZURE_AUTHORITY_HOST and the network path to it, then run the diagnosis again.",
    )


def check_app_id(seen: Observed) -> Check:
    title = "Application (client) id is known and well-formed"
    if seen.app_id is None:
        return skip(
            "app.id",
            title,
            "no app id: the secret has no ProviderAddress tag and --app was not given",
            "Pass --app <Application (client) ID> to check the app and its credentials.",
        )
    if not is_guid(seen.app_id):
        return Check(
            "app.id",
            title,
            Status.FAIL,
            f"'{shorten(seen.app_id)}' (from {seen.app_source}) is not a GUID",
            "The client id must be the app's Application (client) ID, a GUID; anything else fails with AADSTS700016.",
            "Copy 'Application (client) ID' from the app registration's Overview page.",
        )
    return Check("app.id", title, Status.PASS, f"app {seen.app_id} (from {seen.app_source})")


def check_app_exists(seen: Observed) -> Check:
    title = "Application exists in the tenant"
    entry = aadsts.lookup(700016)
    match seen.app_lookup:
        case AppLookup.FOUND if seen.app is not None:
            # Where the credential lives: a service principal's password is checked on it.
            lives = ""
            if seen.found_on_service_principal:
                lives = (
                    "; the secret's password lives on the service principal (its value's hint is there, not on the app)"
                )
            elif seen.app.credential_object == "servicePrincipal":
                lives = "; the secret's password lives on the service principal (CredentialObject tag)"
            return Check(
                "app.exists",
                title,
                Status.PASS,
                f"'{seen.app.display_name or '(no name)'}' (object id {seen.app.object_id}){lives}",
            )
        case AppLookup.OBJECT_ID if seen.app is not None:
            return Check(
                "app.exists",
                title,
                Status.FAIL,
                f"{seen.app_id} is the Object ID of app '{seen.app.display_name or '(no name)'}', whose "
                f"Application (client) ID is {seen.app.app_id}",
                "The object id was used where the client id belongs; Entra answers AADSTS700016.",
                f"Set ProviderAddress (or the consumer's client id) to {seen.app.app_id}.",
            )
        case AppLookup.NOT_FOUND:
            return Check(
                "app.exists",
                title,
                Status.FAIL,
                f"no application with appId {seen.app_id} is visible in the rotator's tenant",
                "; ".join(entry.causes) if entry else "the client id is wrong or the app was deleted",
                (entry.remedy if entry else "Check the client id.")
                + " If the app exists in another tenant, set the secret's TenantId tag (and list that tenant "
                "in ROTATION_ALLOWED_TENANTS).",
            )
        case AppLookup.DENIED:
            return Check(
                "app.exists",
                title,
                Status.WARN,
                seen.app_problem or "the rotator may not read this app",
                "Graph refused to let the rotator read the app: its identity holds no Application "
                "permission yet (Application.ReadWrite.OwnedBy lets it read every app and write those it owns), "
                "or the grant is hours old and its token predates it, so this app's credentials cannot be checked.",
                "Grant the rotator Application.ReadWrite.OwnedBy (infra/hooks/grant-graph-permission.sh), make "
                "it an owner of the app to rotate it, or run with --probe to test the sign-in directly.",
            )
        case AppLookup.OTHER_TENANT:
            return skip(
                "app.exists",
                title,
                f"the app lives in tenant {seen.tenant_id}, but the rotator reads Graph in its own tenant "
                f"({seen.settings.tenant_id})",
                "Run with --probe to test the sign-in in that tenant.",
            )
        case AppLookup.ERROR:
            return Check(
                "app.exists",
                title,
                Status.WARN,
                seen.app_problem or "Graph could not be read",
                "Microsoft Graph could not be read, so the app and its credentials were not checked.",
                "Run the diagnosis again; if it persists, check the rotator's Graph permission.",
            )
        case _ if seen.tenant is not None and seen.tenant.exists is False:
            return skip("app.exists", title, "the tenant does not exist, so neither can the app")
        case _:
            return skip("app.exists", title, "no usable app id")


# --------------------------------------------------------------------------------------------------
# Checks: the value


def check_value_not_id(seen: Observed, shape: ValueShape | None) -> Check:
    title = "Value is a client secret value, not a Secret ID or another GUID"
    if seen.value is None or shape is None:
        return skip("value.secret_id", title, "the value was not read")
    if shape.empty:
        entry = aadsts.lookup(7000218)
        return Check(
            "value.secret_id",
            title,
            Status.FAIL,
            "the value is empty (or only whitespace)",
            entry.causes[0] if entry else "no secret is sent",
            "Store the client secret VALUE from Certificates & secrets (add a new secret if it is lost).",
        )
    if not shape.guid:
        return Check("value.secret_id", title, Status.PASS, f"not GUID-shaped ({shape.length} characters)")
    credentials = seen.app.password_credentials if seen.app else ()
    key_id = policy.looks_like_key_id(seen.value, credentials)
    if key_id is not None:
        credential = seen.app.credential(key_id) if seen.app else None
        label = f"'{credential.display_name}'" if credential and credential.display_name else "of this app"
        hint = f" (hint {credential.hint})" if credential and credential.hint else ""
        return Check(
            "value.secret_id",
            title,
            Status.FAIL,
            f"the value is the Secret ID (keyId) of credential {label}{hint}",
            "The secret ID was stored, not the value: Entra answers AADSTS7000215 ('... the client secret "
            "value, not the client secret ID').",
            "Store that credential's VALUE instead. Entra shows a value only once, when it is created; if it "
            "is lost, add a new secret (or run a rotation) and store its value.",
        )
    named = _which_guid(stripped(seen.value), seen)
    return Check(
        "value.secret_id",
        title,
        Status.FAIL,
        f"the value is a GUID{named}; no client secret value is one",
        "A Secret ID, object id or application id was stored instead of the secret value (AADSTS7000215).",
        "Store the secret VALUE from Certificates & secrets (shown once, at creation; add a new secret if it is lost).",
    )


def _which_guid(text: str, seen: Observed) -> str:
    core = text.strip("{}").lower()
    if seen.app is not None and core == seen.app.app_id.lower():
        return " equal to the app's Application (client) ID"
    if seen.app is not None and core == seen.app.object_id.lower():
        return " equal to the app's Object ID"
    if seen.tenant_id and core == seen.tenant_id.lower():
        return " equal to the tenant id"
    return ""


def check_value_whitespace(seen: Observed, shape: ValueShape | None) -> Check:
    title = "Value has no surrounding whitespace, line breaks or control characters"
    if shape is None or shape.empty:
        return skip("value.whitespace", title, "the value was not read" if shape is None else "the value is empty")
    if shape.surrounding_whitespace or shape.inner_whitespace_or_control:
        what = []
        if shape.leading_whitespace:
            what.append("leading whitespace")
        if shape.trailing_newline:
            what.append("a trailing line break")
        elif shape.trailing_whitespace:
            what.append("trailing whitespace")
        if shape.inner_whitespace_or_control:
            what.append("whitespace or control characters inside")
        return Check(
            "value.whitespace",
            title,
            Status.FAIL,
            f"the value has {' and '.join(what)} ({shape.length} characters in all)",
            "Entra compares the value exactly, so the extra characters make it a wrong secret "
            "(AADSTS7000215). Typical source: 'echo' or a file editor adding a newline, or a copy from a "
            "wrapped terminal line.",
            "Write the value again without them (az keyvault secret set --file with a file that has no final "
            "newline, or --value '...').",
        )
    return Check("value.whitespace", title, Status.PASS, "none")


def check_value_length(seen: Observed, shape: ValueShape | None) -> Check:
    title = "Value length is plausible (not truncated)"
    if shape is None or shape.empty or shape.guid:
        return skip("value.length", title, "no secret-shaped value to measure")
    length = len(stripped(seen.value)) if seen.value else shape.length
    evidence = f"{length} characters, hint '{shape.hint}'"
    if shape.current_format:
        evidence += ", Entra's current format ('8Q~' at positions 4-6)"
    if shape.current_format and length < CURRENT_LENGTH:
        # Every value in this format is exactly CURRENT_LENGTH long: a shorter one cannot sign in,
        # whatever else is right, so this is a failure (the lead cause when the rest matches).
        return Check(
            "value.length",
            title,
            Status.FAIL,
            evidence + f": truncated, {CURRENT_LENGTH - length} character(s) missing",
            f"Values in Entra's current format are exactly {CURRENT_LENGTH} characters long; this one has "
            f"{length}, so it was cut short when copied (a terminal line, a form field, a template), and Entra "
            "refuses it (AADSTS7000215).",
            "Copy the whole value again (or add a new secret, or run a rotation, and store its value).",
        )
    if length < policy.MIN_SECRET_LENGTH:
        return Check(
            "value.length",
            title,
            Status.WARN,
            evidence,
            f"Entra client secret values have at least {policy.MIN_SECRET_LENGTH} characters; this one was "
            "probably cut short when copied.",
            "Copy the whole value again (or add a new secret and store its value).",
        )
    if shape.current_format and length != CURRENT_LENGTH:
        return Check(
            "value.length",
            title,
            Status.WARN,
            evidence,
            f"Values in Entra's current format are {CURRENT_LENGTH} characters long; this one has "
            f"{length}, so something was probably added when copied.",
            "Copy the whole value again (or add a new secret and store its value).",
        )
    if length > MAX_SECRET_LENGTH:
        return Check(
            "value.length",
            title,
            Status.WARN,
            evidence,
            f"Entra client secret values have at most {MAX_SECRET_LENGTH} characters; something else was "
            "stored with it (a connection string, JSON, two values?).",
            "Store only the secret value.",
        )
    return Check("value.length", title, Status.PASS, evidence)


def check_value_characters(seen: Observed, shape: ValueShape | None) -> Check:
    title = "Value has no characters that shells or hand-built requests mangle"
    if shape is None or shape.empty or shape.guid:
        return skip("value.characters", title, "no secret-shaped value to inspect")
    found = [f"'{ch}' ({_SHELL_CHARACTERS[ch]})" for ch in shape.shell_characters]
    found += [f"'{ch}' ({_FORM_CHARACTERS[ch]} if not URL-encoded)" for ch in shape.form_characters]
    if not found:
        return Check("value.characters", title, Status.PASS, "only letters, digits and ~ . _ -")
    return Check(
        "value.characters",
        title,
        Status.WARN,
        "contains " + ", ".join(found),
        "Stored correctly these are fine, but a value passed through an unquoted shell variable, a .env "
        "file or a template, or sent in a hand-built token request without URL-encoding, reaches Entra "
        "changed (AADSTS7000215).",
        "Quote the value in single quotes in shells, URL-encode client_secret in hand-built requests, or "
        "rotate to a new value (Entra's current values use only letters, digits and ~ . _ -).",
    )


# --------------------------------------------------------------------------------------------------
# Checks: the app's credentials


# --------------------------------------------------------------------------------------------------
# Checks: the rotation state in the tags


def _managed(seen: Observed) -> tuple[ManagedSecret | None, Check | None]:
    """The parsed rotation state, or the check that explains why there is none."""
    title = "Rotation tags are consistent"
    tags = seen.tags
    if seen.version is None:
        return None, skip("rotation.tags", title, "the secret was not read")
    if Tag.ProviderAddress not in tags:
        near = next((k for k in tags if k != Tag.ProviderAddress and k.strip().lower() == "provideraddress"), None)
        if near is not None:
            return None, Check(
                "rotation.tags",
                title,
                Status.WARN,
                f"the secret has a tag '{near}' but no 'ProviderAddress' (tag names are case-sensitive)",
                "The rotator ignores the secret: it looks unmanaged.",
                f"Rename the tag '{near}' to 'ProviderAddress'.",
            )
        return None, skip(
            "rotation.tags",
            title,
            "not managed by the rotator (no ProviderAddress tag)",
            "To have it rotated, tag it with ProviderAddress=<Application (client) ID> (python -m rotation "
            "adopt helps).",
        )
    try:
        return ManagedSecret.from_tags(tags, vault=seen.vault, name=seen.secret), None
    except TagError as error:
        return None, Check(
            "rotation.tags",
            title,
            Status.FAIL,
            "; ".join(error.problems),
            "The rotator refuses to act on tags it cannot trust, so this secret is not being rotated.",
            error.remedy or "Correct the tags on the latest version.",
        )


def check_rotation_tags(seen: Observed) -> Check:
    managed, problem = _managed(seen)
    if problem is not None:
        return problem
    assert managed is not None
    state = f"state {managed.state.value}" if managed.state else "no rotation recorded yet"
    return Check("rotation.tags", "Rotation tags are consistent", Status.PASS, f"managed by the rotator; {state}")


def check_rotation_state(seen: Observed) -> Check:
    title = "No rotation is stuck or failed"
    managed, problem = _managed(seen)
    if managed is None or seen.version is None:
        return skip("rotation.state", title, "not a managed secret with usable tags" if problem else "not read")
    settings = seen.settings
    if managed.state is RotationState.VALIDATING:
        since = seen.version.updated or seen.version.created
        # Beyond the validation deadline plus the throttle budget no live worker can still be
        # validating (the same bound the orphan margin uses): a crash left the state behind.
        limit = timedelta(seconds=settings.validation_deadline_seconds + settings.throttle_retry_seconds)
        if since is not None and seen.now - since > limit:
            return Check(
                "rotation.state",
                title,
                Status.FAIL,
                f"validating since {format_utc(since)} (rotation {managed.rotation_id}); a validation ends "
                f"within {int(limit.total_seconds())} s",
                "A rotation stopped half-way (a crash or a lost worker): the new value is stored but not proven, "
                "and the old credential is still valid.",
                f"Run a reconcile (python -m rotation rotate {seen.vault} {seen.secret}); it finishes the "
                "validation or rolls back to the last working value.",
            )
        return Check(
            "rotation.state",
            title,
            Status.WARN,
            f"a validation is in progress (rotation {managed.rotation_id}, since {when(since)})",
            "A new value was stored moments ago and is being proven; sign-ins may fail briefly while it propagates.",
            "Wait for the rotation to finish, then run the diagnosis again.",
        )
    if managed.state is RotationState.FAILED:
        return Check(
            "rotation.state",
            title,
            Status.WARN,
            f"the last rotation failed: {managed.failure_reason or 'no reason recorded'}",
            "The rotator rolled back; the secret keeps its previous value until a rotation succeeds.",
            "Fix the reason given, then rotate again.",
        )
    state = f"state {managed.state.value}" if managed.state else "no rotation recorded yet"
    return Check("rotation.state", title, Status.PASS, state)


def check_retirement(seen: Observed) -> Check:
    title = "No retirement is overdue"
    managed, _ = _managed(seen)
    if managed is None:
        return skip("rotation.retirement", title, "not a managed secret with usable tags")
    if not managed.retire_credential_id:
        return Check("rotation.retirement", title, Status.PASS, "no credential waiting for retirement")
    key_id = managed.retire_credential_id
    due = managed.retire_after
    still_there = seen.app.credential(key_id) is not None if seen.app else None
    if still_there is False:
        return Check(
            "rotation.retirement",
            title,
            Status.WARN,
            f"credential {key_id} is already gone from the app, but RetireCredentialId still names it",
            "It was removed (by hand or by a reconcile that stopped before clearing the tags).",
            f"Run a reconcile (python -m rotation rotate {seen.vault} {seen.secret}); it clears the tags.",
        )
    if managed.retirement_held:
        # Overdue on purpose: the sign-in report shows a consumer still on the old value.
        return Check(
            "rotation.retirement",
            title,
            Status.WARN,
            f"retirement held: {managed.retirement_held}",
            "The grace period is over, but the old credential stays until the sign-in report shows it unused "
            "(ROTATION_RETIREMENT_EVIDENCE): some consumer still has the old value (a cached Key Vault "
            "reference, a pipeline variable, a copy).",
            f"Find the consumer of app {managed.app_id} still signing in with credential {key_id} (Entra sign-in "
            "logs, service principal sign-ins) and move it to the secret's latest version; an emergency roll "
            f"(python -m rotation rotate {seen.vault} {seen.secret} --emergency) removes it at once.",
        )
    if due is not None and seen.now - due > RETIREMENT_SLACK:
        return Check(
            "rotation.retirement",
            title,
            Status.WARN,
            f"credential {key_id} was due for removal at {format_utc(due)}",
            "The old credential is still valid long after its grace period: a leaked old value would still "
            "work. The sweep should have retired it.",
            f"Run a reconcile (python -m rotation rotate {seen.vault} {seen.secret}) and check the sweep's logs.",
        )
    return Check(
        "rotation.retirement",
        title,
        Status.PASS,
        f"credential {key_id} is retired after {when(due) if due else 'validation'}",
    )


def check_orphans(seen: Observed) -> Check:
    title = "No orphaned rotator credentials"
    if seen.app is None:
        return skip("rotation.orphans", title, "the app was not read")
    managed, _ = _managed(seen)
    referenced = set(policy.referenced_key_ids([v for v in seen.versions if v.enabled]))
    if managed is not None:
        referenced |= managed.referenced_key_ids
    margin = timedelta(seconds=seen.settings.orphan_margin_seconds)
    host, alias = _host_and_alias(seen)
    found = policy.orphans(
        seen.app.password_credentials, host, seen.secret, referenced, seen.now, margin, legacy_alias=alias
    )
    if not found:
        return Check("rotation.orphans", title, Status.PASS, "none")
    return Check(
        "rotation.orphans",
        title,
        Status.WARN,
        "; ".join(f"{c.key_id} '{c.display_name}' started {when(c.start)}" for c in found),
        "A rotation created these credentials and stopped before recording them; nothing uses them, but they "
        "count against the app's secrets and are valid credentials nobody holds.",
        f"Run a reconcile (python -m rotation rotate {seen.vault} {seen.secret}); it removes them.",
    )


def _host_and_alias(seen: Observed) -> tuple[str, str | None]:
    try:
        return seen.settings.vault_host(seen.vault), seen.settings.legacy_alias(seen.vault)
    except RotationError:
        return seen.vault, None


def check_binding(seen: Observed) -> Check:
    """The app's owners bound this secret (the app's tags name its vault host and secret)."""
    title = "The app's owners bound this secret to the app"
    if seen.app is None or seen.app_id is None:
        return skip("binding", title, "the app was not read")
    if seen.version is None or not seen.version.managed:
        return skip("binding", title, "the secret is not managed (no ProviderAddress tag)")
    if seen.found_on_service_principal:
        # The rotator would read the app registration (no CredentialObject tag), where this value's
        # credential is not: it would take it for deleted and rotate an app password instead.
        command = bind_command(seen.vault, seen.secret, seen.app.app_id, service_principal=True)
        return Check(
            "binding",
            title,
            Status.WARN,
            "the secret holds a password of the service principal but has no CredentialObject=servicePrincipal tag",
            "Without the tag the rotator manages the app registration's passwords for this secret, not the "
            "service principal's.",
            f"An owner of the service principal (or an admin) runs: {command}",
        )
    host, _ = _host_and_alias(seen)
    binding = seen.app.binding_for(host, seen.secret)
    # A service principal's password is bound in the service principal's own tags (read with it).
    on_sp = seen.app.credential_object == "servicePrincipal"
    whose = "the service principal's" if on_sp else "the app's"
    if binding is not None:
        adopted = f" (adopted credential {binding.adopted_key_id})" if binding.adopted_key_id else ""
        return Check("binding", title, Status.PASS, f"bound: {whose} tags name {host}/{seen.secret}{adopted}")
    command = bind_command(seen.vault, seen.secret, seen.app.app_id, service_principal=on_sp)
    target = f"the service principal of app {seen.app.app_id}" if on_sp else f"app {seen.app.app_id}"
    prefix = binding_prefix("servicePrincipal" if on_sp else "application")
    return Check(
        "binding",
        title,
        Status.WARN,
        f"not bound: no tag '{prefix}{host}/{seen.secret.lower()}' on {target}",
        "A Key Vault tag is no authority: the rotator does nothing for a secret the app's owners have not bound.",
        f"An owner of {'the service principal' if on_sp else 'the app'} (or an admin) runs: {command}",
    )


# --------------------------------------------------------------------------------------------------
# Check: the sign-in itself


def check_probe(seen: Observed) -> Check:
    title = "Sign-in with the stored value works (client credentials)"
    if not seen.probe_requested:
        return skip("signin.probe", title, "not run (read-only by default)", "Add --probe to test one sign-in.")
    result = seen.probe
    if result is None:
        return skip("signin.probe", title, "needs the value, an app id and a well-formed tenant")
    if result.ok:
        return Check("signin.probe", title, Status.PASS, "Entra issued a token")
    if result.code is None:
        return Check(
            "signin.probe",
            title,
            Status.WARN if result.transient else Status.FAIL,
            result.message or "sign-in failed without an AADSTS code",
            "Entra could not be asked (network, throttling or a server error)."
            if result.transient
            else "Entra refused without a code.",
            "Run the diagnosis again; check AZURE_AUTHORITY_HOST and the network path.",
        )
    explanation = aadsts.explain(result.code)
    assert explanation is not None
    causes = "; ".join(explanation.entry.causes) if explanation.entry else "not in the rotator's catalogue"
    return Check(
        "signin.probe",
        title,
        Status.FAIL,
        f"AADSTS{result.code}: {explanation.title}",
        causes,
        explanation.remedy + f" ({explanation.docs_url})",
    )


def judge(seen: Observed) -> Diagnosis:
    """Every check, in the order a sign-in depends on them (see :attr:`Diagnosis.most_likely`)."""
    certificate = _stored_certificate(seen)
    # A certificate is no client secret: its shape (length, hint, characters) says nothing.
    shape = value_shape(seen.value) if seen.value is not None and certificate is None else None
    rotate_before = _rotate_before_days(seen)
    credential: tuple[Check, ...]
    if certificate is None:
        credential = (
            # With no usable secret on the app Entra refuses any value (7000222 when all expired, 7000215
            # when it has only certificates), so this outranks everything about the value itself.
            check_app_credentials(seen),
            check_value_not_id(seen, shape),
            check_value_whitespace(seen, shape),
            check_credential_match(seen, shape),
            check_credential_validity(seen, rotate_before),
            check_secret_window(seen, rotate_before),
            check_value_length(seen, shape),
            check_value_characters(seen, shape),
        )
    else:
        credential = (*certificate_checks(seen, certificate, rotate_before), check_secret_window(seen, rotate_before))
    checks = (
        check_secret_exists(seen),
        check_secret_enabled(seen),
        check_tenant_format(seen),
        check_tenant_exists(seen),
        check_app_id(seen),
        check_app_exists(seen),
        *credential,
        check_rotation_tags(seen),
        # Not a sign-in cause (the stored value may work), but nothing rotates it: a warning.
        check_binding(seen),
        check_rotation_state(seen),
        check_retirement(seen),
        check_orphans(seen),
        check_pinned_versions(seen),
        # Which credential consumers really use (the sign-in report): a warning at most, never the cause.
        check_consumer_credential(seen, certificate),
        check_probe(seen) if certificate is None else _certificate_probe(seen),
    )
    # Positional in the order of `Diagnosis`'s fields: what was diagnosed, and where its ids came from.
    return Diagnosis(
        seen.vault,
        seen.secret,
        seen.app_id,
        seen.app_source,
        seen.tenant_id,
        seen.tenant_source,
        checks=tuple(_scrubbed(c) for c in checks),
        shape=shape,
        probe=seen.probe,
        certificate=certificate,
    )


def _stored_certificate(seen: Observed) -> StoredCertificate | None:
    if seen.value is None:
        return None
    return stored_certificate(seen.value, seen.version.content_type if seen.version else None)


def _certificate_probe(seen: Observed) -> Check:
    title = "Sign-in with the stored value works (client credentials)"
    if not seen.probe_requested:
        return skip("signin.probe", title, "not run (read-only by default)")
    return skip(
        "signin.probe",
        title,
        "not run: the stored value is a certificate, and the probe signs in with client secrets only",
        "Sign in once with the certificate (azure-identity CertificateCredential) to test it.",
    )


def _rotate_before_days(seen: Observed) -> int:
    try:
        return seen.settings.policy_for(seen.tags, seen.secret, seen.vault).rotate_before_days
    except TagError:
        return seen.settings.rotate_before_days


def _scrubbed(check: Check) -> Check:
    """Defence in depth: evidence quotes names and tags, never the value, but scrub once more."""
    scrub = registry.scrub
    return Check(check.id, check.title, check.status, scrub(check.evidence), scrub(check.cause), scrub(check.remedy))
