"""Azure Key Vault (secrets data plane), one aiohttp application per vault.

The unmodified `azure-keyvault-secrets` aio client talks to this over HTTPS, so every answer copies the
real service: the bearer challenge of the first request, RBAC refusals with the full `ForbiddenByRbac`
text, paged lists with an absolute `nextLink`, soft delete, and the Event Grid events (near expiry,
expired, new version) that clients react to. Where a detail of the real service was not verifiable
the choice is marked in a comment.

All state lives in `World` and is read or changed only under `world.lock`; no handler awaits while
holding it (the body is read first, the response is written after the lock is released).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from localcloud.errors import keyvault_error
from localcloud.keys import AUTHORITY, CALLER, VAULT_NAME, WORLD
from localcloud.state import (
    MAX_EPOCH,
    MIN_EPOCH,
    SECRET_NAME_RE,
    VAULT_AUDIENCE,
    VAULT_NAME_RE,
    DeletedSecretRecord,
    IssuedToken,
    SecretRecord,
    SecretVersionRecord,
    VaultRecord,
    World,
    from_epoch,
    to_epoch,
)

# Service limits (docs: "About Azure Key Vault secrets" and the Key Vault service limits page).
MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255
# "About Azure Key Vault secrets" (2026): "up to 15 tags, each of which can have a 512-character name
# and a 512-character value" (older copies said 256; the portal and the corrected page say 512). A
# 16th tag is 400 BadParameter "Property has invalid value".
MAX_TAGS = 15
MAX_TAG_LENGTH = 512
MAX_PAGE = 25
NEAR_EXPIRY = timedelta(days=30)  # Event Grid docs: SecretNearExpiry fires 30 days before `exp`
LOCATION = "eastus"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"

EVENT_NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
EVENT_NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
EVENT_EXPIRED = "Microsoft.KeyVault.SecretExpired"

# The service's own texts: from the SDKs' recorded test sessions (401 challenge, 404s) and from error
# bodies users published (expired/invalid token, disabled secret, tags, throttling).
MISSING_TOKEN = "AKV10000: Request is missing a Bearer or PoP token."
EXPIRED_TOKEN = "[TokenExpired] Error validating token: 'S2S12086'."
UNKNOWN_TOKEN = "[AggregatedAuthenticationFailure] Error validating token: 'S2S17001'."
DISABLED_SECRET = "Operation get is not allowed on a disabled secret."
INVALID_PROPERTY = "Property has invalid value\r\n"
THROTTLED = "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
NOT_FOUND_TAIL = (
    " was not found in this key vault. If you recently deleted this secret you may be able to recover it "
    "using the correct recovery command. For help resolving this issue, please see "
    "https://go.microsoft.com/fwlink/?linkid=2125182"
)

# The data-plane API versions Key Vault knows (the SDKs' ApiVersion enums, newest first), plus the
# previews it served; any other version is 400 BadParameter, as the service answers it.
API_VERSIONS = (
    "2026-04-01",
    "2025-07-01",
    "7.6",
    "7.5",
    "7.4",
    "7.3",
    "7.2",
    "7.1",
    "7.0",
    "2016-10-01",
    "2015-06-01",
)
_PREVIEW_VERSION_RE = re.compile(r"^(?:7\.\d-preview(?:\.\d+)?|20\d\d-\d\d-\d\d-preview)$")
BACKUP_MAGIC = b"LCKVSB1"  # the local cloud's Key Vault secret backup, version 1

Permission = Literal["read", "get", "write", "delete", "purge", "backup", "restore"]
_ACTION_PREFIX = "Microsoft.KeyVault/vaults/secrets/"
_VERSION_RE = re.compile(r"^[0-9a-f]{32}$")


# --- vault records ---------------------------------------------------------------------------------
def create_vault_record(world: World, name: str) -> VaultRecord:
    """Register a vault (the caller holds `world.lock`; the cloud binds its port and URL afterwards)."""
    if not VAULT_NAME_RE.match(name) or "--" in name:
        raise ValueError(
            f"Vault name '{name}' is invalid: use 3-24 characters, start with a letter, end with a letter "
            "or digit, and use only letters, digits and single hyphens."
        )
    key = name.lower()
    if key in world.vaults:
        raise ValueError(f"A vault named '{name}' exists already.")
    record = VaultRecord(name=name)
    world.vaults[key] = record
    return record


def vault_state(vault: VaultRecord) -> dict[str, Any]:
    """What the admin `GET /state` shows of a vault: metadata only, never a secret value."""

    def versions(secret: SecretRecord) -> list[dict[str, Any]]:
        return [
            {
                "version": v.version,
                "id": _version_id(vault, secret, v),
                "contentType": v.content_type,
                "tags": dict(v.tags) if v.tags is not None else None,
                "attributes": _attributes(vault, v),
                "nearExpiryEmitted": v.near_expiry_emitted,
                "expiredEmitted": v.expired_emitted,
            }
            for v in secret.versions
        ]

    return {
        "name": vault.name,
        "url": vault.url,
        "recoverableDays": vault.recoverable_days,
        "roleAssignments": {oid: sorted(roles) for oid, roles in vault.role_assignments.items()},
        "secrets": [{"name": s.name, "versions": versions(s)} for _, s in sorted(vault.secrets.items())],
        "deletedSecrets": [
            {
                "name": d.secret.name,
                "deletedDate": to_epoch(d.deleted),
                "scheduledPurgeDate": to_epoch(d.scheduled_purge),
                "versions": versions(d.secret),
            }
            for _, d in sorted(vault.deleted.items())
        ],
    }


# --- events ----------------------------------------------------------------------------------------
def emit_due_events(world: World) -> None:
    """Emit SecretNearExpiry / SecretExpired as the (movable) clock passes them, and purge deleted
    secrets whose retention is over. The caller holds `world.lock`.

    The Event Grid docs say both events concern "the current version of a secret", so only the latest
    version of each live secret is watched; a disabled one is skipped (an assumption: the docs are
    silent, and a disabled version cannot be read anyway). Each fires once per version; changing `exp`
    through PATCH re-arms them.
    """
    now = world.clock.now()
    for vault in world.vaults.values():
        for secret in vault.secrets.values():
            current = secret.latest
            if current.expires is None or not current.enabled:
                continue
            # `now + 30 days`, not `exp - 30 days`: an `exp` in year 1 must not underflow the ticker.
            if not current.near_expiry_emitted and now + NEAR_EXPIRY >= current.expires:
                current.near_expiry_emitted = True
                world.emit_event(_event(vault, secret, current, EVENT_NEAR_EXPIRY, now))
            if not current.expired_emitted and now >= current.expires:
                current.expired_emitted = True
                world.emit_event(_event(vault, secret, current, EVENT_EXPIRED, now))
        # Soft-deleted secrets are purged by the service itself once their retention has passed.
        for key in [k for k, d in vault.deleted.items() if d.scheduled_purge <= now]:
            del vault.deleted[key]


def _event(
    vault: VaultRecord, secret: SecretRecord, version: SecretVersionRecord, event_type: str, now: datetime
) -> dict[str, Any]:
    """One event in the Event Grid schema; Key Vault's data keys are PascalCase on the wire."""
    return {
        "id": str(uuid.uuid4()),
        "topic": vault.resource_id(""),
        "subject": secret.name,
        "eventType": event_type,
        "eventTime": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "Id": _version_id(vault, secret, version),
            "VaultName": vault.name,
            "ObjectType": "Secret",
            "ObjectName": secret.name,
            "Version": version.version,
            "NBF": to_epoch(version.not_before) if version.not_before is not None else None,
            "EXP": to_epoch(version.expires) if version.expires is not None else None,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }


# --- wire shapes -----------------------------------------------------------------------------------
def _recovery_level(vault: VaultRecord) -> str:
    # A retention shorter than the 90-day default shows as "CustomizedRecoverable" (seen in recordings).
    return "Recoverable+Purgeable" if vault.recoverable_days == 90 else "CustomizedRecoverable+Purgeable"


def _attributes(vault: VaultRecord, version: SecretVersionRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {"enabled": version.enabled}
    if version.not_before is not None:
        attributes["nbf"] = to_epoch(version.not_before)
    if version.expires is not None:
        attributes["exp"] = to_epoch(version.expires)
    attributes["created"] = to_epoch(version.created)
    attributes["updated"] = to_epoch(version.updated)
    attributes["recoveryLevel"] = _recovery_level(vault)
    attributes["recoverableDays"] = vault.recoverable_days
    return attributes


def _secret_id(vault: VaultRecord, secret: SecretRecord) -> str:
    return f"{vault.url}/secrets/{secret.name}"


def _version_id(vault: VaultRecord, secret: SecretRecord, version: SecretVersionRecord) -> str:
    return f"{_secret_id(vault, secret)}/{version.version}"


def _bundle(
    vault: VaultRecord, secret: SecretRecord, version: SecretVersionRecord, *, with_value: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if with_value:
        body["value"] = version.value
    if version.content_type is not None:
        body["contentType"] = version.content_type
    body["id"] = _version_id(vault, secret, version)
    body["attributes"] = _attributes(vault, version)
    if version.tags is not None:
        body["tags"] = dict(version.tags)
    if version.certificate_key_id is not None:
        # The secret behind a certificate names its key and says Key Vault manages it.
        body["kid"] = version.certificate_key_id
        body["managed"] = True
    return body


def _item(vault: VaultRecord, secret: SecretRecord, version: SecretVersionRecord, *, versioned: bool) -> dict[str, Any]:
    """A list item: never a value; `/secrets` items carry the unversioned id of the secret."""
    item = _bundle(vault, secret, version, with_value=False)
    item.pop("kid", None)  # a SecretItem says `managed`, but names no key
    if not versioned:
        item["id"] = _secret_id(vault, secret)
    return item


def _deleted_fields(vault: VaultRecord, deleted: DeletedSecretRecord) -> dict[str, Any]:
    return {
        "recoveryId": f"{vault.url}/deletedsecrets/{deleted.secret.name}",
        "deletedDate": to_epoch(deleted.deleted),
        "scheduledPurgeDate": to_epoch(deleted.scheduled_purge),
    }


def _deleted_bundle(vault: VaultRecord, deleted: DeletedSecretRecord) -> dict[str, Any]:
    return {
        **_deleted_fields(vault, deleted),
        **_bundle(vault, deleted.secret, deleted.secret.latest, with_value=False),
    }


def _deleted_item(vault: VaultRecord, deleted: DeletedSecretRecord) -> dict[str, Any]:
    return {
        **_deleted_fields(vault, deleted),
        **_item(vault, deleted.secret, deleted.secret.latest, versioned=False),
    }


_COMMON_HEADERS = {
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "Expires": "-1",
    "x-ms-keyvault-region": LOCATION,
    "x-ms-keyvault-service-version": "1.9.2957.1",
}


def _headers(request: web.Request, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(_COMMON_HEADERS)
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        headers["x-ms-client-request-id"] = client_request_id
    headers.update(extra or {})
    return headers


def _json(request: web.Request, body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers={**_headers(request), "x-ms-request-id": str(uuid.uuid4())},
    )


def _error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    inner: str | None = None,
    extra: dict[str, str] | None = None,
) -> web.Response:
    return keyvault_error(status, code, message, inner, headers=_headers(request, extra))


def _not_found(request: web.Request, name: str, version: str | None = None) -> web.Response:
    label = f"{name}/{version}" if version else name
    return _error(request, 404, "SecretNotFound", f"A secret with (name/id) {label}{NOT_FOUND_TAIL}")


def managed_by_key_vault(request: web.Request, operation: str, kind: Literal["Secret", "Key"]) -> web.Response:
    """A write to the secret or key behind a certificate. The text and inner code of "set" are the
    service's (a published 403 of SetSecret on a certificate's secret); the same answer for update
    and delete, and `KeyManagedByKeyVault` for keys, are assumptions by analogy."""
    message = f'Operation "{operation}" is not allowed as this object\'s lifetime is managed by Key Vault.'
    return _error(request, 403, "Forbidden", message, f"{kind}ManagedByKeyVault")


def _deleted_not_found(request: web.Request, name: str) -> web.Response:
    return _error(request, 404, "SecretNotFound", f"Deleted Secret not found: {name}")


def _bad_parameter(request: web.Request, message: str) -> web.Response:
    return _error(request, 400, "BadParameter", message)


# --- authentication and authorization --------------------------------------------------------------
def _authority(request: web.Request) -> str:
    # The authority is the cloud's main port (Entra), not this vault's own port.
    return request.app.get(AUTHORITY, DEFAULT_AUTHORITY).rstrip("/")


def _unauthorized(request: web.Request, tenant_id: str, message: str) -> web.Response:
    challenge = f'Bearer authorization="{_authority(request)}/{tenant_id}", resource="{VAULT_AUDIENCE}"'
    return _error(request, 401, "Unauthorized", message, extra={"WWW-Authenticate": challenge})


def _issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


def _authenticate(request: web.Request, world: World) -> IssuedToken | web.Response:
    """The bearer token of the request, or the 401 Key Vault answers instead (always with a challenge,
    so the SDK's challenge policy can start over)."""
    header = request.headers.get("Authorization", "")
    with world.lock:
        tenant_id = world.default_tenant_id
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return _unauthorized(request, tenant_id, MISSING_TOKEN)
        token = world.tokens.get(header[7:].strip())
        if token is None:
            return _unauthorized(request, tenant_id, UNKNOWN_TOKEN)
        if token.expires <= datetime.now(UTC):  # real time: see World.issue_token
            return _unauthorized(request, tenant_id, EXPIRED_TOKEN)
    if token.audience != VAULT_AUDIENCE:
        return _unauthorized(
            request,
            tenant_id,
            f"AKV10022: Invalid audience. Expected {VAULT_AUDIENCE}, found: {token.audience}.",
        )
    if token.tenant_id != tenant_id:
        return _unauthorized(
            request,
            tenant_id,
            f"AKV10032: Invalid issuer. Expected one of {_issuer(tenant_id)}, found {_issuer(token.tenant_id)}.",
        )
    return token


def forbidden_action(
    request: web.Request, vault: VaultRecord, token: IssuedToken, action: str, scope: str | None
) -> web.Response:
    """The RBAC refusal, with the text the real service writes (Resource in lower case), for any data
    action (`Microsoft.KeyVault/vaults/...`) on the vault or on one object below it (`scope`, e.g.
    `certificates/name`)."""
    resource = vault.resource_id(token.tenant_id).lower()
    if scope is not None:
        resource = f"{resource}/{scope.lower()}"
    message = (
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, please observe "
        "propagation time.\r\n"
        f"Caller: appid={token.app_id};oid={token.subject_object_id};iss={_issuer(token.tenant_id)}\r\n"
        f"Action: '{action}'\r\n"
        f"Resource: '{resource}'\r\n"
        "Assignment: (not found)\r\n"
        "DenyAssignmentId: null\r\n"
        "DecisionReason: 'DeniedWithNoValidRBAC' \r\n"
        f"Vault: {vault.name};location={LOCATION}\r\n"
    )
    return _error(request, 403, "Forbidden", message, "ForbiddenByRbac")


# --- routing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Call:
    """One resolved request: what it does and on which secret."""

    request: web.Request
    world: World
    vault: VaultRecord
    token: IssuedToken
    name: str | None
    version: str | None


@dataclass(frozen=True)
class _Route:
    permission: Permission
    action: str  # the RBAC data action after "Microsoft.KeyVault/vaults/secrets/"
    secret_scoped: bool  # RBAC resource is the secret (else the vault)
    operation: str


def _resolve(method: str, segments: list[str]) -> tuple[_Route, str | None, str | None] | None:
    """Map method and path to an operation; `None` when Key Vault has no such secrets operation."""
    read: tuple[Permission, str] = ("read", "readMetadata/action")
    if len(segments) == 2 and segments[1] == "":
        segments = segments[:1]  # "/secrets/" is the collection too
    match method, segments:
        case "GET", ["secrets"]:
            return _Route(*read, False, "list_secrets"), None, None
        case "GET", ["secrets", name, "versions"]:
            return _Route(*read, False, "list_versions"), name, None
        case "PUT", ["secrets", name]:
            return _Route("write", "setSecret/action", True, "set"), name, None
        case "GET", ["secrets", name] | ["secrets", name, ""]:
            return _Route("get", "getSecret/action", True, "get"), name, None
        case "GET", ["secrets", name, version]:
            return _Route("get", "getSecret/action", True, "get"), name, version
        case "PATCH", ["secrets", name] | ["secrets", name, ""]:
            return _Route("write", "update/action", True, "update"), name, None
        case "PATCH", ["secrets", name, version]:
            return _Route("write", "update/action", True, "update"), name, version
        case "DELETE", ["secrets", name]:
            return _Route("delete", "delete", True, "delete"), name, None
        case "POST", ["secrets", "restore"]:
            return _Route("restore", "restore/action", False, "restore"), None, None
        case "POST", ["secrets", name, "backup"]:
            return _Route("backup", "backup/action", True, "backup"), name, None
        case "GET", ["deletedsecrets"]:
            return _Route(*read, False, "list_deleted"), None, None
        case "GET", ["deletedsecrets", name] | ["deletedsecrets", name, ""]:
            return _Route(*read, True, "get_deleted"), name, None
        case "DELETE", ["deletedsecrets", name] | ["deletedsecrets", name, ""]:
            return _Route("purge", "purge/action", True, "purge"), name, None
        case "POST", ["deletedsecrets", name, "recover"]:
            return _Route("write", "recover/action", True, "recover"), name, None
    return None


@dataclass(frozen=True)
class ObjectRoute:
    """A request on an object kind of the vault (secrets, certificates, keys): the permission it needs
    (see `VAULT_ROLE_PERMISSIONS`), its full RBAC data action, the object it is scoped to (`None`:
    the vault), and the operation, which runs under `world.lock`."""

    permission: str
    action: str
    scope: str | None
    operation: Callable[[_Call, Any], web.Response]
    name: str | None
    version: str | None
    reads_body: bool


#: Maps method and path segments to an ObjectRoute, or None when the path is not that kind's.
ObjectResolver = Callable[[str, list[str]], "ObjectRoute | None"]
OBJECT_RESOLVERS: web.AppKey[tuple[ObjectResolver, ...]] = web.AppKey("object_resolvers", tuple)


def setup(app: web.Application, objects: tuple[ObjectResolver, ...] = ()) -> None:
    """Serve the vault named `app[VAULT_NAME]`; every path goes through one handler so that the bearer
    challenge comes first, exactly as on the real service. `objects` route the other object kinds."""
    app[OBJECT_RESOLVERS] = objects
    app.router.add_route("*", "/{tail:.*}", _handle)


async def _handle_object(request: web.Request, world: World, token: IssuedToken, route: ObjectRoute) -> web.Response:
    if route.name is not None and not SECRET_NAME_RE.match(route.name):
        return _bad_parameter(request, f"The request URI contains an invalid name: {route.name}")
    body: Any = None
    if route.reads_body:
        parsed = _read_json(await request.read())
        if isinstance(parsed, str):
            return _bad_parameter(request, parsed)
        body = parsed
    with world.lock:
        vault = world.vault(request.app[VAULT_NAME])
        if vault is None:  # the vault was removed while its port still listens
            return _error(request, 404, "VaultNotFound", "The vault was not found.")
        if route.permission not in vault.permissions_of(token.subject_object_id.lower()):
            return forbidden_action(request, vault, token, route.action, route.scope)
        return route.operation(_Call(request, world, vault, token, route.name, route.version), body)


async def _handle(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    auth = _authenticate(request, world)
    if isinstance(auth, web.Response):
        return auth  # the challenge is answered before the body is read (the SDK sends none)
    token = auth
    request[CALLER] = token.app_id
    # Unverified: the exact text the service uses for a missing api-version.
    api_version = request.query.get("api-version")
    if not api_version:
        return _bad_parameter(request, "The 'api-version' query parameter is missing.")
    if api_version not in API_VERSIONS and not _PREVIEW_VERSION_RE.match(api_version):
        # The service's own words (Azure/azure-sdk-for-python#28595, an Azure Stack vault).
        return _bad_parameter(
            request,
            f"The specified version ({api_version}) is not recognized. Consider using the latest supported "
            f"version ({API_VERSIONS[0]}).",
        )
    segments = request.path.split("/")[1:]
    resolved = _resolve(request.method, segments)
    if resolved is None:
        for resolver in request.app.get(OBJECT_RESOLVERS, ()):
            object_route = resolver(request.method, segments)
            if object_route is not None:
                return await _handle_object(request, world, token, object_route)
        return _error(request, 404, "NotFound", "The requested resource was not found.")
    route, name, version = resolved
    # A secrets operation runs as the other kinds' do; its RBAC resource is the secret or the vault.
    secret_route = ObjectRoute(
        route.permission,
        f"{_ACTION_PREFIX}{route.action}",
        f"secrets/{name}" if route.secret_scoped and name is not None else None,
        _OPERATIONS[route.operation],
        name,
        version,
        reads_body=request.method in ("PUT", "PATCH") or route.operation == "restore",
    )
    return await _handle_object(request, world, token, secret_route)


def _read_json(raw: bytes) -> dict[str, Any] | str:
    """The request object, or the BadParameter text (unverified wording) when it is not one."""
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "The request body is not valid JSON."
    if not isinstance(parsed, dict):
        return "The request body must be a JSON object."
    return parsed


# --- operations (each runs under world.lock) -------------------------------------------------------
@dataclass
class _Attributes:
    enabled: bool | None = None
    not_before: datetime | None = None
    expires: datetime | None = None
    has_not_before: bool = False
    has_expires: bool = False


def _parse_common(body: dict[str, Any]) -> tuple[_Attributes, str | None, dict[str, str] | None] | str:
    """attributes, contentType and tags of a PUT or PATCH body, or the BadParameter text."""
    attributes = _Attributes()
    raw = body.get("attributes")
    if raw is not None:
        if not isinstance(raw, dict):
            return INVALID_PROPERTY
        enabled = raw.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            return INVALID_PROPERTY
        attributes.enabled = enabled
        for key in ("nbf", "exp"):
            if key not in raw:
                continue
            value = raw[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return INVALID_PROPERTY
            if value is not None and not MIN_EPOCH <= value <= MAX_EPOCH:
                # Outside the dates the service can hold: 400 like any invalid property, never a 500.
                return INVALID_PROPERTY
            moment = from_epoch(value) if value is not None else None
            if key == "nbf":
                attributes.not_before, attributes.has_not_before = moment, True
            else:
                attributes.expires, attributes.has_expires = moment, True
    content_type = body.get("contentType")
    if content_type is not None and not (isinstance(content_type, str) and len(content_type) <= MAX_CONTENT_TYPE):
        return INVALID_PROPERTY
    tags = body.get("tags")
    if tags is not None:
        if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
            return INVALID_PROPERTY
        for key, value in tags.items():
            if not (isinstance(value, str) and 0 < len(key) <= MAX_TAG_LENGTH and len(value) <= MAX_TAG_LENGTH):
                return INVALID_PROPERTY
    return attributes, content_type, tags


def _set(call: _Call, body: dict[str, Any]) -> web.Response:
    assert call.name is not None
    world, vault, request = call.world, call.vault, call.request
    value = body.get("value")
    if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        return _bad_parameter(request, INVALID_PROPERTY)
    parsed = _parse_common(body)
    if isinstance(parsed, str):
        return _bad_parameter(request, parsed)
    attributes, content_type, tags = parsed
    key = call.name.lower()
    if key in vault.certificates:
        return managed_by_key_vault(request, "set", "Secret")
    # A soft-deleted certificate keeps its secret's name too (it comes back on recovery).
    if key in vault.deleted or key in vault.deleted_certificates:
        return _error(
            request,
            409,
            "Conflict",
            f"Secret {call.name} is currently in a deleted but recoverable state, and its name cannot be "
            "reused; in this state, the secret can only be recovered or purged.",
            "ObjectIsDeletedButRecoverable",
        )
    throttle = world.config.throttle
    if throttle.enabled:
        wait = world.throttle(
            f"kv:{vault.name.lower()}:create",
            throttle.vault_creates,
            throttle.vault_window_seconds,
            time.monotonic(),
        )
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            return _error(request, 429, "Throttled", THROTTLED, extra={"Retry-After": retry})
    now = world.clock.now()
    secret = vault.secrets.get(key)
    if secret is None:
        secret = SecretRecord(name=call.name)
        vault.secrets[key] = secret
    version = SecretVersionRecord(
        version=uuid.uuid4().hex,
        value=value,
        content_type=content_type,
        tags=dict(tags) if tags is not None else None,
        enabled=True if attributes.enabled is None else attributes.enabled,
        created=now,
        updated=now,
        not_before=attributes.not_before,
        expires=attributes.expires,
    )
    secret.versions.append(version)
    world.emit_event(_event(vault, secret, version, EVENT_NEW_VERSION, now))
    return _json(request, _bundle(vault, secret, version, with_value=True))


# --- shared by every object kind (secrets here, keys and certificates in their modules) -------------
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)


class Versioned(Protocol[V_co]):
    """A secret, key or certificate record: its versions, the latest last."""

    @property
    def latest(self) -> V_co: ...

    def find(self, version: str, /) -> V_co | None: ...


def requested_version(call: _Call, record: Versioned[V]) -> V | None:
    """The version the path names (the latest when it names none), or None when the record has no
    such version; a version id that is not 32 hex digits is simply not found, as on the service."""
    if not call.version:
        return record.latest
    return record.find(call.version.lower()) if _VERSION_RE.match(call.version.lower()) else None


def purged(request: web.Request) -> web.Response:
    """What a purge answers: 204 with no body (any object kind)."""
    return web.Response(status=204, headers={**_headers(request), "x-ms-request-id": str(uuid.uuid4())})


def _find(call: _Call) -> tuple[SecretRecord, SecretVersionRecord] | web.Response:
    assert call.name is not None
    secret = call.vault.secrets.get(call.name.lower())
    if secret is None:
        return _not_found(call.request, call.name)
    version = requested_version(call, secret)
    if version is None:
        return _not_found(call.request, call.name, call.version)
    return secret, version


def _get(call: _Call, body: None) -> web.Response:
    found = _find(call)
    if isinstance(found, web.Response):
        return found
    secret, version = found
    # Only `enabled` is enforced: the docs say get works outside the nbf/exp window.
    if not version.enabled:
        return _error(call.request, 403, "Forbidden", DISABLED_SECRET, "SecretDisabled")
    return _json(call.request, _bundle(call.vault, secret, version, with_value=True))


def _update(call: _Call, body: dict[str, Any]) -> web.Response:
    parsed = _parse_common(body)
    if isinstance(parsed, str):
        return _bad_parameter(call.request, parsed)
    attributes, content_type, tags = parsed
    found = _find(call)
    if isinstance(found, web.Response):
        return found
    secret, version = found
    if version.certificate_key_id is not None:
        return managed_by_key_vault(call.request, "update", "Secret")
    if attributes.enabled is not None:
        version.enabled = attributes.enabled
    if attributes.has_not_before:
        version.not_before = attributes.not_before
    if attributes.has_expires and attributes.expires != version.expires:
        version.expires = attributes.expires
        # A new expiry is a new appointment: its near-expiry and expired events are due again.
        version.near_expiry_emitted = version.expired_emitted = False
    if "contentType" in body:
        version.content_type = content_type
    if "tags" in body:
        version.tags = dict(tags) if tags is not None else None
    version.updated = call.world.clock.now()
    return _json(call.request, _bundle(call.vault, secret, version, with_value=False))


def _delete(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    vault, key = call.vault, call.name.lower()
    secret = vault.secrets.get(key)
    if secret is None:
        return _not_found(call.request, call.name)
    if key in vault.certificates:
        return managed_by_key_vault(call.request, "delete", "Secret")
    now = call.world.clock.now()
    # Real deletion completes a few seconds later (the SDK polls for it); here it is immediate.
    deleted = DeletedSecretRecord(
        secret=secret, deleted=now, scheduled_purge=now + timedelta(days=vault.recoverable_days)
    )
    del vault.secrets[key]
    vault.deleted[key] = deleted
    return _json(call.request, _deleted_bundle(vault, deleted))


def _get_deleted(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    deleted = call.vault.deleted.get(call.name.lower())
    if deleted is None:
        return _deleted_not_found(call.request, call.name)
    return _json(call.request, _deleted_bundle(call.vault, deleted))


def _recover(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    vault, key = call.vault, call.name.lower()
    deleted = vault.deleted.pop(key, None)
    if deleted is None:
        return _deleted_not_found(call.request, call.name)
    vault.secrets[key] = deleted.secret
    return _json(call.request, _bundle(vault, deleted.secret, deleted.secret.latest, with_value=False))


def _purge(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    if call.vault.deleted.pop(call.name.lower(), None) is None:
        return _deleted_not_found(call.request, call.name)
    return purged(call.request)


# --- backup and restore ----------------------------------------------------------------------------
def _version_record(version: SecretVersionRecord) -> dict[str, Any]:
    return {
        "version": version.version,
        "value": version.value,
        "contentType": version.content_type,
        "tags": version.tags,
        "enabled": version.enabled,
        "created": to_epoch(version.created),
        "updated": to_epoch(version.updated),
        "nbf": to_epoch(version.not_before) if version.not_before is not None else None,
        "exp": to_epoch(version.expires) if version.expires is not None else None,
    }


def _seal(world: World, secret: SecretRecord) -> str:
    """Every version of the secret, values included, encrypted with the cloud's backup key: opaque
    and tamper-evident like the service's blobs, and useless outside this cloud."""
    plain = json.dumps({"name": secret.name, "versions": [_version_record(v) for v in secret.versions]}).encode()
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(world.backup_key).encrypt(nonce, plain, BACKUP_MAGIC)
    return base64.urlsafe_b64encode(BACKUP_MAGIC + nonce + sealed).decode("ascii").rstrip("=")


def _unseal(world: World, blob: str) -> SecretRecord | None:
    """The secret a blob of `_seal` holds, or None for anything else (corrupt, foreign, truncated)."""
    try:
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        if not raw.startswith(BACKUP_MAGIC):
            return None
        nonce, sealed = raw[len(BACKUP_MAGIC) : len(BACKUP_MAGIC) + 12], raw[len(BACKUP_MAGIC) + 12 :]
        content = json.loads(AESGCM(world.backup_key).decrypt(nonce, sealed, BACKUP_MAGIC))
        secret = SecretRecord(name=content["name"])
        for item in content["versions"]:
            secret.versions.append(
                SecretVersionRecord(
                    version=item["version"],
                    value=item["value"],
                    content_type=item["contentType"],
                    tags=item["tags"],
                    enabled=item["enabled"],
                    created=from_epoch(item["created"]),
                    updated=from_epoch(item["updated"]),
                    not_before=from_epoch(item["nbf"]) if item["nbf"] is not None else None,
                    expires=from_epoch(item["exp"]) if item["exp"] is not None else None,
                )
            )
    except (ValueError, KeyError, TypeError, InvalidTag):
        return None
    return secret if secret.versions else None


def _backup(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    secret = call.vault.secrets.get(call.name.lower())
    if secret is None:
        return _not_found(call.request, call.name)
    return _json(call.request, {"value": _seal(call.world, secret)})


def _restore(call: _Call, body: dict[str, Any]) -> web.Response:
    """The whole secret back, as it was: its name, every version with its id, value, tags, attributes
    and created/updated times. A name in use, live or soft-deleted, is a conflict."""
    vault, request = call.vault, call.request
    blob = body.get("value")
    secret = _unseal(call.world, blob) if isinstance(blob, str) else None
    if secret is None:
        # What the service answers to a corrupt blob (the SDKs' recorded "malformed backup bytes" test).
        return _error(request, 400, "Malformed backup blob", "Backup blob contains invalid or corrupt version.")
    key = secret.name.lower()
    if key in vault.secrets or key in vault.deleted:
        # The service's text (recorded restore after a name was reused).
        return _error(
            request,
            409,
            "Conflict",
            f"There was a conflict restoring the secret '{_version_id(vault, secret, secret.latest)}'. This can "
            "happen if either: a second secret with the same name was created after the first secret was "
            "deleted; thus trying to restore a secret whose name is already in use.",
        )
    vault.secrets[key] = secret
    return _json(request, _bundle(vault, secret, secret.latest, with_value=False))


# --- paging ----------------------------------------------------------------------------------------
def _encode_marker(marker: str) -> str:
    # Shaped like the service's own: base64 of {"NextMarker": …, "TargetLocation": 0}, unpadded.
    raw = json.dumps({"NextMarker": marker, "TargetLocation": 0}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_marker(token: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        marker = json.loads(raw)["NextMarker"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    return marker if isinstance(marker, str) else None


def _page(call: _Call, path: str, entries: Iterable[tuple[str, dict[str, Any]]]) -> web.Response:
    """One page of at most 25 `(sort key, item)` entries after the `$skiptoken` marker, with an absolute
    `nextLink` (or null on the last page)."""
    request = call.request
    raw_max = request.query.get("maxresults")
    size = MAX_PAGE
    if raw_max is not None:
        # Unverified wording; the service refuses page sizes above 25.
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= MAX_PAGE:
            return _bad_parameter(request, f"Invalid value '{raw_max}' for maxresults. It must be 1 to 25.")
        size = int(raw_max)
    marker: str | None = None
    skiptoken = request.query.get("$skiptoken")
    if skiptoken is not None:
        marker = _decode_marker(skiptoken)
        if marker is None:
            return _bad_parameter(request, "The $skiptoken is invalid.")
    ordered = sorted(entries, key=lambda entry: entry[0])
    remaining = [entry for entry in ordered if marker is None or entry[0] > marker]
    page, more = remaining[:size], len(remaining) > size
    next_link = None
    if more:
        next_link = (
            f"{call.vault.url}{path}?api-version={request.query['api-version']}"
            f"&$skiptoken={_encode_marker(page[-1][0])}"
        )
        if raw_max is not None:
            next_link += f"&maxresults={size}"
    return _json(request, {"value": [item for _, item in page], "nextLink": next_link})


def _list_secrets(call: _Call, body: None) -> web.Response:
    vault = call.vault
    entries = ((key, _item(vault, s, s.latest, versioned=False)) for key, s in vault.secrets.items())
    return _page(call, "/secrets", entries)


def _list_versions(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    secret = call.vault.secrets.get(call.name.lower())
    # The service lists no versions (200, empty) for a name it does not know; the SDKs' own recorded
    # tests ("can list secret versions (non existing)") rely on that. Versions are ordered by id.
    entries: list[tuple[str, dict[str, Any]]] = []
    if secret is not None:
        entries = [(v.version, _item(call.vault, secret, v, versioned=True)) for v in secret.versions]
    return _page(call, f"/secrets/{call.name}/versions", entries)


def _list_deleted(call: _Call, body: None) -> web.Response:
    vault = call.vault
    entries = ((key, _deleted_item(vault, d)) for key, d in vault.deleted.items())
    return _page(call, "/deletedsecrets", entries)


_OPERATIONS: dict[str, Callable[[_Call, Any], web.Response]] = {
    "list_secrets": _list_secrets,
    "list_versions": _list_versions,
    "set": _set,
    "get": _get,
    "update": _update,
    "delete": _delete,
    "list_deleted": _list_deleted,
    "get_deleted": _get_deleted,
    "recover": _recover,
    "purge": _purge,
    "backup": _backup,
    "restore": _restore,
}
