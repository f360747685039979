"""Microsoft Graph v1.0 for app registrations: read, list, `addPassword` and `removePassword`.

The routes answer the way graph.microsoft.com does for the calls an app-management client makes
through msgraph-sdk:
the same paths (object id and the `applications(appId='…')` alternate key), the same OData query
options, the same success content type and the same error codes and messages (see the wire facts;
where a code came from a published real response, the comment next to it says so).

Every handler follows one order, because the real service does: authenticate (401), throttle
writes (429), read the body (400), find the app in the caller's tenant (404), authorise (403),
validate and act. State is touched only under `World.lock`, never across an `await`.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from localcloud.errors import GRAPH_JSON, graph_error
from localcloud.keys import CALLER, WORLD
from localcloud.state import (
    GUID_RE,
    PERSONAL_AUDIENCES,
    ROLE_POLICY_READ,
    ROLE_READ_ALL,
    ROLE_RW_ALL,
    ROLE_RW_OWNED,
    Application,
    AppManagementPolicy,
    IssuedToken,
    PasswordCredential,
    Tenant,
    World,
)

PREFIX = "/v1.0"
# `@odata.context` always names the public service, whatever host served the call (as the real
# service does behind any proxy); only `@odata.nextLink` must point back here to be followable.
METADATA = "https://graph.microsoft.com/v1.0/$metadata"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
# `$expand` on directory objects: at most 100 objects a page whatever `$top` asks, and at most 20
# related objects each (Graph's documented limits of the parameter).
EXPAND_PAGE_MAX = 100
EXPAND_ITEMS_MAX = 20
#: The relations of an application `$expand` is served for here.
APPLICATION_EXPANDABLE = ("federatedIdentityCredentials",)
PERSONAL_PASSWORD_LIMIT = 2  # apps open to personal Microsoft accounts (wire facts)
DEFAULT_PASSWORD_YEARS = 2  # "The default value is startDateTime + 2 years" (addPassword docs)

# What Graph's gateway answers to a 401 (it names the resource's client id, Microsoft Graph's).
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
_INSUFFICIENT = "Insufficient privileges to complete the operation."

# Structural properties of microsoft.graph.application (from msgraph-sdk's model) and what an app
# that never set one answers: `$select` of any of them works, anything else is a 400.
_COLLECTIONS = frozenset(
    {
        "addIns",
        "appRoles",
        "identifierUris",
        "keyCredentials",
        "passwordCredentials",
        "tags",
        "requiredResourceAccess",
        "managerApplications",
    }
)
_PROPERTIES = (
    "id",
    "deletedDateTime",
    "addIns",
    "api",
    "appId",
    "applicationTemplateId",
    "appRoles",
    "authenticationBehaviors",
    "certification",
    "createdByAppId",
    "createdDateTime",
    "defaultRedirectUri",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "groupMembershipClaims",
    "identifierUris",
    "info",
    "isDeviceOnlyAuthSupported",
    "isDisabled",
    "isFallbackPublicClient",
    "keyCredentials",
    "managerApplications",
    "nativeAuthenticationApisEnabled",
    "notes",
    "oauth2RequirePostResponse",
    "optionalClaims",
    "parentalControlSettings",
    "passwordCredentials",
    "publicClient",
    "publisherDomain",
    "requestSignatureVerification",
    "requiredResourceAccess",
    "samlMetadataUrl",
    "serviceManagementReference",
    "servicePrincipalLockConfiguration",
    "signInAudience",
    "spa",
    "tags",
    "tokenEncryptionKeyId",
    "uniqueName",
    "verifiedPublisher",
    "web",
)


@dataclass(frozen=True)
class EntityType:
    """What `$select` and `$filter` need to know of a Graph entity type: its structural properties,
    which of them are collections (an unset one answers `[]`, not null), and the type's names."""

    name: str  # as error messages spell the type: microsoft.graph.{name}
    resource: str  # as `$filter` errors name the resource
    properties: tuple[str, ...]
    collections: frozenset[str]

    def canonical(self, name: str) -> str | None:
        """Graph matches property names case-insensitively and answers with the canonical spelling."""
        lowered = name.lower()
        return next((p for p in self.properties if p.lower() == lowered), None)


APPLICATION = EntityType("application", "Application", _PROPERTIES, _COLLECTIONS)

_EQ_RE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_STARTSWITH_RE = re.compile(r"^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)
_ANY_RE = re.compile(r"^\s*(\w+)/any\(\s*(\w+)\s*:\s*\2\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$", re.IGNORECASE)
_FIRST_NAME_RE = re.compile(r"(?:startswith\(\s*)?([A-Za-z_]\w*)", re.IGNORECASE)
_SKIPTOKEN_PREFIX = "v1:"


class GraphError(Exception):
    """An error the handler answers with Graph's envelope; raised anywhere below a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details


def _not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _bad_request(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


# --- routes --------------------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application) -> None:
    by_id = PREFIX + "/applications/{object_id}"
    # msgraph-sdk sends the alternate key as `applications(appId='…')`; aiohttp matches on the
    # decoded path, so `%27` quotes arrive as `'` as well.
    by_app_id = PREFIX + "/applications(appId={app_key})"
    router = app.router
    router.add_get(PREFIX + "/applications", _handled(list_applications))
    router.add_get(by_id, _handled(get_application))
    router.add_get(by_app_id, _handled(get_application))
    router.add_patch(by_id, _handled(update_application))
    router.add_patch(by_app_id, _handled(update_application))
    for base in (by_id, by_app_id):
        router.add_post(base + "/addPassword", _handled(add_password))
        router.add_post(base + "/removePassword", _handled(remove_password))
    router.add_get(by_id + "/appManagementPolicies", _handled(get_app_policies))
    router.add_get(PREFIX + "/policies/defaultAppManagementPolicy", _handled(get_default_policy))
    # Service principals and owners (a module of their own; it builds on the helpers here).
    from localcloud import graph_directory

    graph_directory.add_routes(router)
    # The beta sign-in activity report (and Graph's answer to the rest of beta).
    from localcloud import graph_reports

    graph_reports.add_routes(router)
    # Last, so it only sees what nothing above matched (aiohttp tries routes in order).
    router.add_route("*", PREFIX + "/{tail:.*}", _handled(unknown_route))


def _handled(handler: Handler) -> Handler:
    """Turn a raised GraphError into Graph's error envelope, echoing the client's request id."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except GraphError as exc:
            return graph_error(
                exc.status,
                exc.code,
                exc.message,
                exc.headers,
                details=exc.details,
                client_request_id=request.headers.get("client-request-id"),
            )

    return wrapper


# --- handlers ------------------------------------------------------------------------------------
async def get_application(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    select = _select(_query_options(request, allowed={"select"}).get("select"), APPLICATION)
    with world.lock:
        app = _find_application(world, token, request)
        if not _may_read(token, app):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        body = {"@odata.context": f"{METADATA}#applications{_context_selection(select)}/$entity"}
        body.update(_project(app.to_graph(), select, APPLICATION))
    return _json(request, body)


async def list_applications(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    options = _query_options(request, allowed={"select", "filter", "top", "skiptoken", "count", "expand"})
    select = _select(options.get("select"), APPLICATION)
    matches = application_filter(options.get("filter"))
    page_size = _page_size(options.get("top"))
    expand = _expand(options.get("expand"))
    if expand:
        page_size = min(page_size, EXPAND_PAGE_MAX)
    after = _decode_skiptoken(options.get("skiptoken"))
    with world.lock:
        tenant = _caller_tenant(world, token)
        if not _has_any_role(token, READ_ROLES):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        # A stable order (by object id) lets a skiptoken resume after the last item it saw even if
        # apps were added or deleted between pages. A managed identity has a service principal but
        # no app registration, so it is never listed here.
        visible = sorted(
            (
                a
                for a in tenant.applications.values()
                if not world.is_managed_identity(a) and _may_read(token, a) and matches(a)
            ),
            key=lambda a: a.object_id,
        )
        remaining = [a for a in visible if after is None or a.object_id > after]
        page = remaining[:page_size]
        items = [_project(a.to_graph(), select, APPLICATION) for a in page]
        if expand:
            for item, app in zip(items, page, strict=True):
                item["federatedIdentityCredentials"] = [
                    f.to_graph() for f in app.federated_credentials[:EXPAND_ITEMS_MAX]
                ]
    body: dict[str, Any] = {"@odata.context": f"{METADATA}#applications{_context_selection(select)}"}
    if options.get("count", "").lower() == "true":
        body["@odata.count"] = len(visible)  # all matches, not just this page
    if len(remaining) > page_size:
        body["@odata.nextLink"] = _next_link(request, page[-1].object_id)
    body["value"] = items
    return _json(request, body)


# Properties `PATCH /applications/{id}` and `PATCH /servicePrincipals/{id}` may change here (others
# answer 400, rather than being ignored).
_UPDATABLE = frozenset({"tags"})


async def update_application(request: web.Request) -> web.StreamResponse:
    """`PATCH /applications/{id}`: only `tags` is served. Authorised like Graph: the app's owners
    (app-only with Application.ReadWrite.OwnedBy) or Application.ReadWrite.All; anyone else 403.
    A collection is replaced whole, as Graph replaces it."""
    return await _update_tags(request, _writable_application, on_service_principal=False)


async def add_password(request: web.Request) -> web.StreamResponse:
    return await _add_password(request, _writable_application, on_service_principal=False)


async def remove_password(request: web.Request) -> web.StreamResponse:
    return await _remove_password(request, _writable_application, on_service_principal=False)


# What finds the object a write route names and checks the caller may write it (404/403): the app
# registration here, its service principal in `graph_credentials`. The two objects take the same
# bodies, limits and answers, so one handler body serves both; `on_service_principal` picks the
# collection (`passwords`/`sp_passwords`, `tags`/`sp_tags`) on the `Application` record.
WritableObject = Callable[[World, IssuedToken, web.Request], Application]


def _passwords_of(app: Application, *, on_service_principal: bool) -> list[PasswordCredential]:
    return app.sp_passwords if on_service_principal else app.passwords


async def _update_tags(
    request: web.Request, writable: WritableObject, *, on_service_principal: bool
) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a JSON object.")
    changes = {k: v for k, v in body.items() if not k.startswith("@odata.")}
    unknown = sorted(k for k in changes if k not in _UPDATABLE)
    if unknown:
        raise _bad_request(f"Property '{unknown[0]}' cannot be updated by this service.")
    tags = changes.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise _invalid_property("tags")
    with world.lock:
        app = writable(world, token, request)
        if tags is not None:
            if on_service_principal:
                app.sp_tags = list(tags)
            else:
                app.tags = list(tags)
    return _no_content(request)


async def _add_password(
    request: web.Request, writable: WritableObject, *, on_service_principal: bool
) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    requested = _password_request(await _json_body(request))
    with world.lock:
        app = writable(world, token, request)
        start = requested.start or world.clock.now()
        end = requested.end or _add_years(start, DEFAULT_PASSWORD_YEARS)
        _check_new_password(world, app, start, end, _passwords_of(app, on_service_principal=on_service_principal))
        credential, secret = world.add_password(
            app, requested.display_name, start, end, on_service_principal=on_service_principal
        )
        body = _password_body(credential, secret)
    return _json(request, body)


async def _remove_password(
    request: web.Request, writable: WritableObject, *, on_service_principal: bool
) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    key_id = _key_id(await _json_body(request))
    with world.lock:
        app = writable(world, token, request)
        passwords = _passwords_of(app, on_service_principal=on_service_principal)
        credential = next((p for p in passwords if p.key_id.lower() == key_id.lower()), None)
        if credential is None:
            # Status 400 per the wire facts; the exact real code and message are unpublished.
            raise _bad_request(f"No password credential found with keyId '{key_id}'.")
        passwords.remove(credential)
    return _no_content(request)


# --- app management policies (read-only; need Policy.Read.All, which a least-privilege client lacks) ---
async def get_default_policy(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    with world.lock:
        tenant = _caller_tenant(world, token)
        if not _has_any_role(token, (ROLE_POLICY_READ,)):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        policy = tenant.default_policy
        body: dict[str, Any] = {
            "@odata.context": f"{METADATA}#policies/defaultAppManagementPolicy/$entity",
            "id": tenant.tenant_id,
            "displayName": "Default app management tenant policy",
            "description": "Default tenant policy that enforces app management restrictions.",
            "isEnabled": policy is not None,
            "applicationRestrictions": {
                "passwordCredentials": _restrictions(policy),
                "keyCredentials": [],
            },
            "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
        }
    return _json(request, body)


async def get_app_policies(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    with world.lock:
        app = _find_application(world, token, request)
        if not _has_any_role(token, (ROLE_POLICY_READ,)):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        policies = []
        if app.policy is not None:
            policies.append(
                {
                    "id": _policy_id(app, app.policy),
                    "displayName": "Custom app management policy",
                    "description": "Assigned to this application.",
                    "isEnabled": True,
                    "restrictions": {"passwordCredentials": _restrictions(app.policy), "keyCredentials": []},
                }
            )
    return _json(request, {"@odata.context": f"{METADATA}#appManagementPolicies", "value": policies})


def _restrictions(policy: AppManagementPolicy | None) -> list[dict[str, Any]]:
    if policy is None:
        return []
    since = "2019-01-01T00:00:00Z"  # binds every app the local cloud creates
    rules: list[dict[str, Any]] = []
    if policy.block_password_addition:
        rules.append(
            {
                "restrictionType": "passwordAddition",
                "state": "enabled",
                "maxLifetime": None,
                "restrictForAppsCreatedAfterDateTime": since,
            }
        )
    if policy.password_max_lifetime is not None:
        seconds = int(policy.password_max_lifetime.total_seconds())
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        rules.append(
            {
                "restrictionType": "passwordLifetime",
                "state": "enabled",
                "maxLifetime": f"P{days}DT{hours}H{minutes}M{secs}S",
                "restrictForAppsCreatedAfterDateTime": since,
            }
        )
    return rules


async def unknown_route(request: web.Request) -> web.StreamResponse:
    tail = request.match_info["tail"]
    segment = tail.split("/", 1)[0]
    if segment in ("applications", "servicePrincipals") or segment.startswith(("applications(", "servicePrincipals(")):
        # The resource exists, the method (or the function under it) is not one served here.
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


# --- authentication and authorisation ------------------------------------------------------------
def _authenticate(request: web.Request) -> IssuedToken:
    world = request.app[WORLD]
    header = request.headers.get("Authorization")
    raw = header[7:].strip() if header and header.lower().startswith("bearer ") else ""
    if not raw:
        raise _unauthenticated("Access token is empty.")
    with world.lock:
        token = world.token_from_header(header)
        known = raw in world.tokens
    if token is None:
        if known:
            raise _unauthenticated("Lifetime validation failed, the token is expired.")
        # What Graph says to a bearer value that is not a token it issued (not a JWT).
        raise _unauthenticated("CompactToken parsing failed with error code: 80049217")
    if token.service != "graph":
        raise _unauthenticated("Access token validation failure. Invalid audience.")
    request[CALLER] = token.app_id
    return token


def _unauthenticated(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": _WWW_AUTHENTICATE})


def _has_any_role(token: IssuedToken, roles: Iterable[str]) -> bool:
    return any(role in token.roles for role in roles)


def _owns(token: IssuedToken, app: Application) -> bool:
    return token.subject_object_id.lower() in {owner.lower() for owner in app.owners}


#: Application permissions that read every application and service principal of the tenant. The
#: permissions reference says so of Application.ReadWrite.OwnedBy too: it "allows an app to call GET
#: /applications and GET /servicePrincipals to list all applications and service principals in the
#: tenant"; what it limits to owned objects is writing.
READ_ROLES = (ROLE_RW_ALL, ROLE_READ_ALL, ROLE_RW_OWNED)


def _may_read(token: IssuedToken, app: Application) -> bool:
    """Whether the caller may read this app registration (and its service principal): with any of
    `READ_ROLES`, or when it is the caller's own ("a service principal can retrieve its own
    application and service principal details without being granted any application permissions")."""
    return _has_any_role(token, READ_ROLES) or token.subject_object_id.lower() == app.sp_object_id.lower()


def _may_write(token: IssuedToken, app: Application) -> bool:
    if ROLE_RW_ALL in token.roles:
        return True
    return ROLE_RW_OWNED in token.roles and _owns(token, app)


def _writable_application(world: World, token: IssuedToken, request: web.Request) -> Application:
    """The app the request names (404 if not in the caller's tenant), if the caller may change it (403)."""
    app = _find_application(world, token, request)
    if not _may_write(token, app):
        raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
    return app


def _throttle_write(world: World, token: IssuedToken) -> None:
    """Identity writes are limited per app and tenant; Graph may send a fractional Retry-After."""
    with world.lock:
        limits = world.config.throttle
        if not limits.enabled:
            return
        key = f"graph:{token.tenant_id}:{token.app_id}"
        wait = world.throttle(key, limits.graph_writes, limits.graph_window_seconds, time.monotonic())
    if wait > 0:
        raise GraphError(429, "TooManyRequests", "Too many requests.", headers={"Retry-After": _seconds(wait)})


def _seconds(wait: float) -> str:
    """`2.128`, `1` or `0.001`: up to three decimals, never zero (zero would mean "retry now")."""
    return f"{max(wait, 0.001):.3f}".rstrip("0").rstrip(".")


# --- finding the application ---------------------------------------------------------------------
def _caller_tenant(world: World, token: IssuedToken) -> Tenant:
    tenant = world.tenants.get(token.tenant_id)
    if tenant is None:  # the token outlived its tenant; nothing in it is visible
        raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
    return tenant


def _find_application(world: World, token: IssuedToken, request: web.Request) -> Application:
    """The app named by the route, looked up only in the caller's tenant (others' apps are 404)."""
    tenant = _caller_tenant(world, token)
    if "app_key" in request.match_info:
        app_id = _alternate_key(request.match_info["app_key"])
        found = world.application_by_app_id(tenant, app_id)
        if found is None or world.is_managed_identity(found):
            raise _not_found(app_id)
        return found
    object_id = request.match_info["object_id"]
    if not GUID_RE.match(object_id):
        raise _bad_request(f"Invalid object identifier '{object_id}'.")
    app = tenant.applications.get(object_id.lower())
    if app is None or world.is_managed_identity(app):
        raise _not_found(object_id)
    return app


def _alternate_key(raw: str) -> str:
    """`'guid'` → `guid`; OData string literals are quoted, and `''` is an escaped quote."""
    if len(raw) < 2 or raw[0] != "'" or raw[-1] != "'":
        raise GraphError(400, "BadRequest", "Bad Request - Error in query syntax.")
    return raw[1:-1].replace("''", "'")


# --- query options -------------------------------------------------------------------------------
def _query_options(request: web.Request, *, allowed: set[str]) -> dict[str, str]:
    """`$select`, `select` (v1.0 makes the `$` optional) and the like, by bare lower-case name."""
    options: dict[str, str] = {}
    for key, value in request.query.items():
        if not key.startswith("$") and key.lower() not in allowed:
            continue  # plain parameters are not OData options; Graph ignores them
        name = key.lstrip("$").lower()
        if name not in allowed:
            raise _bad_request(f"'${name}' is not supported by the service.")
        options[name] = value
    return options


def _expand(raw: str | None) -> bool:
    """`$expand=federatedIdentityCredentials` on the applications list; any other relation is refused
    rather than silently ignored (this cloud serves no other expansion)."""
    if raw is None or not raw.strip():
        return False
    wanted = [item.strip() for item in raw.split(",")]
    unknown = [w for w in wanted if w.lower() not in {e.lower() for e in APPLICATION_EXPANDABLE}]
    if unknown:
        raise _bad_request(f"Parsing OData Select and Expand failed: '$expand' of '{unknown[0]}' is not served here.")
    return True


def _select(raw: str | None, entity: EntityType) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    selected: list[str] = []
    for item in raw.split(","):
        name = entity.canonical(item.strip())
        if name is None:
            raise _bad_request(
                f"Could not find a property named '{item.strip()}' on type 'microsoft.graph.{entity.name}'."
            )
        if name not in selected:
            selected.append(name)
    return selected


def _context_selection(select: list[str] | None) -> str:
    return f"({','.join(select)})" if select else ""


def _project(full: dict[str, Any], select: list[str] | None, entity: EntityType) -> dict[str, Any]:
    """Without `$select`, the default properties; with it, exactly the selected ones (not even id)."""
    if select is None:
        return full
    return {name: full.get(name, [] if name in entity.collections else None) for name in select}


T = TypeVar("T")
Text = Callable[[T], str]
Texts = Callable[[T], Iterable[str]]


def entity_filter(
    raw: str | None,
    entity: EntityType,
    *,
    equal: dict[str, Text[T]],
    starts_with: dict[str, Text[T]],
    any_equal: dict[str, Texts[T]],
) -> Callable[[T], bool]:
    """The `$filter` forms clients of app registrations use: `prop eq '…'`, `startswith(prop,'…')` and
    the lambda `collection/any(x:x eq '…')` (how the Azure CLI looks up identifier URIs and service
    principal names), each on the properties Graph indexes that way; anything else is refused as
    Graph refuses it. Strings compare case-insensitively, as the directory does."""
    if raw is None or not raw.strip():
        return lambda item: True
    matched = _EQ_RE.match(raw)
    if matched and (prop := entity.canonical(matched.group(1))) in equal:
        value, read = matched.group(2).replace("''", "'").lower(), equal[prop]
        return lambda item: read(item).lower() == value
    matched = _STARTSWITH_RE.match(raw)
    if matched and (prop := entity.canonical(matched.group(1))) in starts_with:
        prefix, read = matched.group(2).replace("''", "'").lower(), starts_with[prop]
        return lambda item: read(item).lower().startswith(prefix)
    matched = _ANY_RE.match(raw)
    if matched and (prop := entity.canonical(matched.group(1))) in any_equal:
        value, values = matched.group(3).replace("''", "'").lower(), any_equal[prop]
        return lambda item: any(v.lower() == value for v in values(item))
    first = _FIRST_NAME_RE.match(raw.strip())
    if first and (prop := entity.canonical(first.group(1))) is not None:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for property '{prop}' of resource "
            f"'{entity.resource}'.",
        )
    raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")


def application_filter(raw: str | None) -> Callable[[Application], bool]:
    return entity_filter(
        raw,
        APPLICATION,
        equal={"appId": lambda a: a.app_id, "displayName": lambda a: a.display_name},
        starts_with={"displayName": lambda a: a.display_name},
        any_equal={"identifierUris": lambda a: a.identifier_uris},
    )


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
    return size


def _encode_skiptoken(last_object_id: str) -> str:
    # Opaque to clients, as the real (base64) tokens are; it remembers where the page ended.
    return base64.urlsafe_b64encode((_SKIPTOKEN_PREFIX + last_object_id).encode()).decode().rstrip("=")


def _decode_skiptoken(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except ValueError:  # not base64, not ASCII, not UTF-8: a token this server never made
        text = ""
    last = text[len(_SKIPTOKEN_PREFIX) :]
    if not text.startswith(_SKIPTOKEN_PREFIX) or not GUID_RE.match(last):
        raise _bad_request("The specified page token value has expired and can no longer be included in your request.")
    return last


def _next_link(request: web.Request, last_object_id: str) -> str:
    """An absolute URL back to this server with the caller's options and a new `$skiptoken`."""
    pairs = [(k, v) for k, v in request.query.items() if k.lstrip("$").lower() != "skiptoken"]
    pairs.append(("$skiptoken", _encode_skiptoken(last_object_id)))
    # Keep OData's punctuation readable (`$filter=appId eq '…'`); spaces become %20, never `+`.
    query = "&".join(quote(key, safe="$") + "=" + quote(value, safe="$,'()") for key, value in pairs)
    return f"{request.scheme}://{request.host}{request.path}?{query}"


# --- addPassword ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PasswordRequest:
    display_name: str | None
    start: datetime | None
    end: datetime | None


async def _json_body(request: web.Request) -> Any:
    text = (await request.read()).decode("utf-8", errors="replace")
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
            "valid JSON format.",
        ) from exc


def _password_request(body: Any) -> PasswordRequest:
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a JSON object.")
    credential = body.get("passwordCredential")
    if credential is None:
        return PasswordRequest(None, None, None)  # every property is optional, the object too
    if not isinstance(credential, dict):
        raise _invalid_property("passwordCredential")
    display_name = credential.get("displayName")
    if display_name is not None and not isinstance(display_name, str):
        raise _invalid_property("displayName")
    start = _datetime(credential.get("startDateTime"), "startDateTime")
    end = _datetime(credential.get("endDateTime"), "endDateTime")
    return PasswordRequest(display_name, start, end)


def _invalid_property(name: str) -> GraphError:
    return _bad_request(f"Invalid value specified for property '{name}' of resource 'PasswordCredential'.")


def _datetime(value: Any, name: str) -> datetime | None:
    """Edm.DateTimeOffset; a value without an offset is read as UTC, as Graph documents times."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid_property(name)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise _invalid_property(name) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _add_years(moment: datetime, years: int) -> datetime:
    """Calendar years, like .NET's AddYears: 29 February becomes 28 February."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def _check_new_password(
    world: World, app: Application, start: datetime, end: datetime, existing: list[PasswordCredential] | None = None
) -> None:
    """`existing`: the passwords of the object that gets the new one (default: the app registration's)."""
    existing = app.passwords if existing is None else existing
    if end <= start or end <= world.clock.now():
        # What the directory answered to a password that ends before it starts or in the past
        # (hashicorp/terraform-provider-azuread#201, 2020).
        raise _bad_request("Key credential end date is invalid.")
    policy = world.effective_policy(app)
    if policy is not None:
        _check_policy(app, policy, start, end)
    if app.sign_in_audience in PERSONAL_AUDIENCES and len(existing) >= PERSONAL_PASSWORD_LIMIT:
        # Real body: Azure/azure-cli#12946 (2022).
        raise GraphError(
            400,
            "TooManyAppPasswords",
            f"Not allowed to add {len(existing) + 1} passwords. You can only add a maximum of "
            f"{PERSONAL_PASSWORD_LIMIT} passwords.",
            details=[{"target": "passwordCredentials", "code": "TooManyAppPasswords"}],
        )


def _check_policy(app: Application, policy: AppManagementPolicy, start: datetime, end: datetime) -> None:
    policy_id = _policy_id(app, policy)
    if policy.block_password_addition:
        # Code as real tooling matches it (e.g. TeamsFx); message as users quote it.
        raise GraphError(
            400,
            "CredentialTypeNotAllowedAsPerAppPolicy",
            f"Credential type not allowed as per assigned policy '{policy_id}'.",
        )
    limit = policy.password_max_lifetime
    if limit is not None and end - start > limit:
        # Real body: OfficeDev/microsoft-365-agents-toolkit#10998 (2024).
        message = f"Credential lifetime exceeds the max value allowed as per assigned policy '{policy_id}'."
        raise GraphError(
            400,
            "CredentialInvalidLifetimeAsPerAppPolicy",
            message,
            details=[{"code": "InvalidKeyEndDate", "message": message, "target": "EndDate"}],
        )


def _policy_id(app: Application, policy: AppManagementPolicy) -> str:
    """A stable id per policy: the world keeps none, but the real message names one."""
    scope = f"app:{app.object_id}" if app.policy is policy else f"tenant:{app.tenant_id}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:local-cloud:appManagementPolicy:{scope}"))


def _password_body(credential: PasswordCredential, secret: str) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": f"{METADATA}#microsoft.graph.passwordCredential"}
    body.update(credential.to_graph())
    body["secretText"] = secret  # the only response that ever carries it
    return body


# --- removePassword ------------------------------------------------------------------------------
def _key_id(body: Any) -> str:
    if not isinstance(body, dict) or body.get("keyId") is None:
        raise _bad_request("The 'keyId' parameter is required.")
    key_id = body["keyId"]
    if not isinstance(key_id, str) or not GUID_RE.match(key_id):
        raise _invalid_property("keyId")
    return key_id


# --- responses -----------------------------------------------------------------------------------
def _ids(request: web.Request) -> dict[str, str]:
    request_id = str(uuid.uuid4())
    return {
        "request-id": request_id,
        "client-request-id": request.headers.get("client-request-id", request_id),
    }


def _json(request: web.Request, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=200,
        body=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": GRAPH_JSON, **_ids(request)},
    )


def _no_content(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=_ids(request))
