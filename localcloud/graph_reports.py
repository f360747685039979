"""Microsoft Graph beta: the application credential sign-in activity report.

`GET /beta/reports/appCredentialSignInActivities` (and `/{id}`) answers, per credential, when an app
last signed in with it, from the sign-ins the token endpoint logged (`World.sign_ins`). What the real
report documents, and so what is served here:

- application permission `AuditLog.Read.All` (else 403 `Authorization_RequestDenied`), and a tenant
  with Entra ID P1 or P2 (else 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`, the code
  and text users quote for every sign-in report of a free tenant);
- `$filter` on `appId` or `keyId` (`eq`), `$top`; global cloud and beta only;
- an entity `id` that is the base64 of `{keyId}|{credentialOrigin}` (as the docs' examples are);
- not real time, day-granular: a sign-in shows only once it is older than the configured
  `signInReportDelaySeconds` (default a day), and `lastSignInDateTime` is that sign-in's day at
  midnight UTC (the docs' examples are all at 00:00:00). `lastSignInRequestId` is its request id.

Choices where the docs say nothing, stated so that no client relies on more: a credential appears once
it has a reported sign-in (a never-used one has no row), and it stays after it is removed from the app;
`keyType` uses the resource's enum (`clientSecret`; one docs example says `secret`); `keyUsage` is
`sign` for a password and `verify` for a certificate (its key credential's usage); `credentialOrigin` is
`application` or `servicePrincipal`, the object that holds the credential; `resourceId` names the
resource of the last sign-in.
`$orderby`, which the docs also list, is not served (400). `appDisplayName` is not a documented
property of this resource and is not invented.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from localcloud import graph
from localcloud.graph import EntityType, GraphError
from localcloud.keys import WORLD
from localcloud.state import PREMIUM_LICENSES, ROLE_AUDIT_LOG_READ, IssuedToken, SignInRecord, World, graph_time

BETA = "/beta"
REPORT_PATH = BETA + "/reports/appCredentialSignInActivities"
BETA_METADATA = "https://graph.microsoft.com/beta/$metadata"
CREDENTIAL_ORIGIN = "application"

ACTIVITY = EntityType(
    "appCredentialSignInActivity",
    "AppCredentialSignInActivity",
    (
        "id",
        "appId",
        "appObjectId",
        "createdDateTime",
        "credentialOrigin",
        "expirationDateTime",
        "keyId",
        "keyType",
        "keyUsage",
        "resourceId",
        "servicePrincipalObjectId",
        "signInActivity",
    ),
    frozenset(),
)

# The text Graph's reporting answers a tenant without Entra ID P1/P2 with (MicrosoftDocs/azure-docs
# #77948, microsoftgraph/microsoft-graph-docs#12537).
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
NON_PREMIUM_MESSAGE = "Neither tenant is B2C or tenant doesn't have premium license"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(REPORT_PATH, graph._handled(list_activities))
    router.add_get(REPORT_PATH + "/{activity_id}", graph._handled(get_activity))
    # The rest of beta is not served: Graph's answer to a segment it does not know.
    router.add_route("*", BETA + "/{tail:.*}", graph._handled(graph.unknown_route))


def activity_id(key_id: str, origin: str = CREDENTIAL_ORIGIN) -> str:
    return base64.b64encode(f"{key_id}|{origin}".encode()).decode("ascii")


def _day(moment: datetime) -> datetime:
    """The report is aggregated by day: a sign-in at 14:32 shows as that day's 00:00:00Z."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def reported_activities(world: World, tenant_id: str) -> list[dict[str, Any]]:
    """The report's rows for one tenant as of the world's clock (the caller holds the lock): per
    credential, its latest sign-in older than the reporting delay."""
    cutoff = world.clock.now() - timedelta(seconds=world.config.sign_in_report_delay_seconds)
    latest: dict[str, SignInRecord] = {}
    for record in world.sign_ins:
        if record.tenant_id != tenant_id or record.time > cutoff:
            continue
        current = latest.get(record.key_id)
        if current is None or record.time >= current.time:
            latest[record.key_id] = record
    return [
        _row(record) for record in sorted(latest.values(), key=lambda r: activity_id(r.key_id, r.credential_origin))
    ]


def _row(record: SignInRecord) -> dict[str, Any]:
    return {
        "id": activity_id(record.key_id, record.credential_origin),
        "appId": record.app_id,
        "appObjectId": record.app_object_id,
        "createdDateTime": graph_time(record.key_created),
        "credentialOrigin": record.credential_origin,
        "expirationDateTime": graph_time(record.key_expires),
        "keyId": record.key_id,
        "keyType": record.key_type,
        # A password signs; a certificate's key credential has usage `Verify` (Entra verifies with it).
        "keyUsage": "verify" if record.key_type == "certificate" else "sign",
        "resourceId": record.resource_id,
        "servicePrincipalObjectId": record.sp_object_id,
        "signInActivity": {
            "lastSignInDateTime": graph_time(_day(record.time)),
            "lastSignInRequestId": record.request_id,
        },
    }


def _authorise(world: World, token: IssuedToken) -> str:
    """The permission (403), then the tenant's license (403): Graph's gateway checks the token's roles
    before the reporting service looks at the tenant. Returns the caller's tenant id."""
    with world.lock:
        tenant = graph._caller_tenant(world, token)
        if ROLE_AUDIT_LOG_READ not in token.roles:
            raise GraphError(403, "Authorization_RequestDenied", graph._INSUFFICIENT)
        if tenant.license not in PREMIUM_LICENSES:
            raise GraphError(403, NON_PREMIUM_CODE, NON_PREMIUM_MESSAGE)
        return tenant.tenant_id


def _filter(raw: str | None) -> Callable[[dict[str, Any]], bool]:
    return graph.entity_filter(
        raw,
        ACTIVITY,
        equal={"appId": lambda row: row["appId"], "keyId": lambda row: row["keyId"]},
        starts_with={},
        any_equal={},
    )


async def list_activities(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = graph._authenticate(request)
    options = graph._query_options(request, allowed={"filter", "top", "skiptoken"})
    matches = _filter(options.get("filter"))
    page_size = graph._page_size(options.get("top"))
    after = _decode_skiptoken(options.get("skiptoken"))
    tenant_id = _authorise(world, token)
    with world.lock:
        rows = [row for row in reported_activities(world, tenant_id) if matches(row)]
    remaining = [row for row in rows if after is None or row["id"] > after]
    page = remaining[:page_size]
    body: dict[str, Any] = {"@odata.context": f"{BETA_METADATA}#reports/appCredentialSignInActivities"}
    if len(remaining) > page_size:
        body["@odata.nextLink"] = _next_link(request, page[-1]["id"])
    body["value"] = page
    return graph._json(request, body)


async def get_activity(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = graph._authenticate(request)
    wanted = request.match_info["activity_id"]
    tenant_id = _authorise(world, token)
    with world.lock:
        row = next((r for r in reported_activities(world, tenant_id) if r["id"] == wanted), None)
    if row is None:
        raise graph._not_found(wanted)
    body = {"@odata.context": f"{BETA_METADATA}#reports/appCredentialSignInActivities/$entity", **row}
    return graph._json(request, body)


# Rows are ordered by id (base64 text), so a page ends at an id and the next one resumes after it.
_SKIP_PREFIX = "a1:"


def _next_link(request: web.Request, last_id: str) -> str:
    token = base64.urlsafe_b64encode((_SKIP_PREFIX + last_id).encode()).decode().rstrip("=")
    pairs = [(k, v) for k, v in request.query.items() if k.lstrip("$").lower() != "skiptoken"]
    pairs.append(("$skiptoken", token))
    # As Graph's own nextLinks: OData punctuation kept readable, spaces as %20.
    query = "&".join(quote(k, safe="$") + "=" + quote(v, safe="$,'()") for k, v in pairs)
    return f"{request.scheme}://{request.host}{request.path}?{query}"


def _decode_skiptoken(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except ValueError:
        text = ""
    if not text.startswith(_SKIP_PREFIX):
        raise graph._bad_request(
            "The specified page token value has expired and can no longer be included in your request."
        )
    return text[len(_SKIP_PREFIX) :]
