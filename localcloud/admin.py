"""The admin API: seed tenants, apps, identities and vaults; inject faults; move the clock; read logs.

Served under `/_emulator/` on the main port (loopback callers only) and callable in-process through
`LocalCloud.admin(method, path, body)`: both go through `dispatch`, so tests and the HTTP API validate
input the same way. Bad input gets a 400 with a message and changes nothing.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from localcloud import certificate_policy, certificates, keyvault, keyvault_certificates
from localcloud.errors import admin_error
from localcloud.keys import CLOUD
from localcloud.state import (
    ALL_VAULTS,
    GRAPH_ROLES,
    GUID_RE,
    LICENSES,
    SIGN_IN_AUDIENCES,
    TOPIC_ROLES,
    VAULT_ROLE_PERMISSIONS,
    Application,
    AppManagementPolicy,
    AppRole,
    Fault,
    FederatedCredential,
    ManagedIdentityRecord,
    Tenant,
    TopicRecord,
    VaultRecord,
    World,
    graph_time,
    new_guid,
)

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

PREFIX = "/_emulator"


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def setup(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "/{tail:.*}", _http_entry)


async def _http_entry(request: web.Request) -> web.Response:
    if not _is_loopback(request.remote):
        return admin_error(403, "The admin API answers loopback callers only.")
    body: Any = None
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            return admin_error(400, "The body is not valid JSON.")
    path = request.path_qs[len(PREFIX) :] or "/"
    try:
        result = await dispatch(request.app[CLOUD], request.method, path, body)
    except AdminError as exc:
        return admin_error(exc.status, exc.message)
    if result is None:
        return web.Response(status=204)
    return web.json_response(result)


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


# --- input checking ------------------------------------------------------------------------------
def _object(body: Any, required: dict[str, type | tuple[type, ...]], optional: dict[str, Any]) -> dict[str, Any]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise AdminError(400, "The body must be a JSON object.")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        allowed = ", ".join(sorted([*required, *optional]))
        raise AdminError(400, f"Unknown field(s) {', '.join(unknown)}; allowed: {allowed}.")
    for name, kind in {**required, **optional}.items():
        if name in required and name not in body:
            raise AdminError(400, f"'{name}' is required.")
        if name in body and body[name] is not None:
            # bool is an int in Python; refuse it where a number is meant.
            wrong_bool = isinstance(body[name], bool) and kind in (int, float, (int, float))
            if wrong_bool or not isinstance(body[name], kind):
                raise AdminError(400, f"'{name}' has the wrong type.")
    return dict(body)


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise AdminError(400, f"'{name}' must be an ISO 8601 time, e.g. 2027-01-31T00:00:00Z.") from exc
    if moment.tzinfo is None:
        raise AdminError(400, f"'{name}' must carry a time zone (end it with Z).")
    return moment


_DURATION_RE = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def parse_duration(text: str, name: str) -> timedelta:
    """ISO 8601 durations as app management policies write them (years = 365 d, months = 30 d)."""
    match = _DURATION_RE.match(text)
    if not match or text in ("P", "PT"):
        raise AdminError(400, f"'{name}' must be an ISO 8601 duration such as P90D or P1Y.")
    years, months, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=years * 365 + months * 30 + days, hours=hours, minutes=minutes, seconds=seconds)


def _tenant(world: World, tenant_id: str | None) -> Tenant:
    tenant_id = tenant_id or world.default_tenant_id
    tenant = world.tenants.get(tenant_id.lower())
    if tenant is None:
        raise AdminError(404, f"No tenant {tenant_id}.")
    return tenant


def find_application(world: World, object_id: str) -> Application:
    """An application by its object id or appId; AdminError 404 if there is none."""
    for app in world.all_applications():
        if object_id.lower() in (app.object_id, app.app_id):
            return app
    raise AdminError(404, f"No application with object id or appId {object_id}.")


_application = find_application


def find_service_principal(world: World, key: str) -> Application:
    """The record of a service principal by its object id, its app's object id or appId; 404 if none."""
    for app in world.all_applications():
        if key.lower() in (app.sp_object_id, app.object_id, app.app_id):
            return app
    raise AdminError(404, f"No service principal with object id, application object id or appId {key}.")


def _since(query: dict[str, list[str]]) -> int:
    raw = query.get("since", ["0"])[0]
    if not raw.isdigit():
        raise AdminError(400, "'since' must be a non-negative integer.")
    return int(raw)


# --- operations ----------------------------------------------------------------------------------
Operation = Callable[["LocalCloud", Any, dict[str, list[str]], list[str]], Awaitable[Any]]


async def dispatch(cloud: LocalCloud, method: str, path: str, body: Any) -> Any:
    split = urlsplit(path)
    query = parse_qs(split.query)
    parts = [p for p in split.path.split("/") if p]
    for (route_method, pattern), operation in _ROUTES.items():
        if route_method != method.upper() or len(pattern) != len(parts):
            continue
        params: list[str] = []
        for expected, actual in zip(pattern, parts, strict=True):
            if expected == "*":
                params.append(actual)
            elif expected != actual:
                break
        else:
            return await operation(cloud, body, query, params)
    raise AdminError(404, f"No admin operation {method.upper()} {split.path}.")


# The keys `GET /state` always has; `LocalCloud.annotate_state` may add others.
STATE_KEYS = frozenset({"now", "config", "tenants", "managedIdentities", "vaults", "topics", "faults"})


async def get_state(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    world = cloud.world
    with world.lock:
        return {
            "now": graph_time(world.clock.now()),
            "config": world.config.to_admin(),
            "tenants": [
                {
                    "tenantId": t.tenant_id,
                    "defaultDomain": t.default_domain,
                    "defaultPolicy": t.default_policy.to_admin() if t.default_policy else None,
                    "license": t.license,
                    "applications": [a.to_admin() for a in t.applications.values()],
                }
                for t in world.tenants.values()
            ],
            "managedIdentities": [i.to_admin() for i in world.managed_identities.values()],
            "vaults": [
                {**keyvault.vault_state(v), **keyvault_certificates.certificate_state(v)} for v in world.vaults.values()
            ],
            "topics": [t.to_admin() for t in world.topics.values()],
            "faults": [f.to_admin() for f in world.faults if f.count > 0],
            **cloud.state_annotations,
        }


async def post_tenant(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {}, {"tenantId": str})
    tenant_id = fields.get("tenantId")
    if tenant_id is not None and not GUID_RE.match(tenant_id):
        raise AdminError(400, "'tenantId' must be a GUID.")
    with cloud.world.lock:
        if tenant_id and tenant_id.lower() in cloud.world.tenants:
            raise AdminError(409, f"Tenant {tenant_id} exists already.")
        tenant = cloud.world.create_tenant(tenant_id.lower() if tenant_id else None)
    return {"tenantId": tenant.tenant_id, "defaultDomain": tenant.default_domain}


async def post_application(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"displayName": str}, {"tenantId": str, "signInAudience": str})
    audience = fields.get("signInAudience") or "AzureADMyOrg"
    if audience not in SIGN_IN_AUDIENCES:
        raise AdminError(400, f"'signInAudience' must be one of {', '.join(sorted(SIGN_IN_AUDIENCES))}.")
    if not fields["displayName"].strip():
        raise AdminError(400, "'displayName' must not be empty.")
    with cloud.world.lock:
        tenant = _tenant(cloud.world, fields.get("tenantId"))
        app = cloud.world.create_application(tenant, fields["displayName"], audience)
    return {"id": app.object_id, "appId": app.app_id, "tenantId": app.tenant_id}


async def post_password(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    return _seed_password(cloud, body, params[0], on_service_principal=False)


def _credential_object(world: World, key: str, *, on_service_principal: bool) -> Application:
    """The app registration, or its service principal, an admin route names (404 if there is none)."""
    return find_service_principal(world, key) if on_service_principal else _application(world, key)


def _seeded_times(fields: dict[str, Any]) -> tuple[datetime | None, datetime | None, list[float] | None]:
    """The optional `startDateTime`, `endDateTime` and `replicaDelaysSeconds` of a seeded credential."""
    start = _time(fields.get("startDateTime"), "startDateTime")
    end = _time(fields.get("endDateTime"), "endDateTime")
    if start and end and end <= start:
        raise AdminError(400, "'endDateTime' must be after 'startDateTime'.")
    delays = fields.get("replicaDelaysSeconds")
    if delays is not None and (
        not delays or not all(isinstance(d, int | float) and not isinstance(d, bool) for d in delays)
    ):
        raise AdminError(400, "'replicaDelaysSeconds' must be a non-empty list of numbers (one per replica).")
    return start, end, delays


def _seed_password(cloud: LocalCloud, body: Any, key: str, *, on_service_principal: bool) -> Any:
    """A password "a human created earlier" on an app registration or on its service principal."""
    fields = _object(
        body, {}, {"displayName": str, "startDateTime": str, "endDateTime": str, "replicaDelaysSeconds": list}
    )
    start, end, delays = _seeded_times(fields)
    with cloud.world.lock:
        app = _credential_object(cloud.world, key, on_service_principal=on_service_principal)
        credential, value = cloud.world.add_password(
            app, fields.get("displayName"), start, end, on_service_principal=on_service_principal
        )
        now = cloud.world.clock.now()
        if delays is not None:
            # When each replica learns it, from now: propagation made visible on purpose.
            credential.replica_ready = [now + timedelta(seconds=d) for d in delays]
        else:
            # A credential made "by a human earlier" is known to every replica already.
            credential.replica_ready = [min(credential.start, now)] * len(credential.replica_ready)
    result = credential.to_graph()
    result["secretText"] = value
    return result


async def post_certificate(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    return _seed_certificate(cloud, body, params[0], on_service_principal=False)


async def post_sp_certificate(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    return _seed_certificate(cloud, body, params[0], on_service_principal=True)


def _seed_certificate(cloud: LocalCloud, body: Any, key: str, *, on_service_principal: bool) -> Any:
    """A certificate credential "a human uploaded earlier": the given certificate (base64 DER or PEM), or,
    without one, a fresh self-signed certificate with the given dates whose private key nobody keeps.
    Known to every replica already, unless `replicaDelaysSeconds` says when each learns it."""
    fields = _object(
        body,
        {},
        {
            "displayName": str,
            "startDateTime": str,
            "endDateTime": str,
            "certificate": str,
            "replicaDelaysSeconds": list,
        },
    )
    start, end, delays = _seeded_times(fields)
    supplied = fields.get("certificate")
    if supplied is not None:
        try:
            raw = supplied.encode() if supplied.lstrip().startswith("-----BEGIN") else base64.b64decode(supplied)
            der = certificates.certificate_der(raw)
        except ValueError as exc:
            raise AdminError(400, "'certificate' must be a certificate, base64 DER or PEM.") from exc
    with cloud.world.lock:
        app = _credential_object(cloud.world, key, on_service_principal=on_service_principal)
        now = cloud.world.clock.now()
        if supplied is None:
            start = start or now
            end = end or start + timedelta(days=365)
            der = certificates.self_signed_certificate(fields.get("displayName") or "local-cloud", start, end)
        credential = certificates.new_key_credential(
            cloud.world,
            app,
            der,
            display_name=fields.get("displayName"),
            start=start,
            end=end,
            # A credential made "by a human earlier" is known to every replica already.
            replica_delays_seconds=delays if delays is not None else [0.0] * cloud.world.config.replicas,
            on_service_principal=on_service_principal,
        )
    return credential.to_admin()


async def post_owner(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    return _add_owner(cloud, body, params[0], on_service_principal=False)


def _add_owner(cloud: LocalCloud, body: Any, key: str, *, on_service_principal: bool) -> Any:
    """An owner of the app registration, or of its service principal (a relation of its own)."""
    fields = _object(body, {"objectId": str}, {})
    if not GUID_RE.match(fields["objectId"]):
        raise AdminError(400, "'objectId' must be a GUID (a service principal's object id).")
    with cloud.world.lock:
        app = _credential_object(cloud.world, key, on_service_principal=on_service_principal)
        owners = app.sp_owners if on_service_principal else app.owners
        owners.add(fields["objectId"].lower())
        object_id = app.sp_object_id if on_service_principal else app.object_id
    return {"id": object_id, "owners": sorted(owners)}


async def delete_owner(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        app = _application(cloud.world, params[0])
        app.owners.discard(params[1].lower())
    return None


async def delete_password(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Remove a credential outside Graph (what the portal or another tool leaves behind)."""
    with cloud.world.lock:
        app = _application(cloud.world, params[0])
        kept = [p for p in app.passwords if p.key_id.lower() != params[1].lower()]
        if len(kept) == len(app.passwords):
            raise AdminError(404, f"Application {app.object_id} has no password credential {params[1]}.")
        app.passwords = kept
    return None


async def post_graph_app_role(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Grant a Graph application role to an app's (or a managed identity's) service principal. A token
    carries the roles its identity had when it was issued."""
    fields = _object(body, {"role": str}, {})
    if fields["role"] not in GRAPH_ROLES:
        raise AdminError(400, f"Unknown Graph app role {fields['role']!r}; known: {', '.join(GRAPH_ROLES)}.")
    with cloud.world.lock:
        app = _application(cloud.world, params[0])
        app.graph_roles.add(fields["role"])
    return {"appId": app.app_id, "graphAppRoles": sorted(app.graph_roles)}


_ROLE_VALUE_RE = re.compile(r"^[!-~]{1,249}$")
_MEMBER_TYPES = frozenset({"Application", "User"})


async def put_api(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Expose an API on an app registration: its identifier URIs (`api://…`) and app roles, as the
    application's `identifierUris` and `appRoles` say in Graph. Clients then get tokens for
    `{identifier URI or appId}/.default` whose `aud` is the app id and whose `roles` are the app
    roles assigned to the client (`POST …/app-role-assignments`). Replaces what was there; roles
    keep their id when their value stays."""
    fields = _object(body, {}, {"identifierUris": list, "appRoles": list})
    uris = fields.get("identifierUris") or []
    for uri in uris:
        if not isinstance(uri, str) or not re.match(r"^(api://|https://)[^\s/]", uri) or len(uri) > 255:
            raise AdminError(400, "'identifierUris' must be a list of api:// or https:// URIs.")
    roles: list[tuple[str, str, tuple[str, ...]]] = []
    for item in fields.get("appRoles") or []:
        role = _object(item, {"value": str}, {"displayName": str, "allowedMemberTypes": list})
        if not _ROLE_VALUE_RE.match(role["value"]):
            raise AdminError(400, "An app role's 'value' must be 1-249 printable characters without spaces.")
        members = tuple(role.get("allowedMemberTypes") or ["Application"])
        if not members or not set(members) <= _MEMBER_TYPES:
            raise AdminError(400, "'allowedMemberTypes' must list Application and/or User.")
        roles.append((role["value"], role.get("displayName") or role["value"], members))
    if len({value for value, _, _ in roles}) != len(roles):
        raise AdminError(400, "Two app roles have the same value.")
    with cloud.world.lock:
        app = _application(cloud.world, params[0])
        wanted = {u.rstrip("/").lower() for u in uris}
        for other in cloud.world.tenants[app.tenant_id].applications.values():
            taken = {u.rstrip("/").lower() for u in other.identifier_uris}
            if other is not app and wanted & taken:
                raise AdminError(409, "An identifier URI is used by another application of the tenant.")
        ids = {r.value: r.role_id for r in app.app_roles}
        app.identifier_uris = list(uris)
        app.app_roles = [AppRole(ids.get(value) or new_guid(), value, name, members) for value, name, members in roles]
        return {
            "id": app.object_id,
            "appId": app.app_id,
            "identifierUris": list(app.identifier_uris),
            "appRoles": [r.to_admin() for r in app.app_roles],
        }


def _principal(world: World, name: str) -> Application:
    """A service principal (of an app or a managed identity) by its object id, or its app's appId."""
    wanted = name.lower()
    for app in world.all_applications():
        if wanted in (app.sp_object_id, app.app_id):
            return app
    raise AdminError(404, f"No service principal with object id or appId {name}.")


async def post_app_role_assignment(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Assign one of an API's app roles to a service principal (Graph's `appRoleAssignedTo`);
    tokens issued for that API afterwards carry it in `roles`."""
    fields = _object(body, {"principalId": str, "appRole": str}, {})
    with cloud.world.lock:
        resource = _application(cloud.world, params[0])
        role = next((r for r in resource.app_roles if fields["appRole"] in (r.value, r.role_id)), None)
        if role is None:
            raise AdminError(400, f"Application {resource.app_id} defines no app role {fields['appRole']!r}.")
        if "Application" not in role.allowed_member_types:
            raise AdminError(400, f"App role {role.value!r} cannot be assigned to applications.")
        principal = _principal(cloud.world, fields["principalId"])
        if principal.tenant_id != resource.tenant_id:
            raise AdminError(400, "The principal and the resource are in different tenants.")
        resource.app_role_assignments.setdefault(principal.sp_object_id, set()).add(role.value)
        return {
            "principalId": principal.sp_object_id,
            "resourceId": resource.sp_object_id,
            "appRoleId": role.role_id,
            "appRole": role.value,
        }


async def delete_app_role_assignment(
    cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]
) -> Any:
    fields = _object(body, {"principalId": str, "appRole": str}, {})
    with cloud.world.lock:
        resource = _application(cloud.world, params[0])
        principal = _principal(cloud.world, fields["principalId"])
        resource.app_role_assignments.get(principal.sp_object_id, set()).discard(fields["appRole"])
    return None


async def put_tags(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Set an application's `tags` outside Graph (what its owners did earlier, in the portal)."""
    return _set_tags(cloud, body, params[0], on_service_principal=False)


def _set_tags(cloud: LocalCloud, body: Any, key: str, *, on_service_principal: bool) -> Any:
    fields = _object(body, {"tags": list}, {})
    if not all(isinstance(t, str) for t in fields["tags"]):
        raise AdminError(400, "'tags' must be a list of strings.")
    tags = list(fields["tags"])
    with cloud.world.lock:
        app = _credential_object(cloud.world, key, on_service_principal=on_service_principal)
        if on_service_principal:
            app.sp_tags = tags
            return {"id": app.sp_object_id, "tags": list(app.sp_tags)}
        app.tags = tags
        return {"id": app.object_id, "tags": list(app.tags)}


async def post_sp_password(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    return _seed_password(cloud, body, params[0], on_service_principal=True)


async def post_sp_owner(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Make an object an owner of the service principal (its own relation, apart from the app's owners)."""
    return _add_owner(cloud, body, params[0], on_service_principal=True)


async def put_sp_tags(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Set a service principal's `tags` outside Graph (what its owners did earlier)."""
    return _set_tags(cloud, body, params[0], on_service_principal=True)


async def post_federated_credential(
    cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]
) -> Any:
    fields = _object(body, {"name": str, "issuer": str, "subject": str}, {"audiences": list, "description": str})
    audiences = fields.get("audiences") or ["api://AzureADTokenExchange"]
    if not all(isinstance(a, str) and a for a in audiences):
        raise AdminError(400, "'audiences' must be a list of non-empty strings.")
    if not all(fields[k].strip() for k in ("name", "issuer", "subject")):
        raise AdminError(400, "'name', 'issuer' and 'subject' must not be empty.")
    with cloud.world.lock:
        app = _application(cloud.world, params[0])
        if any(f.name.lower() == fields["name"].lower() for f in app.federated_credentials):
            raise AdminError(409, f"Application {app.object_id} has a federated credential named {fields['name']}.")
        credential = FederatedCredential(
            new_guid(), fields["name"], fields["issuer"], fields["subject"], list(audiences), fields.get("description")
        )
        app.federated_credentials.append(credential)
    return credential.to_graph()


async def delete_application(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        app = _application(cloud.world, params[0])
        del cloud.world.tenants[app.tenant_id].applications[app.object_id]
    return None


async def post_identity(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"displayName": str}, {"tenantId": str, "graphAppRoles": list})
    roles = fields.get("graphAppRoles") or []
    unknown = [r for r in roles if r not in GRAPH_ROLES]
    if unknown:
        raise AdminError(400, f"Unknown Graph app role(s) {unknown}; known: {', '.join(GRAPH_ROLES)}.")
    with cloud.world.lock:
        tenant = _tenant(cloud.world, fields.get("tenantId"))
        app = cloud.world.create_application(tenant, fields["displayName"], graph_roles=roles)
        credential, value = cloud.world.add_password(app, "identity secret")
        credential.replica_ready = [credential.start] * len(credential.replica_ready)
    return {
        "objectId": app.sp_object_id,
        "appId": app.app_id,
        "tenantId": app.tenant_id,
        "clientSecret": value,
    }


async def post_managed_identity(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(
        body,
        {"displayName": str},
        {"tenantId": str, "graphAppRoles": list, "vaultRoles": dict, "systemAssigned": bool},
    )
    if not fields["displayName"].strip():
        raise AdminError(400, "'displayName' must not be empty.")
    roles = fields.get("graphAppRoles") or []
    unknown = [r for r in roles if r not in GRAPH_ROLES]
    if unknown:
        raise AdminError(400, f"Unknown Graph app role(s) {unknown}; known: {', '.join(GRAPH_ROLES)}.")
    vault_roles: dict[str, Any] = fields.get("vaultRoles") or {}
    for vault_name, granted in vault_roles.items():
        if not isinstance(granted, list) or not all(r in VAULT_ROLE_PERMISSIONS for r in granted):
            raise AdminError(
                400,
                f"'vaultRoles.{vault_name}' must be a list of Key Vault roles; known: "
                f"{', '.join(VAULT_ROLE_PERMISSIONS)}.",
            )
    system_assigned = bool(fields.get("systemAssigned"))
    with cloud.world.lock:
        world = cloud.world
        tenant = _tenant(world, fields.get("tenantId"))
        if system_assigned and any(i.system_assigned for i in world.managed_identities.values()):
            raise AdminError(409, "A system-assigned managed identity exists already (there is one per app).")
        vaults = {}
        for vault_name in vault_roles:
            if vault_name != ALL_VAULTS:
                vault = world.vault(vault_name)
                if vault is None:
                    raise AdminError(404, f"No vault {vault_name}.")
                vaults[vault_name] = vault
        app = world.create_application(tenant, fields["displayName"], graph_roles=roles)
        identity = ManagedIdentityRecord(app, system_assigned, set(vault_roles.get(ALL_VAULTS, [])))
        world.managed_identities[app.sp_object_id] = identity
        for vault in world.vaults.values():
            granted = set(identity.all_vault_roles)
            if vault.name in vaults:
                granted |= set(vault_roles[vault.name])
            if granted:
                vault.role_assignments.setdefault(app.sp_object_id, set()).update(granted)
        return identity.to_admin()


async def get_managed_identities(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        return {"identities": [i.to_admin() for i in cloud.world.managed_identities.values()]}


async def post_expire_token(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Age an issued token past its lifetime (tokens run on real time; moving the clock leaves them)."""
    fields = _object(body, {"token": str}, {})
    with cloud.world.lock:
        issued = cloud.world.tokens.get(fields["token"])
        if issued is None:
            raise AdminError(404, "No such token was issued.")
        issued.expires = datetime.now(UTC) - timedelta(seconds=1)
    return None


async def post_backdate(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Move a secret version's created/updated times back (default: the latest version)."""
    fields = _object(body, {"seconds": (int, float)}, {"version": str})
    if fields["seconds"] < 0:
        raise AdminError(400, "'seconds' must not be negative.")
    with cloud.world.lock:
        vault = cloud.world.vault(params[0])
        if vault is None:
            raise AdminError(404, f"No vault {params[0]}.")
        secret = vault.secrets.get(params[1].lower())
        if secret is None:
            raise AdminError(404, f"No secret {params[1]} in {vault.name}.")
        record = secret.find(fields["version"]) if fields.get("version") else secret.latest
        if record is None:
            raise AdminError(404, f"No version {fields['version']} of {secret.name}.")
        delta = timedelta(seconds=fields["seconds"])
        record.created -= delta
        record.updated -= delta
        return {"version": record.version, "created": graph_time(record.created)}


async def post_role_assignment(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"objectId": str, "vault": str, "role": str}, {})
    if fields["role"] not in VAULT_ROLE_PERMISSIONS:
        raise AdminError(400, f"Unknown role; known: {', '.join(VAULT_ROLE_PERMISSIONS)}.")
    with cloud.world.lock:
        vault = cloud.world.vault(fields["vault"])
        if vault is None:
            raise AdminError(404, f"No vault {fields['vault']}.")
        vault.role_assignments.setdefault(fields["objectId"].lower(), set()).add(fields["role"])
    return {"objectId": fields["objectId"].lower(), "vault": vault.name, "role": fields["role"]}


async def delete_role_assignment(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"objectId": str, "vault": str, "role": str}, {})
    with cloud.world.lock:
        vault = cloud.world.vault(fields["vault"])
        if vault is None:
            raise AdminError(404, f"No vault {fields['vault']}.")
        vault.role_assignments.get(fields["objectId"].lower(), set()).discard(fields["role"])
    return None


async def post_vault(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"name": str}, {})
    try:
        return await cloud.create_vault_async(fields["name"])
    except ValueError as exc:
        raise AdminError(400, str(exc)) from exc


async def post_policy(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(
        body, {}, {"tenantId": str, "appId": str, "passwordMaxLifetime": str, "blockPasswordAddition": bool}
    )
    lifetime = fields.get("passwordMaxLifetime")
    policy = AppManagementPolicy(
        password_max_lifetime=parse_duration(lifetime, "passwordMaxLifetime") if lifetime else None,
        block_password_addition=bool(fields.get("blockPasswordAddition")),
    )
    with cloud.world.lock:
        if fields.get("appId"):
            app = _application(cloud.world, fields["appId"])
            app.policy = policy
            return {"appId": app.app_id, "policy": policy.to_admin()}
        tenant = _tenant(cloud.world, fields.get("tenantId"))
        tenant.default_policy = policy
        return {"tenantId": tenant.tenant_id, "policy": policy.to_admin()}


async def put_config(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(
        body,
        {},
        {
            "propagationSeconds": (int, float),
            "replicas": int,
            "latencyMs": int,
            "throttle": dict,
            "signInReportDelaySeconds": (int, float),
        },
    )
    throttle = _object(
        fields.get("throttle"),
        {},
        {
            "enabled": bool,
            "graphWrites": int,
            "graphWindowSeconds": (int, float),
            "vaultCreates": int,
            "vaultWindowSeconds": (int, float),
        },
    )
    checks = [
        ("propagationSeconds", fields.get("propagationSeconds"), 0, 3600),
        ("replicas", fields.get("replicas"), 1, 50),
        ("latencyMs", fields.get("latencyMs"), 0, 60_000),
        ("signInReportDelaySeconds", fields.get("signInReportDelaySeconds"), 0, 30 * 86_400),
        ("throttle.graphWrites", throttle.get("graphWrites"), 1, 1_000_000),
        ("throttle.graphWindowSeconds", throttle.get("graphWindowSeconds"), 0.001, 86_400),
        ("throttle.vaultCreates", throttle.get("vaultCreates"), 1, 1_000_000),
        ("throttle.vaultWindowSeconds", throttle.get("vaultWindowSeconds"), 0.001, 86_400),
    ]
    for name, value, low, high in checks:
        if value is not None and not low <= value <= high:
            raise AdminError(400, f"'{name}' must be between {low} and {high}.")
    with cloud.world.lock:
        config = cloud.world.config
        config.propagation_seconds = float(fields.get("propagationSeconds", config.propagation_seconds))
        config.replicas = int(fields.get("replicas", config.replicas))
        config.latency_ms = int(fields.get("latencyMs", config.latency_ms))
        config.sign_in_report_delay_seconds = float(
            fields.get("signInReportDelaySeconds", config.sign_in_report_delay_seconds)
        )
        limits = config.throttle
        limits.enabled = bool(throttle.get("enabled", limits.enabled))
        limits.graph_writes = int(throttle.get("graphWrites", limits.graph_writes))
        limits.graph_window_seconds = float(throttle.get("graphWindowSeconds", limits.graph_window_seconds))
        limits.vault_creates = int(throttle.get("vaultCreates", limits.vault_creates))
        limits.vault_window_seconds = float(throttle.get("vaultWindowSeconds", limits.vault_window_seconds))
        if "throttle" in fields:
            cloud.world.buckets.clear()  # new limits start with full buckets
        return config.to_admin()


async def post_fault(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(
        body,
        {"service": str},
        {
            "method": str,
            "pathRegex": str,
            "status": int,
            "count": int,
            "delayMs": int,
            "drop": bool,
            "code": str,
            "stall": bool,
        },
    )
    if fields["service"] not in ("entra", "graph", "keyvault", "identity", "arm", "eventgrid"):
        raise AdminError(400, "'service' must be one of entra, graph, keyvault, identity, arm, eventgrid.")
    status = fields.get("status")
    if status is not None and not 400 <= status <= 599:
        raise AdminError(400, "'status' must be an HTTP error status (400-599).")
    if not (status or fields.get("delayMs") or fields.get("drop") or fields.get("stall")):
        raise AdminError(400, "A fault needs at least one of 'status', 'delayMs', 'drop' or 'stall'.")
    if fields.get("stall") and (status or fields.get("drop")):
        raise AdminError(400, "'stall' never answers: it takes no 'status' or 'drop' ('delayMs' bounds it).")
    if (fields.get("delayMs") or 0) < 0:
        raise AdminError(400, "'delayMs' must not be negative.")
    count = fields.get("count", 1)
    if count is None or count < 1:
        raise AdminError(400, "'count' must be at least 1.")
    try:
        pattern = re.compile(fields["pathRegex"]) if fields.get("pathRegex") else None
    except re.error as exc:
        raise AdminError(400, f"'pathRegex' is not a valid regular expression: {exc}.") from exc
    fault = Fault(
        fault_id=new_guid(),
        service=fields["service"],
        method=fields.get("method"),
        path_regex=pattern,
        status=status,
        count=count,
        delay_ms=int(fields.get("delayMs") or 0),
        drop=bool(fields.get("drop")),
        code=fields.get("code"),
        stall=bool(fields.get("stall")),
    )
    with cloud.world.lock:
        cloud.world.faults.append(fault)
    return {"id": fault.fault_id}


async def delete_faults(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        cloud.world.faults.clear()
    return None


async def get_faults(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        return {"faults": [f.to_admin() for f in cloud.world.faults]}


async def post_clock(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"advanceSeconds": (int, float)}, {"emitEvents": bool})
    seconds = fields["advanceSeconds"]
    if not 0 <= seconds <= 10 * 365 * 86400:
        raise AdminError(400, "'advanceSeconds' must be between 0 and ten years; the clock never goes back.")
    with cloud.world.lock:
        now = cloud.world.clock.advance(seconds)
        # With emitEvents false the due events wait for the cloud's own ticker (within a second).
        if fields.get("emitEvents", True):
            keyvault.emit_due_events(cloud.world)
            keyvault_certificates.emit_due_events(cloud.world)
    return {"now": graph_time(now)}


async def get_requests(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    since = _since(query)
    with cloud.world.lock:
        items = [r.to_admin() for r in cloud.world.requests[since:]]
        return {"requests": items, "next": len(cloud.world.requests)}


async def get_events(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    since = _since(query)
    emit_due = query.get("emitDue", ["true"])[0]
    if emit_due not in ("true", "false"):
        raise AdminError(400, "'emitDue' must be true or false.")
    with cloud.world.lock:
        if emit_due == "true":
            keyvault.emit_due_events(cloud.world)
            keyvault_certificates.emit_due_events(cloud.world)
        return {"events": list(cloud.world.events[since:]), "next": len(cloud.world.events)}


async def get_issued_secrets(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        return {"secrets": list(cloud.world.issued_secrets)}


async def put_license(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """The tenant's Entra ID edition (`default`: the cloud's first tenant). Without P1 or P2, Graph's
    sign-in reports answer 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`."""
    fields = _object(body, {"license": str}, {})
    if fields["license"] not in LICENSES:
        raise AdminError(400, f"'license' must be one of {', '.join(LICENSES)}.")
    with cloud.world.lock:
        tenant = _tenant(cloud.world, None if params[0] == "default" else params[0])
        tenant.license = fields["license"]
        return {"tenantId": tenant.tenant_id, "license": tenant.license}


async def get_sign_ins(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """The sign-in log as it happened (no reporting delay), oldest first; `appId` narrows it."""
    since = _since(query)
    app_id = query.get("appId", [""])[0].lower()
    with cloud.world.lock:
        records = cloud.world.sign_ins[since:]
        items = [r.to_admin() for r in records if not app_id or r.app_id.lower() == app_id]
        return {"signIns": items, "next": len(cloud.world.sign_ins)}


async def post_topic(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"name": str}, {})
    try:
        return await cloud.create_topic_async(fields["name"])
    except ValueError as exc:
        raise AdminError(409 if "exists already" in str(exc) else 400, str(exc)) from exc


def _topic(world: World, name: str) -> TopicRecord:
    topic = world.topic(name)
    if topic is None:
        raise AdminError(404, f"No topic {name}.")
    return topic


def _topic_role_fields(body: Any) -> dict[str, Any]:
    fields = _object(body, {"objectId": str, "role": str}, {})
    if fields["role"] not in TOPIC_ROLES:
        raise AdminError(400, f"Unknown topic role; known: {', '.join(TOPIC_ROLES)}.")
    if not GUID_RE.match(fields["objectId"]):
        raise AdminError(400, "'objectId' must be a GUID (a service principal's object id).")
    return fields


async def post_topic_role(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Event Grid data-plane RBAC on one topic (`EventGrid Data Sender`), like a vault's role assignments."""
    fields = _topic_role_fields(body)
    with cloud.world.lock:
        topic = _topic(cloud.world, params[0])
        topic.role_assignments.setdefault(fields["objectId"].lower(), set()).add(fields["role"])
        return {"objectId": fields["objectId"].lower(), "topic": topic.name, "role": fields["role"]}


async def delete_topic_role(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _topic_role_fields(body)
    with cloud.world.lock:
        topic = _topic(cloud.world, params[0])
        topic.role_assignments.get(fields["objectId"].lower(), set()).discard(fields["role"])
    return None


async def get_topic_events(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """What publishers sent to the topic, oldest first, as received; `since` skips the first N."""
    since = _since(query)
    with cloud.world.lock:
        topic = _topic(cloud.world, params[0])
        return {"events": copy.deepcopy(topic.events[since:]), "next": len(topic.events)}


# --- Key Vault certificates ------------------------------------------------------------------------
def _vault(world: World, name: str) -> VaultRecord:
    vault = world.vault(name)
    if vault is None:
        raise AdminError(404, f"No vault {name}.")
    return vault


async def post_certificate_version(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    """Issue a new version of a self-signed certificate at once, as `begin_create_certificate` would
    from the certificate's policy with these fields over it."""
    fields = _object(
        body,
        {"name": str},
        {
            "subject": str,
            "validityMonths": int,
            "tags": dict,
            "keySize": int,
            "contentType": str,
            "exportable": bool,
        },
    )
    tags = fields.get("tags")
    if tags is not None and not all(isinstance(v, str) for v in tags.values()):
        raise AdminError(400, "'tags' must map names to strings.")
    with cloud.world.lock:
        vault = _vault(cloud.world, params[0])
        issued = keyvault_certificates.issue_now(
            cloud.world,
            vault,
            fields["name"],
            subject=fields.get("subject"),
            validity_months=fields.get("validityMonths") or certificate_policy.DEFAULT_VALIDITY_MONTHS,
            tags=tags,
            key_size=fields.get("keySize") or 2048,
            content_type=fields.get("contentType") or certificate_policy.PKCS12,
            exportable=fields.get("exportable", True) is not False,
        )
    if isinstance(issued, str):
        raise AdminError(400, issued)
    return issued.to_admin()


async def get_certificate_versions(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    with cloud.world.lock:
        versions = keyvault_certificates.certificate_versions(_vault(cloud.world, params[0]), params[1])
    if versions is None:
        raise AdminError(404, f"No certificate {params[1]} in {params[0]}.")
    return {"versions": [v.to_admin() for v in versions]}


async def put_certificate_issuance(cloud: LocalCloud, body: Any, query: dict[str, list[str]], params: list[str]) -> Any:
    fields = _object(body, {"delaySeconds": (int, float)}, {})
    if not 0 <= fields["delaySeconds"] <= 3600:
        raise AdminError(400, "'delaySeconds' must be between 0 and 3600.")
    with cloud.world.lock:
        _vault(cloud.world, params[0]).certificate_issuance_seconds = float(fields["delaySeconds"])
    return {"delaySeconds": float(fields["delaySeconds"])}


_ROUTES: dict[tuple[str, tuple[str, ...]], Operation] = {
    ("GET", ("state",)): get_state,
    ("POST", ("tenants",)): post_tenant,
    ("PUT", ("tenants", "*", "license")): put_license,
    ("GET", ("sign-ins",)): get_sign_ins,
    ("POST", ("applications",)): post_application,
    ("DELETE", ("applications", "*")): delete_application,
    ("POST", ("applications", "*", "passwords")): post_password,
    ("POST", ("applications", "*", "certificates")): post_certificate,
    ("POST", ("applications", "*", "owners")): post_owner,
    ("PUT", ("applications", "*", "tags")): put_tags,
    ("DELETE", ("applications", "*", "owners", "*")): delete_owner,
    ("DELETE", ("applications", "*", "passwords", "*")): delete_password,
    ("POST", ("applications", "*", "federated-credentials")): post_federated_credential,
    ("POST", ("service-principals", "*", "passwords")): post_sp_password,
    ("POST", ("service-principals", "*", "certificates")): post_sp_certificate,
    ("POST", ("service-principals", "*", "owners")): post_sp_owner,
    ("PUT", ("service-principals", "*", "tags")): put_sp_tags,
    ("POST", ("applications", "*", "graph-app-roles")): post_graph_app_role,
    ("PUT", ("applications", "*", "api")): put_api,
    ("POST", ("applications", "*", "app-role-assignments")): post_app_role_assignment,
    ("DELETE", ("applications", "*", "app-role-assignments")): delete_app_role_assignment,
    ("POST", ("identities",)): post_identity,
    ("POST", ("managed-identities",)): post_managed_identity,
    ("GET", ("managed-identities",)): get_managed_identities,
    ("POST", ("tokens", "expire")): post_expire_token,
    ("POST", ("vaults", "*", "secrets", "*", "backdate")): post_backdate,
    ("POST", ("role-assignments",)): post_role_assignment,
    ("DELETE", ("role-assignments",)): delete_role_assignment,
    ("POST", ("vaults",)): post_vault,
    ("POST", ("topics",)): post_topic,
    ("POST", ("topics", "*", "role-assignments")): post_topic_role,
    ("DELETE", ("topics", "*", "role-assignments")): delete_topic_role,
    ("GET", ("topics", "*", "events")): get_topic_events,
    ("POST", ("policies",)): post_policy,
    ("PUT", ("config",)): put_config,
    ("POST", ("faults",)): post_fault,
    ("GET", ("faults",)): get_faults,
    ("DELETE", ("faults",)): delete_faults,
    ("POST", ("clock",)): post_clock,
    ("GET", ("requests",)): get_requests,
    ("GET", ("events",)): get_events,
    ("GET", ("issued-secrets",)): get_issued_secrets,
    ("POST", ("vaults", "*", "certificates")): post_certificate_version,
    ("GET", ("vaults", "*", "certificates", "*")): get_certificate_versions,
    ("PUT", ("vaults", "*", "certificate-issuance")): put_certificate_issuance,
}
