"""Entra ID: the v2.0 token endpoint (client credentials), OpenID metadata, instance discovery, and the
App Service managed-identity endpoint, which issues tokens for the managed identity a request names.

Decisions follow the order Entra applies them: the tenant (900023 malformed, 90002 unknown), the
client (700016), then the secret (7000215 no match, 7000222 expired) or the client assertion (see
`client_assertions`: 50027, 700021, 700023, 700024, 700027, 7000274), and only then the resource the
scope names (1002012 no `/.default`, 500011 a resource the tenant does not know): a wrong secret is
7000215 whatever the scope, which is what a troubleshooting guide relies on when it tests a secret with
`az login --service-principal` (a Resource Manager scope). A new secret is checked against one random
replica per request, so propagation is visible exactly as in production.

Known resources: Microsoft Graph (also by the local cloud's own origin, its Graph audience as a
national cloud has one), Key Vault, Resource Manager (`https://management.core.windows.net/` and
`https://management.azure.com/`), and the APIs registered in the tenant.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from urllib.parse import urlsplit

from aiohttp import web

from localcloud import client_assertions
from localcloud.errors import entra_error, identity_error
from localcloud.keys import CALLER, WORLD
from localcloud.state import (
    DOMAIN_RE,
    GUID_RE,
    Application,
    KeyCredential,
    PasswordCredential,
    ResourceService,
    SignInRecord,
    Tenant,
    TokenResource,
    World,
    secret_digest,
)

TOKEN_LIFETIME_SECONDS = 3599
IDENTITY_API_VERSION = "2019-08-01"
# The appIds of Microsoft's own resource applications, as a sign-in's `resourceId` names them
# (Microsoft Graph, Azure Key Vault, Azure Resource Manager, Azure Event Grid).
FIRST_PARTY_APP_IDS: dict[ResourceService, str] = {
    "graph": "00000003-0000-0000-c000-000000000000",
    "keyvault": "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
    "arm": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    "eventgrid": "4962773b-9cdb-44cf-a8bf-237846a00ab7",
}


def setup(app: web.Application) -> None:
    app.router.add_get("/common/discovery/instance", instance_discovery)
    app.router.add_get("/msi/token", managed_identity_token)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", signing_keys)
    app.router.add_get("/{tenant}/discovery/keys", signing_keys)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _resolve_tenant(world: World, name: str) -> Tenant | int:
    """The tenant, or the AADSTS code that refuses it: 900023 malformed, 90002 unknown."""
    if not (GUID_RE.match(name) or DOMAIN_RE.match(name)):
        return 900023
    tenant = world.find_tenant(name)
    return 90002 if tenant is None else tenant


def _tenant_error(name: str, code: int, error: str = "invalid_request") -> web.Response:
    if code == 900023:
        return entra_error(
            400,
            "invalid_request",
            900023,
            f"Specified tenant identifier '{name}' is neither a valid DNS name, nor a valid external domain.",
        )
    return entra_error(400, error, 90002, _tenant_not_found(name))


def _tenant_not_found(name: str) -> str:
    return (
        f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there "
        "are no active subscriptions for the tenant."
    )


async def instance_discovery(request: web.Request) -> web.Response:
    """MSAL asks this for authorities it does not know (unless instance discovery is disabled)."""
    host = urlsplit(request.query.get("authorization_endpoint", "")).netloc or request.host
    body = {
        "tenant_discovery_endpoint": f"https://{host}/common/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }
    return web.json_response(body)


async def openid_configuration(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    name = request.match_info["tenant"]
    with world.lock:
        found = _resolve_tenant(world, name) if name not in ("common", "organizations") else None
    if isinstance(found, int):
        # The metadata document answers an unknown tenant with `invalid_tenant`, not invalid_request.
        return _tenant_error(name, found, error="invalid_tenant")
    tenant_id = found.tenant_id if isinstance(found, Tenant) else "{tenantid}"
    base = _base(request)
    body = {
        "token_endpoint": f"{base}/{name}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/{name}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/{name}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{name}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{name}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver", "oid"],
        "kerberos_endpoint": f"{base}/{name}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return web.json_response(body)


async def signing_keys(request: web.Request) -> web.Response:
    """The keys tokens are signed with (the `jwks_uri` of the OpenID configuration): one RSA key per
    cloud, the same for every tenant, as Entra's keys are shared by its tenants."""
    world = request.app[WORLD]
    name = request.match_info["tenant"]
    with world.lock:
        found = _resolve_tenant(world, name) if name not in ("common", "organizations") else None
        if isinstance(found, int):
            return _tenant_error(name, found, error="invalid_tenant")
        key = world.signing_key.jwk()
    if isinstance(found, Tenant):
        key["issuer"] = f"{_base(request)}/{found.tenant_id}/v2.0"
    return web.json_response({"keys": [key]})


def _scope_resource(scope: str) -> str | None:
    """The resource of a client-credentials scope: `{resource}/.default` (`https://management.core.
    windows.net//.default` names `https://management.core.windows.net/`); None without one."""
    for item in scope.split():
        if item.endswith("/.default"):
            return item[: -len("/.default")]
    return None


def _unknown_resource(resource: str, tenant_id: str) -> str:
    return (
        f"The resource principal named {resource} was not found in the tenant named {tenant_id}. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
    )


def _password_state(world: World, app: Application, secret: str) -> tuple[str, PasswordCredential | None]:
    """'valid', 'propagating' (right secret, this replica does not know it yet), 'expired' or 'wrong',
    with the credential the secret matched (the sign-in log names it by keyId)."""
    now = world.clock.now()
    digest = secret_digest(secret)
    matched: PasswordCredential | None = None
    # Entra accepts a password of the service principal as it accepts the application's.
    candidates = [*app.passwords, *app.sp_passwords]
    for credential in candidates:
        if hmac.compare_digest(credential.digest, digest):
            matched = credential
            break
    if matched is None:
        active = [p for p in candidates if p.end > now]
        return ("expired" if candidates and not active else "wrong"), None
    if matched.end <= now:
        return "expired", matched
    if matched.start > now:
        return "wrong", matched
    replica = world.random.randrange(len(matched.replica_ready))
    return ("valid" if matched.replica_ready[replica] <= now else "propagating"), matched


def _secret_refusal(world: World, app: Application, client_secret: str) -> PasswordCredential | web.Response:
    """The password a client secret matches on a replica that knows it, or Entra's refusal."""
    if not client_secret:
        return entra_error(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
    state, credential = _password_state(world, app, client_secret)
    if state == "expired":
        return entra_error(
            401,
            "invalid_client",
            7000222,
            f"The provided client secret keys for app "
            f"'{app.app_id}' are expired. Visit the Azure portal to create new keys for your app: "
            "https://aka.ms/NewClientSecret, or consider using certificate credentials for added "
            "security: https://aka.ms/certCreds.",
        )
    if state != "valid" or credential is None:
        return entra_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being "
            "sent in the request is the client secret value, not the client secret ID, for a secret "
            f"added to app '{app.app_id}'.",
        )
    return credential


async def token(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    form = await request.post()
    client_id = str(form.get("client_id", ""))
    client_secret = str(form.get("client_secret", ""))
    grant_type = str(form.get("grant_type", ""))
    scope = str(form.get("scope", ""))
    request[CALLER] = client_id or None
    if grant_type != "client_credentials":
        if not grant_type:
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        return entra_error(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )
    with world.lock:
        found = _resolve_tenant(world, request.match_info["tenant"])
        if isinstance(found, int):
            return _tenant_error(request.match_info["tenant"], found)
        tenant = found
        if not client_id:
            return entra_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = world.application_by_app_id(tenant, client_id)
        if app is None:
            return entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may have sent "
                "your authentication request to the wrong tenant.",
            )
        # The client is authenticated before the scope is looked at: by a client assertion (a JWT
        # signed with one of its certificates) or by a secret.
        credential: PasswordCredential | KeyCredential
        if "client_assertion" in form or "client_assertion_type" in form:
            outcome = client_assertions.authenticate(
                world,
                app,
                tenant,
                str(form.get("client_assertion", "")),
                str(form.get("client_assertion_type", "")),
                client_id=client_id,
                origin=_base(request),
            )
            if isinstance(outcome, client_assertions.Refusal):
                return entra_error(outcome.status, outcome.error, outcome.code, outcome.message)
            credential = outcome
        else:
            refused = _secret_refusal(world, app, client_secret)
            if isinstance(refused, web.Response):
                return refused
            credential = refused
        if not scope.strip():
            return entra_error(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
            )
        named = _scope_resource(scope)
        if named is None:
            return entra_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not "
                "valid. Client credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        resource = world.resolve_resource(named, tenant.tenant_id, origin=_base(request))
        if resource is None:
            return entra_error(400, "invalid_resource", 500011, _unknown_resource(named, tenant.tenant_id))
        access_token, lifetime = world.issue_token(app, resource, TOKEN_LIFETIME_SECONDS, issuer_base=_base(request))
        request_id = str(uuid.uuid4())
        _record_sign_in(world, app, credential, resource, request_id)
    body = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }
    return web.Response(
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store, no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": request_id,
        },
    )


def _record_sign_in(
    world: World,
    app: Application,
    credential: PasswordCredential | KeyCredential,
    resource: TokenResource,
    request_id: str,
) -> None:
    """Log a successful client-credentials sign-in (the caller holds the lock). Only issued tokens
    count: a refused secret is a failed sign-in, which the credential activity report leaves out.
    Managed identities sign in without a credential of their own and are never logged here."""
    resource_id = resource.api.app_id if resource.api is not None else FIRST_PARTY_APP_IDS.get(resource.service, "")
    world.sign_ins.append(
        SignInRecord(
            request_id=request_id,
            time=world.clock.now(),
            tenant_id=app.tenant_id,
            app_id=app.app_id,
            app_object_id=app.object_id,
            sp_object_id=app.sp_object_id,
            key_id=credential.key_id,
            key_type="clientSecret" if isinstance(credential, PasswordCredential) else "certificate",
            key_created=credential.start,
            key_expires=credential.end,
            resource_id=resource_id,
            credential_origin=(
                "servicePrincipal"
                if any(c is credential for c in [*app.sp_passwords, *app.sp_certificates])
                else "application"
            ),
        )
    )


async def managed_identity_token(request: web.Request) -> web.Response:
    """App Service style: `GET {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01` + X-IDENTITY-HEADER."""
    world = request.app[WORLD]
    supplied = request.headers.get("X-IDENTITY-HEADER", "")
    if not hmac.compare_digest(supplied, world.managed_identity_header):
        # App Service answers a missing or wrong header with 401 (the SSRF guard).
        return identity_error(401, "The request is missing or has an invalid X-IDENTITY-HEADER header.")
    if request.query.get("api-version") != IDENTITY_API_VERSION:
        return identity_error(400, f"api-version must be {IDENTITY_API_VERSION}.")
    # The resource as named: `https://management.core.windows.net/` keeps its slash (the v1 spelling the
    # Azure CLI uses, and the token's `aud`).
    resource = request.query.get("resource", "")
    if resource.endswith("/.default"):
        resource = resource[: -len("/.default")]
    if not resource.rstrip("/"):
        return identity_error(400, "The 'resource' query parameter is required.")
    client_id = request.query.get("client_id")
    # App Service calls the object id `principal_id`; MSAL sends `object_id`. Both are accepted.
    object_id = request.query.get("principal_id") or request.query.get("object_id")
    if client_id and object_id:
        return identity_error(400, "Name the identity by one of client_id or principal_id, not both.")
    if request.query.get("mi_res_id"):
        return identity_error(400, "mi_res_id is not supported by this local cloud; use client_id or principal_id.")
    with world.lock:
        identity = world.find_managed_identity(client_id=client_id or None, object_id=object_id or None)
        if identity is None:
            if client_id or object_id:
                return identity_error(400, "No managed identity matches the requested client_id or principal_id.")
            # Without an id App Service uses the app's system-assigned identity; there is none to use.
            return identity_error(
                400, "No system-assigned managed identity is configured; name a user-assigned one by client_id."
            )
        known: TokenResource | None = world.resolve_resource(resource, identity.app.tenant_id, origin=_base(request))
        if known is None:
            # App Service passes Entra's refusal on in its message.
            return identity_error(400, f"AADSTS500011: {_unknown_resource(resource, identity.app.tenant_id)}")
        access_token, lifetime = world.issue_token(
            identity.app, known, TOKEN_LIFETIME_SECONDS, issuer_base=_base(request)
        )
        expires_on = int(time.time()) + lifetime
        app_id = identity.app.app_id
        request[CALLER] = app_id
    body = {
        "access_token": access_token,
        "expires_on": str(expires_on),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": app_id,
    }
    return web.json_response(body)
