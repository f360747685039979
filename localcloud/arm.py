"""Azure Resource Manager, as much as sign-in tools need: `GET /subscriptions`, `GET /tenants` and the
cloud's endpoint metadata (`GET /metadata/endpoints`).

`az login` lists the subscriptions (and, without `--tenant`, the tenants) its token can see before it
saves an account; `az cloud register --endpoint-resource-manager` reads the metadata document to learn
the cloud's other endpoints. The local cloud has no subscriptions, so the list is empty and
`az login --allow-no-subscriptions` saves a tenant-level account, as it does for a service principal
that holds no Azure role. The envelopes, headers and error codes are Resource Manager's.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from localcloud.keys import CALLER, WORLD
from localcloud.state import GUID_RE, MANAGEMENT_RESOURCES, IssuedToken, World

# Versions of the Microsoft.Resources subscriptions API (`/subscriptions`, `/tenants`); the Azure CLI
# sends 2022-12-01. Another answers 400 InvalidApiVersionParameter naming these.
SUBSCRIPTION_API_VERSIONS = (
    "2022-12-01",
    "2021-01-01",
    "2020-01-01",
    "2019-11-01",
    "2019-06-01",
    "2018-06-01",
    "2016-06-01",
    "2016-02-01",
    "2015-11-01",
    "2015-01-01",
    "2014-04-01",
)
# `az cloud register` asks for 2022-09-01; older tools for 2015-01-01 and 2019-05-01.
METADATA_API_VERSIONS = ("2015-01-01", "2019-05-01", "2020-06-01", "2022-09-01")
KEY_VAULT_DNS_SUFFIX = "vault.azure.net"


def setup(app: web.Application) -> None:
    app.router.add_get("/subscriptions", subscriptions)
    app.router.add_get("/subscriptions/{subscription_id}", subscription)
    app.router.add_get("/tenants", tenants)
    app.router.add_get("/metadata/endpoints", metadata_endpoints)


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Resource Manager's envelope: `{"error": {"code", "message"}}`, with its request ids."""
    return web.Response(
        status=status,
        text=json.dumps({"error": {"code": code, "message": message}}),
        content_type="application/json",
        charset="utf-8",
        headers={**_ids(), **(headers or {})},
    )


def _ids() -> dict[str, str]:
    request_id = str(uuid.uuid4())
    return {
        "Cache-Control": "no-cache",
        "Pragma": "no-cache",
        "Expires": "-1",
        "x-ms-request-id": request_id,
        "x-ms-correlation-request-id": request_id,
    }


def _json(body: Any) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/json", charset="utf-8", headers=_ids())


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _authenticate(request: web.Request) -> IssuedToken | web.Response:
    """The caller's Resource Manager token, or the 401 Resource Manager answers."""
    world: World = request.app[WORLD]
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        return arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            {
                "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
                "error_description=\"The authentication failed because of missing 'Authorization' header.\""
            },
        )
    raw = header[7:].strip()
    with world.lock:
        token = world.tokens.get(raw)
    challenge = {
        "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
        'error_description="The access token is invalid."'
    }
    if token is None:
        return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.", challenge)
    now = datetime.now(UTC)  # tokens age on real time (see World.issue_token)
    if token.expires <= now:
        return arm_error(
            401,
            "ExpiredAuthenticationToken",
            f"The access token expiry UTC time '{token.expires:%m/%d/%Y %H:%M:%S}' is earlier than current UTC "
            f"time '{now:%m/%d/%Y %H:%M:%S}'.",
            challenge,
        )
    if token.service != "arm":
        allowed = ",".join(f"'{a}','{a.rstrip('/')}'" for a in MANAGEMENT_RESOURCES)
        return arm_error(
            401,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{token.audience}'. It should "
            f"exactly match with one of the allowed audiences {allowed}.",
            challenge,
        )
    request[CALLER] = token.app_id
    return token


def _api_version(request: web.Request, supported: tuple[str, ...]) -> web.Response | None:
    version = request.query.get("api-version")
    if not version:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in supported:
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{','.join(supported)}'.",
        )
    return None


async def subscriptions(request: web.Request) -> web.Response:
    """The subscriptions the caller can see: none, in a cloud without subscriptions."""
    auth = _authenticate(request)
    if isinstance(auth, web.Response):
        return auth
    refused = _api_version(request, SUBSCRIPTION_API_VERSIONS)
    if refused is not None:
        return refused
    return _json({"value": [], "count": {"type": "Total", "value": 0}})


async def subscription(request: web.Request) -> web.Response:
    auth = _authenticate(request)
    if isinstance(auth, web.Response):
        return auth
    refused = _api_version(request, SUBSCRIPTION_API_VERSIONS)
    if refused is not None:
        return refused
    subscription_id = request.match_info["subscription_id"]
    if not GUID_RE.match(subscription_id):
        return arm_error(
            400,
            "InvalidSubscriptionId",
            f"The provided subscription identifier '{subscription_id}' is malformed or invalid.",
        )
    return arm_error(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


async def tenants(request: web.Request) -> web.Response:
    """The tenants the caller belongs to: an application's token, its home tenant."""
    auth = _authenticate(request)
    if isinstance(auth, web.Response):
        return auth
    refused = _api_version(request, SUBSCRIPTION_API_VERSIONS)
    if refused is not None:
        return refused
    world: World = request.app[WORLD]
    with world.lock:
        tenant = world.tenants.get(auth.tenant_id)
        items = []
        if tenant is not None:
            items.append(
                {
                    "id": f"/tenants/{tenant.tenant_id}",
                    "tenantId": tenant.tenant_id,
                    "countryCode": "US",
                    "displayName": f"Local tenant {tenant.tenant_id[:8]}",
                    "domains": [tenant.default_domain],
                    "tenantCategory": "Home",
                    "defaultDomain": tenant.default_domain,
                    "tenantType": "AAD",
                }
            )
    return _json({"value": items})


async def metadata_endpoints(request: web.Request) -> web.Response:
    """The cloud's endpoints, as `https://management.azure.com/metadata/endpoints` describes Azure's:
    this origin for sign-in, Resource Manager and Graph (the local cloud's Graph audience), Resource
    Manager's own audiences, and Key Vault's suffix (vaults here are addressed by URL, not by name)."""
    refused = _api_version(request, METADATA_API_VERSIONS)
    if refused is not None:
        return refused
    base = _base(request)
    body = {
        "name": "LocalCloud",
        "authentication": {
            "loginEndpoint": base,
            "audiences": list(MANAGEMENT_RESOURCES),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "resourceManager": f"{base}/",
        "microsoftGraphResourceId": f"{base}/",
        "graph": "https://graph.windows.net/",
        "graphAudience": "https://graph.windows.net/",
        "suffixes": {"keyVaultDns": KEY_VAULT_DNS_SUFFIX},
    }
    return _json(body)
