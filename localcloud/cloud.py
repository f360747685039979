"""The local cloud: one process, one event loop thread, HTTPS on loopback.

The main port serves Entra ID (`/{tenant}/...`), the App Service managed-identity endpoint
(`/msi/token`), Microsoft Graph (`/v1.0/...`), Resource Manager's sign-in surface (`/subscriptions`,
`/tenants`, `/metadata/endpoints`) and the admin API (`/_emulator/...`). Each vault gets a
port of its own, because the Key Vault SDK parses ids as `https://host/secrets/name/version` and so a
vault must own the root of its host; so does each Event Grid topic (`https://host:port/api/events`, as
a topic owns `{topic}.{region}-1.eventgrid.azure.net`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, TypeVar

from aiohttp import web

from localcloud import (
    admin,
    arm,
    certificate_policy,
    entra,
    eventgrid,
    graph,
    keyvault,
    keyvault_certificates,
    keyvault_keys,
)
from localcloud.errors import fault_response
from localcloud.keys import AUTHORITY, CALLER, CLOUD, TOPIC_NAME, VAULT_NAME, WORLD
from localcloud.keyvault_certificates import IssuedCertificate
from localcloud.state import KeyCredential, PasswordCredential, SecretVersionRecord, SignInRecord, World
from localcloud.tls import LocalTLS, create_local_tls

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


DEFAULT_VAULT = "kv-local"
IDENTITY_PATH = "/msi/token"
ADMIN_PREFIX = "/_emulator"
# Resource Manager's paths on the main port (the rest of the main port is Entra's).
ARM_PREFIXES = ("/subscriptions", "/tenants", "/metadata/")
#: How long a `stall` fault without `delayMs` holds a request whose caller never hangs up.
STALL_MAX_SECONDS = 600.0


def service_of(request: web.Request) -> str:
    if VAULT_NAME in request.app:
        return "keyvault"
    if TOPIC_NAME in request.app:
        return "eventgrid"
    path = request.path
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    if path.startswith(("/v1.0", "/beta")):
        return "graph"
    if path.startswith(IDENTITY_PATH):
        return "identity"
    if path.startswith(ARM_PREFIXES):
        return "arm"
    return "entra"


@web.middleware
async def wire_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency, injected faults and the request log, the same for every service."""
    world = request.app[WORLD]
    service = service_of(request)
    if service == "admin":
        return await handler(request)
    with world.lock:
        fault = world.take_fault(service, request.method, request.path)
        latency = world.config.latency_ms
    if latency:
        await asyncio.sleep(latency / 1000)
    response: web.StreamResponse
    if fault is not None:
        if fault.stall:
            await _stall(request, fault.delay_ms)
            with world.lock:
                world.record(service, request.method, request.path_qs, 0, None)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # no answer, ever: the connection is dropped
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop:
            with world.lock:
                world.record(service, request.method, request.path_qs, 0, None)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp ends the handler without writing a response
        if fault.status:
            response = fault_response(service, fault.status, fault.code)
            with world.lock:
                world.record(service, request.method, request.path_qs, response.status, _caller(request))
            return response
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    with world.lock:
        world.record(service, request.method, request.path_qs, response.status, _caller(request))
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def _stall(request: web.Request, delay_ms: int) -> None:
    """Hold the request without a byte of answer for ``delay_ms`` (0: until the caller hangs up, at
    most ``STALL_MAX_SECONDS``), returning early once the caller has hung up."""
    limit = time.monotonic() + (delay_ms / 1000 if delay_ms else STALL_MAX_SECONDS)
    while time.monotonic() < limit:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)


def _caller(request: web.Request) -> str | None:
    caller: str | None = request.get(CALLER)
    if caller:
        return caller
    world = request.app[WORLD]
    token = world.token_from_header(request.headers.get("Authorization"))
    return token.app_id if token else None


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity of the local cloud, as its creator needs to know it."""

    sp_object_id: str  # the service principal's object id (App Service's principal_id): what RBAC names
    app_id: str  # its client id
    tenant_id: str
    display_name: str
    system_assigned: bool

    @classmethod
    def from_admin(cls, body: Mapping[str, Any]) -> ManagedIdentity:
        return cls(
            sp_object_id=body["objectId"],
            app_id=body["appId"],
            tenant_id=body["tenantId"],
            display_name=body["displayName"],
            system_assigned=body["systemAssigned"],
        )


class LocalCloud:
    """Start with `with LocalCloud() as cloud:` or `cloud.start()` / `cloud.stop()`.

    Admin operations go through `admin(method, path, body)`, which runs the very same code as the HTTP
    admin API under `admin_url`; the methods below wrap the ones a Python caller needs typed answers
    from. `world` is the cloud's internal state: read and change it through these, not directly.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        vaults: tuple[str, ...] = (DEFAULT_VAULT,),
        host: str = "127.0.0.1",
        seed: int | None = None,
        tls: LocalTLS | None = None,
    ) -> None:
        self.world = World(seed=seed)
        self.host = host
        self._requested_port = port
        self._initial_vaults = vaults
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._ticker: asyncio.Task[None] | None = None
        # A process that imports aiohttp after exporting SSL_CERT_FILE passes the TLS it made first.
        self.tls: LocalTLS | None = tls
        self.port = 0
        self.tenant_id = ""
        # Top-level keys the embedding code adds to `GET /_emulator/state` (see `annotate_state`).
        self.state_annotations: dict[str, Any] = {}

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        if self.tls is None:
            self.tls = create_local_tls()
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="local-cloud", daemon=True)
        self._thread.start()
        ready.wait()
        self._run(self._start_async())
        return self

    async def _start_async(self) -> None:
        # `az cloud register --endpoint-resource-manager https://host:port/` asks for
        # `https://host:port//metadata/endpoints`, which Resource Manager serves: a path with doubled
        # slashes is redirected (308, method kept) to the one it means.
        merge_slashes = web.normalize_path_middleware(append_slash=False, merge_slashes=True)
        main = web.Application(middlewares=[merge_slashes, wire_middleware], client_max_size=4 * 1024 * 1024)
        main[WORLD] = self.world
        main[CLOUD] = self
        entra.setup(main)
        arm.setup(main)
        graph.setup(main)
        admin.setup(main)
        self.port = await self._serve(main, self._requested_port)
        with self.world.lock:
            tenant = self.world.create_tenant()
            self.world.default_tenant_id = tenant.tenant_id
            self.tenant_id = tenant.tenant_id
        for name in self._initial_vaults:
            await self.create_vault_async(name)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _serve(self, app: web.Application, port: int) -> int:
        assert self.tls is not None
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port, ssl_context=self.tls.server_context)
        await site.start()
        self._runners.append(runner)
        server = site._server
        assert server is not None and hasattr(server, "sockets")
        return int(server.sockets[0].getsockname()[1])

    async def _tick(self) -> None:
        """Key Vault's near-expiry and expired events are emitted as the (movable) clock passes."""
        while True:
            await asyncio.sleep(0.5)
            with self.world.lock:
                keyvault.emit_due_events(self.world)
                keyvault_certificates.emit_due_events(self.world)

    def stop(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._run(self._stop_async())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    async def _stop_async(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for runner in reversed(self._runners):
            await runner.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    # --- endpoints -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return self.base_url

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}{ADMIN_PREFIX}"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.base_url}{IDENTITY_PATH}"

    @property
    def identity_header(self) -> str:
        return self.world.managed_identity_header

    @property
    def ca_bundle(self) -> str:
        assert self.tls is not None
        return str(self.tls.ca_bundle)

    @property
    def vault_urls(self) -> dict[str, str]:
        with self.world.lock:
            return {v.name: v.url for v in self.world.vaults.values()}

    def vault_url(self, name: str) -> str:
        return self.vault_urls[name]

    @property
    def env(self) -> dict[str, str]:
        """The variables that point azure-identity (and requests, aiohttp, httpx) at this cloud."""
        return {
            "AZURE_AUTHORITY_HOST": self.authority,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
        }

    def describe(self) -> dict[str, Any]:
        """The one JSON line `python -m localcloud serve` prints."""
        return {
            "authority": self.authority,
            "graph": self.graph_url,
            "tenantId": self.tenant_id,
            "managedIdentity": {"endpoint": self.identity_endpoint, "header": self.identity_header},
            "managedIdentities": self.admin("GET", "/managed-identities")["identities"],
            "vaults": self.vault_urls,
            "caBundle": self.ca_bundle,
            "admin": self.admin_url,
            "env": self.env,
        }

    @contextlib.contextmanager
    def environment(self) -> Iterator[dict[str, str]]:
        """Temporarily export `env` into os.environ (tests and the demo)."""
        env = self.env
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # --- vaults (need the loop: each vault binds its own port) -----------------------------------
    async def create_vault_async(self, name: str) -> dict[str, str]:
        with self.world.lock:
            existing = self.world.vault(name)
            if existing is not None:
                return {"name": existing.name, "url": existing.url}
            record = keyvault.create_vault_record(self.world, name)
        app = web.Application(middlewares=[wire_middleware], client_max_size=1024 * 1024)
        app[WORLD] = self.world
        app[VAULT_NAME] = record.name
        app[AUTHORITY] = self.authority
        keyvault.setup(app, objects=(keyvault_certificates.resolve, keyvault_keys.resolve))
        port = await self._serve(app, 0)
        with self.world.lock:
            record.port = port
            record.url = f"https://{self.host}:{port}"
            # Identities that hold a role on every vault hold it on this new one too.
            for identity in self.world.managed_identities.values():
                if identity.all_vault_roles:
                    record.role_assignments.setdefault(identity.app.sp_object_id, set()).update(
                        identity.all_vault_roles
                    )
        return {"name": record.name, "url": record.url}

    def create_vault(self, name: str) -> dict[str, str]:
        return self._run(self.create_vault_async(name))

    # --- Event Grid topics (each binds its own port too) -----------------------------------------
    async def create_topic_async(self, name: str) -> dict[str, Any]:
        with self.world.lock:
            existing = self.world.topic(name)
            if existing is not None:
                raise ValueError(f"A topic named '{name}' exists already.")
            record = eventgrid.create_topic_record(self.world, name)
        app = web.Application(middlewares=[wire_middleware], client_max_size=2 * 1024 * 1024)
        app[WORLD] = self.world
        app[TOPIC_NAME] = record.name
        eventgrid.setup(app)
        port = await self._serve(app, 0)
        with self.world.lock:
            record.port = port
            record.url = f"https://{self.host}:{port}"
            return record.to_admin()

    def create_topic(self, name: str) -> dict[str, Any]:
        """An Event Grid custom topic (CloudEvents 1.0 input) on a port of its own (`POST /topics`)."""
        result: dict[str, Any] = self.admin("POST", "/topics", {"name": name})
        return result

    def topic_url(self, name: str) -> str:
        """The topic's endpoint, `https://127.0.0.1:{port}/api/events`: what EventGridPublisherClient takes."""
        with self.world.lock:
            record = self.world.topic(name)
            if record is None:
                raise KeyError(f"no topic {name}")
            return record.endpoint

    def assign_topic_role(self, name: str, principal: str, role: str = "EventGrid Data Sender") -> None:
        """Grant a service principal (object id) a data-plane role on a topic
        (`POST /topics/{name}/role-assignments`)."""
        self.admin("POST", f"/topics/{name}/role-assignments", {"objectId": principal, "role": role})

    def published_events(self, name: str) -> list[dict[str, Any]]:
        """Every CloudEvent published to the topic, oldest first, exactly as received (copies)."""
        events: list[dict[str, Any]] = self.admin("GET", f"/topics/{name}/events")["events"]
        return events

    # --- admin operations, in-process ------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API in-process with the same validation as over HTTP; raises AdminError."""
        return self._run(admin.dispatch(self, method, path, body))

    # --- typed wrappers of admin operations ------------------------------------------------------
    def create_managed_identity(
        self,
        display_name: str,
        *,
        graph_app_roles: Iterable[str] = (),
        vault_roles: Mapping[str, Iterable[str]] | None = None,
        system_assigned: bool = False,
        tenant_id: str | None = None,
    ) -> ManagedIdentity:
        """A managed identity (`POST /managed-identities`): Graph app roles granted to its service
        principal, and Key Vault roles by vault name, `*` meaning every vault, now and later. A
        system-assigned one (at most one per cloud) is what the identity endpoint issues tokens for
        when a request names no identity, as App Service does."""
        body: dict[str, Any] = {
            "displayName": display_name,
            "graphAppRoles": list(graph_app_roles),
            "vaultRoles": {vault: list(roles) for vault, roles in (vault_roles or {}).items()},
            "systemAssigned": system_assigned,
        }
        if tenant_id is not None:
            body["tenantId"] = tenant_id
        return ManagedIdentity.from_admin(self.admin("POST", "/managed-identities", body))

    def expose_api(
        self, application: str, *, identifier_uris: Iterable[str] = (), app_roles: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Make an app registration (object id or appId) an API (`PUT /applications/{id}/api`): clients
        get tokens for `{identifier URI or appId}/.default` with `aud` = its appId. `app_roles` are
        role values assignable to applications."""
        body = {"identifierUris": list(identifier_uris), "appRoles": [{"value": role} for role in app_roles]}
        result: dict[str, Any] = self.admin("PUT", f"/applications/{application}/api", body)
        return result

    def assign_app_role(self, resource: str, principal: str, role: str) -> dict[str, Any]:
        """Assign the API `resource`'s app role `role` to a service principal (its object id, or its
        app's appId) (`POST /applications/{id}/app-role-assignments`); its next tokens carry it."""
        body = {"principalId": principal, "appRole": role}
        result: dict[str, Any] = self.admin("POST", f"/applications/{resource}/app-role-assignments", body)
        return result

    def managed_identities(self) -> list[ManagedIdentity]:
        return [ManagedIdentity.from_admin(body) for body in self.admin("GET", "/managed-identities")["identities"]]

    def annotate_state(self, key: str, value: Any) -> None:
        """Add a top-level key to `GET /state` (e.g. a profile naming the identity it created)."""
        if key in admin.STATE_KEYS:
            raise ValueError(f"'{key}' is one of the state's own keys.")
        self.state_annotations[key] = value

    def now(self) -> datetime:
        """The cloud's (movable) clock."""
        with self.world.lock:
            return self.world.clock.now()

    def advance_clock(self, seconds: float, *, emit_events: bool = True) -> datetime:
        """Move the clock forward (`POST /clock`); without `emit_events`, only the ticker notices."""
        body = self.admin("POST", "/clock", {"advanceSeconds": seconds, "emitEvents": emit_events})
        return datetime.fromisoformat(body["now"].replace("Z", "+00:00"))

    def passwords(self, application: str) -> list[PasswordCredential]:
        """Copies of an app's password credentials (by object id or appId); they hold digests, not values."""
        with self.world.lock:
            app = admin.find_application(self.world, application)
            return [dataclasses.replace(p, replica_ready=list(p.replica_ready)) for p in app.passwords]

    def add_key_credential(
        self,
        application: str,
        certificate_der: bytes,
        *,
        display_name: str | None = None,
        replica_delays_seconds: list[float] | None = None,
        service_principal: bool = False,
    ) -> str:
        """Add a certificate (DER or PEM bytes) to an app as a key credential "a human uploaded earlier"
        (`POST /applications/{id}/certificates`; with `service_principal`, to its service principal:
        `POST /service-principals/{id}/certificates`); returns its keyId. Its dates are the
        certificate's; every replica knows it unless `replica_delays_seconds` says when each learns it."""
        body: dict[str, Any] = {"certificate": base64.b64encode(certificate_der).decode("ascii")}
        if display_name is not None:
            body["displayName"] = display_name
        if replica_delays_seconds is not None:
            body["replicaDelaysSeconds"] = list(replica_delays_seconds)
        collection = "service-principals" if service_principal else "applications"
        key_id: str = self.admin("POST", f"/{collection}/{application}/certificates", body)["keyId"]
        return key_id

    def key_credentials(self, application: str) -> list[KeyCredential]:
        """Copies of an app's key credentials (certificates: public DER only), by object id or appId."""
        with self.world.lock:
            app = admin.find_application(self.world, application)
            return [dataclasses.replace(k, replica_ready=list(k.replica_ready)) for k in app.certificates]

    def sp_passwords(self, application: str) -> list[PasswordCredential]:
        """Copies of the password credentials on an app's service principal (by the service principal's
        object id, the app's object id or appId); digests, not values."""
        with self.world.lock:
            app = admin.find_service_principal(self.world, application)
            return [dataclasses.replace(p, replica_ready=list(p.replica_ready)) for p in app.sp_passwords]

    def add_sp_password(
        self, application: str, *, display_name: str | None = None, replica_delays_seconds: list[float] | None = None
    ) -> dict[str, Any]:
        """A password on the service principal "a human created earlier" (`POST /service-principals/{id}/
        passwords`), with its `secretText`; already propagated unless `replica_delays_seconds` says when."""
        body: dict[str, Any] = {}
        if display_name is not None:
            body["displayName"] = display_name
        if replica_delays_seconds is not None:
            body["replicaDelaysSeconds"] = list(replica_delays_seconds)
        result: dict[str, Any] = self.admin("POST", f"/service-principals/{application}/passwords", body)
        return result

    def add_service_principal_owner(self, application: str, owner_object_id: str) -> None:
        """Make `owner_object_id` an owner of the app's service principal (`POST /service-principals/{id}/owners`)."""
        self.admin("POST", f"/service-principals/{application}/owners", {"objectId": owner_object_id})

    def set_service_principal_tags(self, application: str, tags: list[str]) -> list[str]:
        """Set the `tags` of an app's service principal outside Graph (`PUT /service-principals/{id}/tags`)."""
        result: list[str] = self.admin("PUT", f"/service-principals/{application}/tags", {"tags": tags})["tags"]
        return result

    def service_principal_tags(self, application: str) -> list[str]:
        with self.world.lock:
            return list(admin.find_service_principal(self.world, application).sp_tags)

    def add_federated_credential(
        self, application: str, name: str, issuer: str, subject: str, *, audiences: list[str] | None = None
    ) -> dict[str, Any]:
        """A federated identity credential on the app (`POST /applications/{id}/federated-credentials`)."""
        body: dict[str, Any] = {"name": name, "issuer": issuer, "subject": subject}
        if audiences is not None:
            body["audiences"] = list(audiences)
        result: dict[str, Any] = self.admin("POST", f"/applications/{application}/federated-credentials", body)
        return result

    def sign_ins(self, application: str | None = None) -> list[SignInRecord]:
        """The sign-in log as it happened (no reporting delay), oldest first: every client-credentials
        token issued, with the keyId of the credential used; `application` (appId) narrows it."""
        with self.world.lock:
            wanted = application.lower() if application else None
            return [r for r in self.world.sign_ins if wanted is None or r.app_id.lower() == wanted]

    def set_license(self, license: str, *, tenant_id: str | None = None) -> None:
        """The tenant's Entra ID edition (`Free`, `P1`, `P2`; `PUT /tenants/{id}/license`)."""
        self.admin("PUT", f"/tenants/{tenant_id or 'default'}/license", {"license": license})

    def set_application_tags(self, application: str, tags: list[str]) -> list[str]:
        """Set an application's `tags` (object id or appId) outside Graph: `PUT /applications/{id}/tags`."""
        result: list[str] = self.admin("PUT", f"/applications/{application}/tags", {"tags": tags})["tags"]
        return result

    def application_tags(self, application: str) -> list[str]:
        with self.world.lock:
            return list(admin.find_application(self.world, application).tags)

    def secret_versions(self, vault: str, name: str) -> list[SecretVersionRecord]:
        """Copies of every version of a secret, oldest first, values included (in-process only)."""
        with self.world.lock:
            record = self.world.vault(vault)
            if record is None:
                raise KeyError(f"no vault {vault}")
            secret = record.secrets.get(name.lower())
            if secret is None:
                raise KeyError(f"no secret {name} in {vault}")
            return [dataclasses.replace(v, tags=dict(v.tags) if v.tags is not None else None) for v in secret.versions]

    # --- Key Vault certificates ------------------------------------------------------------------
    def create_certificate(
        self,
        vault: str,
        name: str,
        *,
        subject: str | None = None,
        validity_months: int = 12,
        tags: Mapping[str, str] | None = None,
        key_size: int = 2048,
        content_type: str = certificate_policy.PKCS12,
        exportable: bool = True,
    ) -> IssuedCertificate:
        """Issue a new version of a self-signed certificate at once (`POST /vaults/{vault}/certificates`),
        from its existing policy with these fields over it (`subject` defaults to `CN={name}`); its
        key and secret get the same version. Returns the version with its thumbprint and validity."""
        body: dict[str, Any] = {
            "name": name,
            "validityMonths": validity_months,
            "keySize": key_size,
            "contentType": content_type,
            "exportable": exportable,
        }
        if subject is not None:
            body["subject"] = subject
        if tags is not None:
            body["tags"] = dict(tags)
        self.admin("POST", f"/vaults/{vault}/certificates", body)
        return self.certificate_versions(vault, name)[-1]

    def certificate_versions(self, vault: str, name: str) -> list[IssuedCertificate]:
        """Every issued version of a certificate, oldest first (`GET /vaults/{vault}/certificates/{name}`)."""
        with self.world.lock:
            record = self.world.vault(vault)
            if record is None:
                raise KeyError(f"no vault {vault}")
            versions = keyvault_certificates.certificate_versions(record, name)
            if versions is None:
                raise KeyError(f"no certificate {name} in {vault}")
            return versions

    def set_certificate_issuance_delay(self, vault: str, seconds: float) -> None:
        """How long a `Self` issuance stays pending in `vault` (`PUT /vaults/{vault}/certificate-issuance`)."""
        self.admin("PUT", f"/vaults/{vault}/certificate-issuance", {"delaySeconds": seconds})

    def edit(self, change: Callable[[World], T]) -> T:
        """Run `change(world)` under the world's lock: the escape hatch for states that neither the wire
        nor the admin API can make. `World` is internal and may change; prefer an admin route."""
        with self.world.lock:
            return change(self.world)
