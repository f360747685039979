"""Microsoft Graph v1.0: credentials that live on a service principal, and the service principal's tags.

- `POST /servicePrincipals/{id}/addPassword` and `/removePassword` (also on the alternate key
  `servicePrincipals(appId='…')`, which the Graph reference lists for both): the same body, answer and
  limits as the application's (default lifetime two years, the app management policy, the personal
  accounts' two-password cap), but the password is the service principal's. Entra accepts it for client
  credentials as it accepts the application's; the sign-in log says `servicePrincipal` for it.
- `PATCH /servicePrincipals/{id}` with `tags` (the only property served; others 400), which the
  service principal's owners and Application.ReadWrite.All may write.
- `GET /applications/{id}/federatedIdentityCredentials`: what an app trusts instead of a secret.

Who may write a service principal: Application.ReadWrite.All, or Application.ReadWrite.OwnedBy when the
caller is one of *its* owners (`sp_owners`; owning the app registration is a different relation).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from localcloud.graph import (
    METADATA,
    PREFIX,
    GraphError,
    _add_password,
    _authenticate,
    _find_application,
    _handled,
    _json,
    _may_read,
    _query_options,
    _remove_password,
    _update_tags,
)
from localcloud.graph_directory import _find_service_principal
from localcloud.keys import WORLD
from localcloud.state import ROLE_RW_ALL, ROLE_RW_OWNED, Application, IssuedToken, World

_INSUFFICIENT = "Insufficient privileges to complete the operation."


def add_routes(router: web.UrlDispatcher) -> None:
    """Registered by `graph_directory.add_routes`, before Graph's catch-all route."""
    for base in (PREFIX + "/servicePrincipals/{sp_id}", PREFIX + "/servicePrincipals(appId={app_key})"):
        router.add_post(base + "/addPassword", _handled(add_sp_password))
        router.add_post(base + "/removePassword", _handled(remove_sp_password))
        router.add_patch(base, _handled(update_service_principal))
    for base in (PREFIX + "/applications/{object_id}", PREFIX + "/applications(appId={app_key})"):
        router.add_get(base + "/federatedIdentityCredentials", _handled(list_federated_credentials))
    from localcloud import graph_keys

    graph_keys.add_routes(router)


def _owns_service_principal(token: IssuedToken, app: Application) -> bool:
    return token.subject_object_id.lower() in {owner.lower() for owner in app.sp_owners}


def _writable_service_principal(world: World, token: IssuedToken, request: web.Request) -> Application:
    """The service principal the route names (404 outside the caller's tenant), if the caller may write it."""
    app = _find_service_principal(world, token, request)
    if ROLE_RW_ALL in token.roles:
        return app
    if ROLE_RW_OWNED in token.roles and _owns_service_principal(token, app):
        return app
    raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)


async def add_sp_password(request: web.Request) -> web.StreamResponse:
    return await _add_password(request, _writable_service_principal, on_service_principal=True)


async def remove_sp_password(request: web.Request) -> web.StreamResponse:
    return await _remove_password(request, _writable_service_principal, on_service_principal=True)


async def update_service_principal(request: web.Request) -> web.StreamResponse:
    """`PATCH /servicePrincipals/{id}`: `tags` only, replaced whole as Graph replaces a collection."""
    return await _update_tags(request, _writable_service_principal, on_service_principal=True)


async def list_federated_credentials(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _query_options(request, allowed={"select", "top", "filter", "count"})
    with world.lock:
        app = _find_application(world, token, request)
        if not _may_read(token, app):
            raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
        items: list[dict[str, Any]] = [f.to_graph() for f in app.federated_credentials]
        context = f"{METADATA}#applications('{app.object_id}')/federatedIdentityCredentials"
    return _json(request, {"@odata.context": context, "value": items})
