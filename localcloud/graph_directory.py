"""Microsoft Graph v1.0 service principals and the `owners` of applications and service principals.

What the Azure CLI and the SDKs read of them: `GET /servicePrincipals` (with `$filter`, `$select`,
paging), by object id and by the `servicePrincipals(appId='…')` alternate key, and the owners
relation (`GET …/owners`, `POST …/owners/$ref`, `DELETE …/owners/{id}/$ref`) on both kinds of
object. The permission rules are the Graph permissions reference's:

- reading: `Application.Read.All`, `Application.ReadWrite.All` and `Application.ReadWrite.OwnedBy`
  read every app and service principal of the tenant (OwnedBy limits writes, not reads), and a
  service principal may always read its own app and itself;
- adding an owner: `Application.ReadWrite.All` ("Application.ReadWrite.OwnedBy isn't sufficient to
  add another owner");
- removing an owner: `Application.ReadWrite.All`, or `Application.ReadWrite.OwnedBy` on an object
  the caller owns.

A managed identity is a service principal (`servicePrincipalType` `ManagedIdentity`) with no app
registration, so it appears here and never under `applications`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from localcloud.graph import (
    METADATA,
    PREFIX,
    READ_ROLES,
    EntityType,
    GraphError,
    _alternate_key,
    _authenticate,
    _bad_request,
    _caller_tenant,
    _context_selection,
    _decode_skiptoken,
    _find_application,
    _handled,
    _has_any_role,
    _json,
    _json_body,
    _may_read,
    _next_link,
    _no_content,
    _not_found,
    _page_size,
    _project,
    _query_options,
    _select,
    _throttle_write,
    entity_filter,
)
from localcloud.keys import WORLD
from localcloud.state import (
    GUID_RE,
    ROLE_RW_ALL,
    ROLE_RW_OWNED,
    Application,
    IssuedToken,
    World,
    graph_time,
)

_INSUFFICIENT = "Insufficient privileges to complete the operation."
# The tenant Microsoft's own first-party and managed-identity service principals belong to.
_MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# Structural properties of microsoft.graph.servicePrincipal (v1.0), for `$select`.
_SP_COLLECTIONS = frozenset(
    {
        "addIns",
        "alternativeNames",
        "appRoles",
        "keyCredentials",
        "notificationEmailAddresses",
        "oauth2PermissionScopes",
        "passwordCredentials",
        "replyUrls",
        "resourceSpecificApplicationPermissions",
        "servicePrincipalNames",
        "tags",
    }
)
_SP_PROPERTIES = (
    "id",
    "deletedDateTime",
    "accountEnabled",
    "addIns",
    "alternativeNames",
    "appDescription",
    "appDisplayName",
    "appId",
    "applicationTemplateId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "appRoles",
    "createdDateTime",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "homepage",
    "info",
    "keyCredentials",
    "loginUrl",
    "logoutUrl",
    "notes",
    "notificationEmailAddresses",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "preferredSingleSignOnMode",
    "preferredTokenSigningKeyThumbprint",
    "replyUrls",
    "resourceSpecificApplicationPermissions",
    "samlSingleSignOnSettings",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
    "tokenEncryptionKeyId",
    "verifiedPublisher",
)
SERVICE_PRINCIPAL = EntityType("servicePrincipal", "ServicePrincipal", _SP_PROPERTIES, _SP_COLLECTIONS)

# `@odata.id` of an owner reference: any Graph host (the CLI writes its own Graph endpoint), then
# the object's collection and id.
_REFERENCE_RE = re.compile(
    r"^https://[^/]+/(?:v1\.0|beta)/(?:directoryObjects|servicePrincipals|users)/"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def add_routes(router: web.UrlDispatcher) -> None:
    """Registered by `graph.setup` before its catch-all route."""
    sp_by_id = PREFIX + "/servicePrincipals/{sp_id}"
    sp_by_app_id = PREFIX + "/servicePrincipals(appId={app_key})"
    router.add_get(PREFIX + "/servicePrincipals", _handled(list_service_principals))
    router.add_get(sp_by_id, _handled(get_service_principal))
    router.add_get(sp_by_app_id, _handled(get_service_principal))
    for base in (
        PREFIX + "/applications/{object_id}",
        PREFIX + "/applications(appId={app_key})",
        sp_by_id,
        sp_by_app_id,
    ):
        router.add_get(base + "/owners", _handled(list_owners))
        router.add_post(base + "/owners/$ref", _handled(add_owner))
        router.add_delete(base + "/owners/{owner_id}/$ref", _handled(remove_owner))
    # Credentials and tags of service principals, key credentials and federated credentials of apps.
    from localcloud import graph_credentials

    graph_credentials.add_routes(router)


# --- service principals ----------------------------------------------------------------------------
def service_principal_body(world: World, app: Application) -> dict[str, Any]:
    """The default properties of the service principal behind `app` (an app registration's, or a
    managed identity's)."""
    managed = world.is_managed_identity(app)
    identity = world.managed_identities.get(app.sp_object_id)
    if managed and identity is not None:
        # App Service's system-assigned identity is named after its site; a user-assigned one is an
        # ARM resource of its own. Both carry the resource id in `alternativeNames`.
        kind = "Microsoft.Web/sites" if identity.system_assigned else "Microsoft.ManagedIdentity/userAssignedIdentities"
        resource_id = (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-local/providers/"
            f"{kind}/{app.display_name}"
        )
        alternative_names = [f"isExplicit={'False' if identity.system_assigned else 'True'}", resource_id]
    else:
        alternative_names = []
    return {
        "id": app.sp_object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": alternative_names,
        "appDisplayName": None if managed else app.display_name,
        "appDescription": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": _MICROSOFT_SERVICES_TENANT if managed else app.tenant_id,
        "appRoleAssignmentRequired": False,
        "createdDateTime": graph_time(app.created),
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": app.display_name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        # An app's service principal answers to its appId and to the app's identifier URIs.
        "servicePrincipalNames": [app.app_id, *app.identifier_uris],
        "servicePrincipalType": "ManagedIdentity" if managed else "Application",
        "signInAudience": "AzureADMyOrg" if managed else app.sign_in_audience,
        # Graph documents a service principal's tags as "the union of strings set here and on the
        # associated application entity's tags property": the app's tags show here too.
        "tags": service_principal_tags(app),
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": [
            {
                "allowedMemberTypes": list(role.allowed_member_types),
                "description": role.display_name,
                "displayName": role.display_name,
                "id": role.role_id,
                "isEnabled": role.enabled,
                "origin": "Application",
                "value": role.value,
            }
            for role in app.app_roles
        ],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [k.to_graph() for k in app.sp_certificates],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [p.to_graph() for p in app.sp_passwords],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
    }


def _service_principal_filter(raw: str | None) -> Callable[[Application], bool]:
    return entity_filter(
        raw,
        SERVICE_PRINCIPAL,
        equal={"appId": lambda a: a.app_id, "displayName": lambda a: a.display_name, "id": lambda a: a.sp_object_id},
        starts_with={"displayName": lambda a: a.display_name},
        any_equal={"servicePrincipalNames": lambda a: [a.app_id, *a.identifier_uris]},
    )


def _find_service_principal(world: World, token: IssuedToken, request: web.Request) -> Application:
    """The service principal the route names, looked up in the caller's tenant only (404 otherwise);
    `Application` is the world's record of it."""
    tenant = _caller_tenant(world, token)
    if "app_key" in request.match_info:
        app_id = _alternate_key(request.match_info["app_key"])
        found = world.application_by_app_id(tenant, app_id)
        if found is None:
            raise _not_found(app_id)
        return found
    sp_id = request.match_info["sp_id"]
    if not GUID_RE.match(sp_id):
        raise _bad_request(f"Invalid object identifier '{sp_id}'.")
    found = next((a for a in tenant.applications.values() if a.sp_object_id.lower() == sp_id.lower()), None)
    if found is None:
        raise _not_found(sp_id)
    return found


async def get_service_principal(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    select = _select(_query_options(request, allowed={"select"}).get("select"), SERVICE_PRINCIPAL)
    with world.lock:
        app = _find_service_principal(world, token, request)
        if not _may_read(token, app):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        body = {"@odata.context": f"{METADATA}#servicePrincipals{_context_selection(select)}/$entity"}
        body.update(_project(service_principal_body(world, app), select, SERVICE_PRINCIPAL))
    return _json(request, body)


async def list_service_principals(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    options = _query_options(request, allowed={"select", "filter", "top", "skiptoken", "count"})
    select = _select(options.get("select"), SERVICE_PRINCIPAL)
    matches = _service_principal_filter(options.get("filter"))
    page_size = _page_size(options.get("top"))
    after = _decode_skiptoken(options.get("skiptoken"))
    with world.lock:
        tenant = _caller_tenant(world, token)
        if not _has_any_role(token, READ_ROLES):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        # Ordered by object id, so a skiptoken resumes after the last one a page showed.
        visible = sorted((a for a in tenant.applications.values() if matches(a)), key=lambda a: a.sp_object_id)
        remaining = [a for a in visible if after is None or a.sp_object_id > after]
        page = remaining[:page_size]
        items = [_project(service_principal_body(world, a), select, SERVICE_PRINCIPAL) for a in page]
    body: dict[str, Any] = {"@odata.context": f"{METADATA}#servicePrincipals{_context_selection(select)}"}
    if options.get("count", "").lower() == "true":
        body["@odata.count"] = len(visible)
    if len(remaining) > page_size:
        body["@odata.nextLink"] = _next_link(request, page[-1].sp_object_id)
    body["value"] = items
    return _json(request, body)


# --- owners ----------------------------------------------------------------------------------------
def _owned_object(world: World, token: IssuedToken, request: web.Request) -> tuple[Application, set[str]]:
    """The app registration or service principal the route names, and its owners (a live set)."""
    if request.path.startswith(PREFIX + "/applications"):
        app = _find_application(world, token, request)
        return app, app.owners
    app = _find_service_principal(world, token, request)
    return app, app.sp_owners


def _owner_body(world: World, object_id: str) -> dict[str, Any]:
    """An owner as a directoryObject: a service principal in full; an object this cloud does not
    model (a user named by an admin call) with its type and id only, as Graph answers for objects
    the caller may not read."""
    principal = world.application_by_sp(object_id)
    if principal is None:
        return {"@odata.type": "#microsoft.graph.directoryObject", "id": object_id}
    return {"@odata.type": "#microsoft.graph.servicePrincipal", **service_principal_body(world, principal)}


async def list_owners(request: web.Request) -> web.StreamResponse:
    """Owners a page at a time (100 by default, `$top` up to 999), ordered by object id so that a
    `$skiptoken` resumes after the last one a page showed, as Graph pages every relation."""
    world = request.app[WORLD]
    token = _authenticate(request)
    options = _query_options(request, allowed={"select", "top", "count", "skiptoken"})
    page_size = _page_size(options.get("top"))
    after = _decode_skiptoken(options.get("skiptoken"))
    with world.lock:
        app, owners = _owned_object(world, token, request)
        if not _may_read(token, app):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        remaining = [owner for owner in sorted(owners) if after is None or owner > after]
        items = [_owner_body(world, owner) for owner in remaining[:page_size]]
    body: dict[str, Any] = {"@odata.context": f"{METADATA}#directoryObjects"}
    if len(remaining) > page_size:
        body["@odata.nextLink"] = _next_link(request, remaining[page_size - 1])
    body["value"] = items
    return _json(request, body)


def _reference(body: Any) -> str:
    """The object id an `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`
    body names (unverified wording of the refusals)."""
    if not isinstance(body, dict) or not isinstance(body.get("@odata.id"), str):
        raise _bad_request("The request body must name the owner by '@odata.id'.")
    matched = _REFERENCE_RE.match(body["@odata.id"])
    if matched is None:
        raise _bad_request(f"Invalid URL format specified in @odata.id: '{body['@odata.id']}'.")
    return matched.group(1).lower()


async def add_owner(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    owner_id = _reference(await _json_body(request))
    with world.lock:
        app, owners = _owned_object(world, token, request)
        if ROLE_RW_ALL not in token.roles:
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        owner = world.application_by_sp(owner_id)
        if owner is None or owner.tenant_id != app.tenant_id:
            raise _not_found(owner_id)
        if owner_id in {o.lower() for o in owners}:
            # What Graph answers to an owner added twice (the Azure CLI checks first for that reason).
            raise _bad_request(
                "One or more added object references already exist for the following modified properties: 'owners'."
            )
        owners.add(owner_id)
    return _no_content(request)


async def remove_owner(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    owner_id = request.match_info["owner_id"]
    if not GUID_RE.match(owner_id):
        raise _bad_request(f"Invalid object identifier '{owner_id}'.")
    with world.lock:
        _, owners = _owned_object(world, token, request)
        caller_owns = token.subject_object_id.lower() in {o.lower() for o in owners}
        if not (ROLE_RW_ALL in token.roles or (ROLE_RW_OWNED in token.roles and caller_owns)):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        current = next((o for o in owners if o.lower() == owner_id.lower()), None)
        if current is None:
            raise _not_found(owner_id)
        owners.discard(current)
    return _no_content(request)


def service_principal_tags(app: Application) -> list[str]:
    """What Graph reads back as the service principal's ``tags``: its own, then the app's it lacks."""
    own = list(app.sp_tags)
    return own + [t for t in app.tags if t not in own]
