"""Drive the function app's functions in-process with the real trigger types of azure-functions.

No Functions host runs offline, so the tests do what the host would: build ``func.HttpRequest``,
``func.EventGridEvent``/``func.CloudEvent``, ``func.TimerRequest`` and ``func.QueueMessage``
objects, call the user function and collect output bindings with :class:`Collector` (a ``func.Out``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from functions.host import REQUESTS_QUEUE, STORAGE_CONNECTION
from rotation.domain.model import ReconcileRequest

T = TypeVar("T")

FUNCTION_HOST = "https://func-rotator.example.net"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


#: The bearer token ``http_request`` sends unless told otherwise: an operator's token for the
#: shared cloud's rotator API, set per test by the ``_operator_bearer`` fixture (tests/functions/conftest.py).
DEFAULT_BEARER: list[str] = []
#: ``http_request(bearer=NO_TOKEN)``: send no Authorization header at all.
NO_TOKEN = ""

#: The shortest lease Azure allows, and deferred messages visible again after a second.
SHORT_LOCK = EdgeConfig(lock_lease_seconds=15, defer_delay_seconds=1)


@functools.cache
def app_functions(config: EdgeConfig | None = None) -> dict[str, Any]:
    """The app's functions by name: ``function_app.app`` itself, or an app built the same way with
    ``config``. ``get_functions`` builds them and must run once per app, hence the cache."""
    import function_app

    app = function_app.app if config is None else function_app.create_app(config)
    return {str(f.get_function_name()): f for f in app.get_functions()}


def app_handlers(config: EdgeConfig | None = None) -> dict[str, Any]:
    """The user functions, called exactly as the Python worker would."""
    return {name: f.get_user_function() for name, f in app_functions(config).items()}


class Collector(func.Out[T]):
    """An output binding: records what the function set (the host would write it after return)."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.calls = 0

    def set(self, val: T) -> None:
        self.value = val
        self.calls += 1

    def get(self) -> T:
        assert self.value is not None, "the function set nothing on this output"
        return self.value

    def messages(self) -> list[str]:
        """Queue messages written: a queue output takes one string or a list of them."""
        if self.value is None:
            return []
        if isinstance(self.value, str):
            return [self.value]
        assert isinstance(self.value, list)
        return list(self.value)

    def requests(self) -> list[ReconcileRequest]:
        return [ReconcileRequest.from_json(m) for m in self.messages()]


# --------------------------------------------------------------------------------------------------
# Inputs


def http_request(
    method: str,
    path: str,
    *,
    route_params: Mapping[str, str] | None = None,
    body: bytes | str | Any = b"",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    bearer: str | None = None,
) -> func.HttpRequest:
    """An HTTP request as the host hands it over; a non-bytes/str body is sent as JSON. It carries
    ``Authorization: Bearer`` with ``bearer``, else the test's operator token (``DEFAULT_BEARER``);
    ``bearer=NO_TOKEN`` sends none."""
    if isinstance(body, str):
        raw = body.encode()
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = json.dumps(body).encode()
    all_headers = {"x-functions-key": "test-key"}
    token = bearer if bearer is not None else (DEFAULT_BEARER[0] if DEFAULT_BEARER else NO_TOKEN)
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if raw:
        all_headers["content-type"] = "application/json"
    all_headers.update(headers or {})
    return func.HttpRequest(
        method,
        f"{FUNCTION_HOST}{path}",
        headers=all_headers,
        params=dict(params or {}),
        route_params=dict(route_params or {}),
        body=raw,
    )


def client_principal(*roles: str, role_typ: str = "roles", claim_typ: str | None = None) -> str:
    """An ``X-MS-CLIENT-PRINCIPAL`` value as App Service authentication sets it."""
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": str(uuid.uuid4())},
        {"typ": "name", "val": "Ops Person"},
        *({"typ": claim_typ or role_typ, "val": role} for role in roles),
    ]
    principal = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": role_typ}
    return base64.b64encode(json.dumps(principal).encode()).decode()


def body_of(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/json", response.mimetype
    data = json.loads(response.get_body())
    assert isinstance(data, dict)
    return data


def key_vault_event(
    vault: str,
    secret: str,
    version: str | None = None,
    *,
    event_type: str = "Microsoft.KeyVault.SecretNearExpiry",
    event_id: str | None = None,
    schema: str = "eventgrid",
    vault_url: str | None = None,
    exp: int | None = None,
) -> func.EventGridEvent | func.CloudEvent:
    """A Key Vault event as the Event Grid trigger receives it, in either schema."""
    version = version or uuid.uuid4().hex
    base = vault_url or f"https://{vault}.vault.azure.net"
    data: dict[str, object] = {
        "Id": f"{base}/secrets/{secret}/{version}",
        "VaultName": vault,
        "ObjectType": "Secret",
        "ObjectName": secret,
        "Version": version,
        "NBF": None,
        "EXP": exp if exp is not None else int(datetime.now(UTC).timestamp()) + 10 * 86400,
    }
    topic = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
        f"Microsoft.KeyVault/vaults/{vault}"
    )
    event_id = event_id or str(uuid.uuid4())
    if schema == "cloudevents":
        return func.CloudEvent(
            id=event_id,
            source=topic,
            type=event_type,
            specversion="1.0",
            subject=secret,
            time=datetime.now(UTC),
            data=data,
        )
    return func.EventGridEvent(
        id=event_id,
        data=data,
        topic=topic,
        subject=secret,
        event_type=event_type,
        event_time=datetime.now(UTC),
        data_version="1",
    )


def queue_message(body: str | bytes, *, message_id: str | None = None) -> func.QueueMessage:
    return func.QueueMessage(id=message_id or str(uuid.uuid4()), body=body)


# --------------------------------------------------------------------------------------------------
# Azurite: the requests queue as the host sees it (base64, host.json's messageEncoding)


def storage_connection() -> str:
    return os.environ[STORAGE_CONNECTION]


@contextlib.asynccontextmanager
async def foreign_lease(lock_key: str, seconds: int = 15, *, release: bool = True) -> AsyncIterator[BlobLeaseClient]:
    """Lease a secret's lock blob the way another worker would (``release=False``: a crashed one)."""
    async with BlobServiceClient.from_connection_string(storage_connection()) as service:
        container = service.get_container_client("rotation-locks")
        with contextlib.suppress(ResourceExistsError):
            await container.create_container()
        blob = container.get_blob_client(lock_key)
        with contextlib.suppress(ResourceExistsError):
            await blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob)
        await lease.acquire(lease_duration=seconds)
        try:
            yield lease
        finally:
            if release:
                await lease.release()


def requests_queue_client() -> QueueClient:
    return QueueClient.from_connection_string(
        storage_connection(),
        REQUESTS_QUEUE,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


async def receive_all(client: QueueClient) -> list[str]:
    """Every message visible now, removed from the queue (as the host would after completion)."""
    bodies: list[str] = []
    async for message in client.receive_messages(messages_per_page=32, visibility_timeout=60):
        bodies.append(str(message.content))
        await client.delete_message(message)
    return bodies


async def wait_for_messages(client: QueueClient, count: int, within_seconds: float = 10.0) -> list[str]:
    """Collect ``count`` messages (deferred ones become visible after their delay)."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    bodies: list[str] = []
    while len(bodies) < count:
        bodies.extend(await receive_all(client))
        if len(bodies) >= count:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected {count} message(s) on {REQUESTS_QUEUE}, got {len(bodies)}")
        await asyncio.sleep(0.25)
    return bodies


# --------------------------------------------------------------------------------------------------
# The local cloud: state and request log


def request_mark(cloud: RotatorCloud) -> int:
    return int(cloud.admin("GET", "/requests?since=0")["next"])


def requests_since(cloud: RotatorCloud, mark: int, service: str | None = None) -> list[dict[str, Any]]:
    """Requests since ``mark``, except the HTTP functions' reads of the tenant's OpenID keys (which
    happen once per key cache, not per request): what the rotator itself asked of the cloud."""
    log = cloud.admin("GET", f"/requests?since={mark}")["requests"]
    return [r for r in log if (service is None or r["service"] == service) and not is_key_discovery(r)]


def is_key_discovery(record: Mapping[str, Any]) -> bool:
    path = str(record["path"])
    return (
        record["service"] == "entra"
        and record["method"] == "GET"
        and (path.endswith("/.well-known/openid-configuration") or "/discovery/" in path)
    )


def key_discoveries_since(cloud: RotatorCloud, mark: int) -> list[dict[str, Any]]:
    log = cloud.admin("GET", f"/requests?since={mark}")["requests"]
    return [r for r in log if is_key_discovery(r)]


def add_password_calls(cloud: RotatorCloud, mark: int) -> list[dict[str, Any]]:
    return [
        r
        for r in requests_since(cloud, mark, "graph")
        if r["method"] == "POST" and r["path"].split("?")[0].endswith("/addPassword")
    ]


def application(cloud: RotatorCloud, object_id: str) -> dict[str, Any]:
    for tenant in cloud.admin("GET", "/state")["tenants"]:
        for app in tenant["applications"]:
            if app["id"] == object_id:
                return dict(app)
    raise AssertionError(f"no application {object_id} in the local cloud")


def rotator_credentials(cloud: RotatorCloud, object_id: str) -> list[dict[str, Any]]:
    """The app's passwords that the rotator created (``rotator:vault/secret:rotationId``)."""
    return [
        p
        for p in application(cloud, object_id)["passwordCredentials"]
        if (p.get("displayName") or "").startswith("rotator:")
    ]


def issued_secrets(cloud: RotatorCloud) -> list[str]:
    return list(cloud.admin("GET", "/issued-secrets")["secrets"])


def assert_nothing_contains(haystacks: Iterable[str], needles: Iterable[str]) -> None:
    values = [n for n in needles if n]
    for text in haystacks:
        for value in values:
            assert value not in text, f"a secret value (hint {value[:3]}) leaked into: {text[:200]!r}"


def events_named(records: Iterable[logging.LogRecord], name: str) -> list[dict[str, Any]]:
    """The facts of every ``rotation.observability.event`` line called ``name``."""
    found: list[dict[str, Any]] = []
    for record in records:
        message = record.getMessage()
        if message.startswith(f"{name} "):
            found.append(json.loads(message[len(name) + 1 :]))
    return found
