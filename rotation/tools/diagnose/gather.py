"""Gathering: the only I/O of a diagnosis, all of it reads.

- Key Vault: the latest version (value, attributes, tags), its version list, and, only when the
  secret is missing, the deleted secret of that name;
- Entra: the tenant's OpenID configuration document (does the tenant exist?);
- Graph: the app by appId (and by object id when that finds nothing), or its service principal when
  the ``CredentialObject`` tag says so or the value matches no password of the app but one of its
  service principal's, then its credential sign-in report (which credential consumers sign in with;
  refused without AuditLog.Read.All or P1/P2);
- with ``probe=True`` only: exactly one client-credentials token request with the stored value.

A read that fails is recorded as a fact (``read_problem``, ``app_problem``, ...) for the checks to
explain, never raised: a diagnosis reports what it could not see.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import aiohttp

from rotation.domain import aadsts
from rotation.domain.errors import (
    ApplicationNotFoundError,
    BadRequestError,
    RotationError,
    SecretDisabledError,
    UnknownVaultError,
)
from rotation.domain.model import (
    APPLICATION,
    SERVICE_PRINCIPAL,
    Tag,
    is_guid,
    is_valid_secret_name,
    parse_credential_object,
)
from rotation.service.ports import GraphPort, VaultPort
from rotation.tools.common import shorten
from rotation.tools.diagnose.certificate_value import stored_certificate
from rotation.tools.diagnose.facts import AppLookup, Observed, TenantLookup

if TYPE_CHECKING:
    from rotation.runtime import Runtime


async def lookup_tenant(authority_host: str, tenant: str, *, timeout_seconds: float = 15.0) -> TenantLookup:
    """Ask Entra's OpenID configuration document whether ``tenant`` exists: a read-only GET.

    200 means it exists (its ``issuer`` names the tenant id, which resolves domains); 400 carries
    AADSTS90002 (unknown) or 900023 (malformed). Anything else means "could not tell".
    """
    url = f"{authority_host.rstrip('/')}/{quote(tenant, safe='')}/v2.0/.well-known/openid-configuration"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            body = await response.json(content_type=None)
            status = response.status
            local_time = datetime.now(UTC)
            server_time = _http_date(response.headers.get("Date"))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return TenantLookup(None, detail=f"{type(exc).__name__} reading the OpenID configuration")
    if status == 200 and isinstance(body, dict):
        return TenantLookup(
            True,
            tenant_id=_tenant_from_issuer(body.get("issuer")),
            server_time=server_time,
            local_time=local_time,
        )
    code = aadsts.parse_code(body) if isinstance(body, dict) else None
    if status == 400 and code in (90002, 900023):
        return TenantLookup(False, code=code)
    return TenantLookup(None, code=code, detail=f"HTTP {status}" + (f" AADSTS{code}" if code else ""))


def _http_date(header: str | None) -> datetime | None:
    """An HTTP ``Date`` header (RFC 9110 IMF-fixdate) as an aware UTC time, or ``None``."""
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _tenant_from_issuer(issuer: object) -> str | None:
    if not isinstance(issuer, str):
        return None
    segments = [s for s in urlsplit(issuer).path.split("/") if s]
    return segments[0].lower() if segments and is_guid(segments[0]) else None


def _pick(*candidates: tuple[str | None, str]) -> tuple[str | None, str | None]:
    """The first non-blank value among ``(value, where it came from)`` pairs, with its source."""
    for value, source in candidates:
        if value is not None and value.strip():
            return value.strip(), source
    return None, None


async def _read_secret(seen: Observed, vault: VaultPort) -> None:
    try:
        current = await vault.get(seen.secret)
    except SecretDisabledError:
        # The latest version is disabled: read its attributes and tags from the version list.
        seen.version = await vault.get_properties(seen.secret)
        return
    except RotationError as error:
        seen.read_problem = error.message
        return
    if current is not None:
        seen.version, seen.value = current.version, current.value
        return
    try:
        seen.deleted = await vault.get_deleted(seen.secret)
    except RotationError as error:
        seen.deleted_problem = error.code


async def _read_versions(seen: Observed, vault: VaultPort) -> None:
    if seen.version is None:
        return
    try:
        seen.versions = list(await vault.list_versions(seen.secret))
    except RotationError:
        seen.versions = []


def _same_tenant(seen: Observed) -> bool:
    """Whether the app's tenant is the rotator's, whose Graph the rotator reads."""
    mine = seen.settings.tenant_id
    if mine is None or seen.tenant_id is None or seen.tenant_id.lower() == mine.lower():
        return True
    resolved = seen.tenant.tenant_id if seen.tenant else None
    return resolved is not None and resolved == mine.lower()


async def _read_app(seen: Observed, directory: GraphPort) -> None:
    if seen.app_id is None or not is_guid(seen.app_id):
        return
    if seen.tenant is not None and seen.tenant.exists is False:
        return  # no tenant, no app: the tenant check already says so
    if not _same_tenant(seen):
        seen.app_lookup = AppLookup.OTHER_TENANT
        return
    try:
        seen.app = await directory.get_application(seen.app_id, on=seen.credential_object)
        seen.app_lookup = AppLookup.FOUND
    except ApplicationNotFoundError:
        seen.app_lookup = AppLookup.NOT_FOUND
    except RotationError as error:
        seen.app_lookup = AppLookup.DENIED if error.code == "PermissionDenied" else AppLookup.ERROR
        seen.app_problem = error.message
        return
    if seen.app_lookup is AppLookup.FOUND:
        await _look_on_service_principal(seen, directory)
    if seen.app_lookup is AppLookup.NOT_FOUND:
        try:
            by_object = await directory.find_application_by_object_id(seen.app_id)
        except RotationError:
            by_object = None
        if by_object is not None:
            seen.app, seen.app_lookup = by_object, AppLookup.OBJECT_ID


async def _look_on_service_principal(seen: Observed, directory: GraphPort) -> None:
    """A value that matches no password of the app registration may be one of its service principal's
    (``servicePrincipals/{id}/addPassword``): one more read, only then, and only when the tags name
    no object; if the service principal holds a password with the value's hint, it is judged there."""
    if seen.app is None or seen.value is None or Tag.CredentialObject in seen.tags or seen.app_id is None:
        return
    if stored_certificate(seen.value, seen.version.content_type if seen.version else None):
        return  # a certificate is no password of either object
    hint = seen.value.hint
    if any(c.hint == hint for c in seen.app.password_credentials):
        return
    try:
        principal = await directory.get_application(seen.app_id, on=SERVICE_PRINCIPAL)
    except RotationError:
        return
    if any(c.hint == hint for c in principal.password_credentials):
        seen.app, seen.credential_object, seen.found_on_service_principal = principal, SERVICE_PRINCIPAL, True


async def gather(
    runtime: Runtime,
    vault: str,
    secret: str,
    *,
    app_id: str | None = None,
    tenant_id: str | None = None,
    probe: bool = False,
    now: datetime | None = None,
) -> Observed:
    """Read what there is to know about ``secret`` in ``vault`` (a name from ROTATION_VAULTS).

    One read after the other, because each needs the one before: the tags name the app and the
    tenant, the tenant decides whether the app can be read, and the probe needs all three. Never writes.
    """
    if not is_valid_secret_name(secret):
        raise BadRequestError([f"'{shorten(secret, 40)}' is not a Key Vault secret name (1-127 letters, digits, -)"])
    secrets = runtime.vaults.get(vault.lower())
    if secrets is None:
        raise UnknownVaultError(vault, runtime.vaults)
    seen = Observed(settings=runtime.settings, vault=vault.lower(), secret=secret, now=now or datetime.now(UTC))
    seen.probe_requested = probe
    await _read_secret(seen, secrets)
    await _read_versions(seen, secrets)
    tags = seen.tags
    seen.app_id, seen.app_source = _pick((app_id, "--app"), (tags.get(Tag.ProviderAddress), "ProviderAddress tag"))
    seen.tenant_id, seen.tenant_source = _pick(
        (tenant_id, "--tenant"),
        (tags.get(Tag.TenantId), "TenantId tag"),
        (runtime.settings.tenant_id, "ROTATION_TENANT_ID"),
    )
    # A service principal's password is judged against the service principal's passwords and tags
    # (an unusable CredentialObject is the tag check's to report; the app is read then).
    seen.credential_object = parse_credential_object(tags.get(Tag.CredentialObject)) or APPLICATION
    if seen.tenant_usable:
        assert seen.tenant_id is not None
        seen.tenant = await lookup_tenant(runtime.settings.authority_host, seen.tenant_id)
    await _read_app(seen, runtime.directory)
    await _read_sign_ins(seen, runtime.directory)
    if probe and _probe_possible(seen):
        assert seen.tenant_id and seen.app_id and seen.value is not None
        seen.probe = await runtime.probe.probe(seen.tenant_id, seen.app_id, seen.value)
    return seen


async def _read_sign_ins(seen: Observed, directory: GraphPort) -> None:
    """Graph's credential sign-in report for the app: one GET (issue 13). A refusal (no
    AuditLog.Read.All, no P1/P2 licence) or an error is a fact to state, never a failed diagnosis."""
    if seen.app is None:
        return
    seen.sign_ins_read = True
    try:
        seen.sign_ins = await directory.credential_sign_ins(seen.app.app_id)
    except RotationError as error:
        seen.sign_ins_problem = error.message


def _probe_possible(seen: Observed) -> bool:
    if seen.value is not None and stored_certificate(seen.value, seen.version.content_type if seen.version else None):
        return False  # the probe sends client secrets; a certificate would only earn a misleading 7000215
    return bool(seen.value and seen.app_id and seen.tenant_usable)
