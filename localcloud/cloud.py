"""The local cloud: one process, one event loop thread, HTTPS on loopback.

The main port serves Entra ID (`/{tenant}/...`), the App Service managed-identity endpoint
(`/msi/token`), Microsoft Graph (`/v1.0/...`) and the admin API (`/_emulator/...`). Each vault gets a
port of its own, because the Key Vault SDK parses ids as `https://host/secrets/name/version` and so a
vault must own the root of its host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from aiohttp import web

from localcloud import admin, entra, graph, keyvault
from localcloud.errors import fault_response
from localcloud.keys import AUTHORITY, CALLER, CLOUD, VAULT_NAME, WORLD
from localcloud.state import ROLE_RW_OWNED, Application, World
from localcloud.tls import LocalTLS, create_local_tls

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


DEFAULT_VAULT = "kv-local"
ROTATOR_DISPLAY_NAME = "secret-rotator (managed identity)"
IDENTITY_PATH = "/msi/token"
ADMIN_PREFIX = "/_emulator"


def service_of(request: web.Request) -> str:
    if VAULT_NAME in request.app:
        return "keyvault"
    path = request.path
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    if path.startswith("/v1.0"):
        return "graph"
    if path.startswith(IDENTITY_PATH):
        return "identity"
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


def _caller(request: web.Request) -> str | None:
    caller: str | None = request.get(CALLER)
    if caller:
        return caller
    world = request.app[WORLD]
    token = world.token_from_header(request.headers.get("Authorization"))
    return token.app_id if token else None


class LocalCloud:
    """Start with `with LocalCloud() as cloud:` or `cloud.start()` / `cloud.stop()`.

    Admin operations are plain methods (`create_application`, `add_password`, `set_config`, ...);
    the HTTP admin API under `admin_url` calls the very same functions.
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
        self.rotator: Application | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LocalCloud:
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
        main = web.Application(middlewares=[wire_middleware], client_max_size=4 * 1024 * 1024)
        main[WORLD] = self.world
        main[CLOUD] = self
        entra.setup(main)
        graph.setup(main)
        admin.setup(main)
        self.port = await self._serve(main, self._requested_port)
        with self.world.lock:
            tenant = self.world.create_tenant()
            self.world.default_tenant_id = tenant.tenant_id
            self.tenant_id = tenant.tenant_id
            self.rotator = self.world.create_application(tenant, ROTATOR_DISPLAY_NAME, graph_roles=[ROLE_RW_OWNED])
            self.world.rotator = self.rotator
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

    def __enter__(self) -> LocalCloud:
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
        """Exactly the variables that point the rotator (and any azure-identity client) here."""
        return {
            "AZURE_AUTHORITY_HOST": self.authority,
            "ROTATION_GRAPH_URL": self.graph_url,
            "ROTATION_VAULTS": ",".join(f"{name}={url}" for name, url in self.vault_urls.items()),
            "ROTATION_TENANT_ID": self.tenant_id,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
        }

    def describe(self) -> dict[str, Any]:
        """The one JSON line `python -m emulator serve` prints."""
        assert self.rotator is not None
        return {
            "authority": self.authority,
            "graph": self.graph_url,
            "tenantId": self.tenant_id,
            "managedIdentity": {"endpoint": self.identity_endpoint, "header": self.identity_header},
            "rotator": {"objectId": self.rotator.sp_object_id, "appId": self.rotator.app_id},
            "vaults": self.vault_urls,
            "caBundle": self.ca_bundle,
            "admin": self.admin_url,
            "env": self.env,
        }

    @contextlib.contextmanager
    def environment(self) -> Iterator[dict[str, str]]:
        """Temporarily export `env` into os.environ (tests and the demo)."""
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            yield self.env
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
        keyvault.setup(app)
        port = await self._serve(app, 0)
        with self.world.lock:
            record.port = port
            record.url = f"https://{self.host}:{port}"
            # The default rotator identity may manage every vault the cloud creates.
            if self.rotator is not None:
                record.role_assignments.setdefault(self.rotator.sp_object_id, set()).add("Key Vault Secrets Officer")
        return {"name": record.name, "url": record.url}

    def create_vault(self, name: str) -> dict[str, str]:
        return self._run(self.create_vault_async(name))

    # --- admin operations, in-process ------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API in-process with the same validation as over HTTP; raises AdminError."""
        return self._run(admin.dispatch(self, method, path, body))
