"""Microsoft Graph in the local cloud, through the real msgraph-sdk and azure-identity clients.

Each test drives `GraphServiceClient` exactly as a production client does (only the base URL differs) and,
where the wire matters, repeats the call with plain httpx to pin status, content type, body keys
and the error envelope that the wire facts describe.
"""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.graph_service_client import GraphServiceClient

from localcloud.cloud import LocalCloud
from localcloud.errors import GRAPH_JSON

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
RW_ALL = "Application.ReadWrite.All"
READ_ALL = "Application.Read.All"
RW_OWNED = "Application.ReadWrite.OwnedBy"
METADATA = "https://graph.microsoft.com/v1.0/$metadata"
PASSWORD_KEYS = {
    "@odata.context",
    "customKeyIdentifier",
    "displayName",
    "endDateTime",
    "hint",
    "keyId",
    "secretText",
    "startDateTime",
}


# --- helpers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """An app registration that signs in with a client secret, as the admin API made it."""

    object_id: str  # its service principal: what an app's `owners` holds
    app_id: str
    tenant_id: str
    secret: str


def make_identity(cloud: LocalCloud, *roles: str, tenant_id: str | None = None) -> Identity:
    body: dict[str, Any] = {"displayName": f"caller-{uuid.uuid4().hex[:8]}", "graphAppRoles": list(roles)}
    if tenant_id:
        body["tenantId"] = tenant_id
    made = cloud.admin("POST", "/identities", body)
    return Identity(made["objectId"], made["appId"], made["tenantId"], made["clientSecret"])


def make_app(cloud: LocalCloud, name: str = "svc", **extra: Any) -> dict[str, Any]:
    app: dict[str, Any] = cloud.admin("POST", "/applications", {"displayName": name, **extra})
    return app


def make_tenant(cloud: LocalCloud) -> str:
    tenant_id: str = cloud.admin("POST", "/tenants", {})["tenantId"]
    return tenant_id


@asynccontextmanager
async def graph_client(cloud: LocalCloud, identity: Identity) -> AsyncIterator[GraphServiceClient]:
    """The SDK as production builds it; only the base URL points at the local cloud."""
    async with ClientSecretCredential(
        identity.tenant_id, identity.app_id, identity.secret, authority=cloud.authority
    ) as credential:
        client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
        client.request_adapter.base_url = cloud.graph_url
        yield client


def no_retry() -> RequestConfiguration[Any]:
    """Without this, the SDK's RetryHandler would retry a 429 (and wait) before the test sees it."""
    return RequestConfiguration(options=[RetryHandlerOption(should_retry=False)])


def trust(cloud: LocalCloud) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cloud.ca_bundle)


async def token_for(cloud: LocalCloud, identity: Identity, scope: str = GRAPH_SCOPE) -> str:
    async with httpx.AsyncClient(verify=trust(cloud)) as client:
        response = await client.post(
            f"{cloud.authority}/{identity.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": identity.app_id,
                "client_secret": identity.secret,
                "grant_type": "client_credentials",
                "scope": scope,
            },
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def raw(cloud: LocalCloud) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the cloud's Graph, for what the SDK hides: status, headers, exact bodies."""
    async with httpx.AsyncClient(base_url=cloud.graph_url, verify=trust(cloud)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Graph's envelope: error.code, error.message, error.innerError.{date,request-id,client-request-id}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "odata.metadata" not in response.headers["content-type"]
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    inner = error["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    assert response.headers["request-id"] == inner["request-id"]
    return error


def not_found(key: str) -> str:
    return f"Resource '{key}' does not exist or one of its queried reference-property objects are not present."


# --- reading ---------------------------------------------------------------------------------
async def test_get_by_id_lists_passwords_without_secret_text(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-get")
    added = cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": "human"})
    reader = make_identity(cloud, READ_ALL)
    async with graph_client(cloud, reader) as client:
        got = await client.applications.by_application_id(app["id"]).get()
    assert got is not None and got.id == app["id"] and got.app_id == app["appId"]
    assert got.display_name == "svc-get"
    assert got.password_credentials is not None
    [credential] = got.password_credentials
    assert str(credential.key_id) == added["keyId"]
    assert credential.secret_text is None and credential.hint == added["secretText"][:3]


async def test_filter_by_app_id_with_select(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-filter")
    make_app(cloud, "svc-filter")  # same name, other appId: the filter must not return it
    reader = make_identity(cloud, READ_ALL)
    query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
        filter=f"appId eq '{app['appId']}'", select=["id", "appId", "passwordCredentials"]
    )
    async with graph_client(cloud, reader) as client:
        page = await client.applications.get(RequestConfiguration(query_parameters=query))
    assert page is not None and page.value is not None
    [only] = page.value
    assert (only.id, only.app_id, only.password_credentials) == (app["id"], app["appId"], [])
    assert only.display_name is None  # not selected, so not sent

    response = await raw.get(
        "/applications",
        params={"$filter": f"appId eq '{app['appId']}'", "$select": "id,appId,passwordCredentials"},
        headers=bearer(await token_for(cloud, reader)),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPH_JSON
    body = response.json()
    assert body["@odata.context"] == f"{METADATA}#applications(id,appId,passwordCredentials)"
    assert "@odata.nextLink" not in body
    assert [set(item) for item in body["value"]] == [{"id", "appId", "passwordCredentials"}]


async def test_select_returns_exactly_the_selected_properties(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-select")
    token = await token_for(cloud, make_identity(cloud, READ_ALL))
    response = await raw.get(f"/applications/{app['id']}?$select=displayName,notes", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "@odata.context": f"{METADATA}#applications(displayName,notes)/$entity",
        "displayName": "svc-select",
        "notes": None,
    }
    unknown = await raw.get(f"/applications/{app['id']}?$select=displayName,colour", headers=bearer(token))
    error = assert_graph_error(unknown, 400, "Request_BadRequest")
    assert error["message"] == "Could not find a property named 'colour' on type 'microsoft.graph.application'."


async def test_filter_forms(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    tenant = make_tenant(cloud)
    reader = make_identity(cloud, READ_ALL, tenant_id=tenant)
    for name in ("orders-api", "orders-worker", "billing", "O'Brien tool"):
        make_app(cloud, name, tenantId=tenant)
    token = bearer(await token_for(cloud, reader))

    async def names(filter_: str) -> list[str]:
        response = await raw.get("/applications", params={"$filter": filter_, "$select": "displayName"}, headers=token)
        assert response.status_code == 200, response.text
        return sorted(item["displayName"] for item in response.json()["value"])

    assert await names("startswith(displayName,'orders-')") == ["orders-api", "orders-worker"]
    assert await names("displayName eq 'billing'") == ["billing"]
    assert await names("displayName eq 'O''Brien tool'") == ["O'Brien tool"]
    unsupported = await raw.get("/applications", params={"$filter": "signInAudience eq 'AzureADMyOrg'"}, headers=token)
    assert_graph_error(unsupported, 400, "Request_UnsupportedQuery")
    garbage = await raw.get("/applications", params={"$filter": "(( nonsense"}, headers=token)
    assert_graph_error(garbage, 400, "Request_UnsupportedQuery")


async def test_alternate_key_get(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-alt")
    reader = make_identity(cloud, READ_ALL)
    async with graph_client(cloud, reader) as client:
        got = await client.applications_with_app_id(app["appId"]).get()
    assert got is not None and got.id == app["id"]

    token = bearer(await token_for(cloud, reader))
    for path in (f"/applications(appId='{app['appId']}')", f"/applications(appId=%27{app['appId']}%27)"):
        response = await raw.get(path, headers=token)
        assert response.status_code == 200, path
        assert response.json()["@odata.context"] == f"{METADATA}#applications/$entity"
    missing = await raw.get(f"/applications(appId='{uuid.uuid4()}')", headers=token)
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


async def test_paging_follows_next_links(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    tenant = make_tenant(cloud)
    reader = make_identity(cloud, READ_ALL, tenant_id=tenant)
    created = {make_app(cloud, f"page-{i:03}", tenantId=tenant)["id"] for i in range(130)}
    expected = created | {_object_id_of(cloud, reader)}  # the reader is an app registration too

    seen: list[str] = []
    pages = 0
    async with graph_client(cloud, reader) as client:
        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(top=40, select=["id"])
        page = await client.applications.get(RequestConfiguration(query_parameters=query))
        while page is not None:
            pages += 1
            seen += [item.id for item in page.value or [] if item.id]
            if not page.odata_next_link:
                break
            page = await client.applications.with_url(page.odata_next_link).get()
    assert pages == 4  # 131 apps in pages of 40
    assert len(seen) == len(set(seen)) and set(seen) == expected

    token = bearer(await token_for(cloud, reader))
    first = (await raw.get("/applications", headers=token)).json()
    assert len(first["value"]) == 100  # the default page size
    next_link = first["@odata.nextLink"]
    assert next_link.startswith(f"{cloud.graph_url}/applications?") and "$skiptoken=" in next_link
    rest = (await raw.get(next_link, headers=token)).json()  # absolute: followed as given
    assert len(rest["value"]) == 31 and "@odata.nextLink" not in rest
    assert len((await raw.get("/applications?$top=999", headers=token)).json()["value"]) == 131
    counted = (await raw.get("/applications?$top=5&$count=true", headers=token)).json()
    assert counted["@odata.count"] == 131 and len(counted["value"]) == 5
    assert_graph_error(await raw.get("/applications?$top=1000", headers=token), 400, "Request_BadRequest")
    assert_graph_error(await raw.get("/applications?$skiptoken=bogus", headers=token), 400, "Request_BadRequest")


def _object_id_of(cloud: LocalCloud, identity: Identity) -> str:
    """The application object behind an identity (identities are app registrations here)."""
    for tenant in cloud.admin("GET", "/state")["tenants"]:
        for app in tenant["applications"]:
            if app["appId"] == identity.app_id:
                object_id: str = app["id"]
                return object_id
    raise AssertionError(f"no application for {identity.app_id}")


# --- addPassword -----------------------------------------------------------------------------
async def test_add_password_shape_and_secret_shown_once(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-add")
    writer = make_identity(cloud, RW_ALL)
    before = datetime.now(UTC).replace(microsecond=0)
    async with graph_client(cloud, writer) as client:
        body = AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="rotator:kv/s:1"))
        created = await client.applications.by_application_id(app["id"]).add_password.post(body)
        assert created is not None and created.secret_text is not None
        secret = created.secret_text
        assert len(secret) == 40 and secret[3:6] == "8Q~"
        assert created.hint == secret[:3]
        assert created.display_name == "rotator:kv/s:1"
        assert created.custom_key_identifier is None
        assert created.start_date_time is not None and created.end_date_time is not None
        assert before <= created.start_date_time <= datetime.now(UTC)
        start = created.start_date_time
        assert created.end_date_time == start.replace(year=start.year + 2)  # two calendar years

        again = await client.applications.by_application_id(app["id"]).get()
    assert again is not None and again.password_credentials is not None
    [listed] = again.password_credentials
    assert listed.key_id == created.key_id and listed.secret_text is None and listed.hint == secret[:3]


async def test_add_password_wire_shape_on_both_keys(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-add-raw")
    token = await token_for(cloud, make_identity(cloud, RW_ALL))
    headers = {**bearer(token), "client-request-id": "c0ffee00-0000-4000-8000-000000000001"}
    start = "2030-01-01T00:00:00Z"
    end = "2030-04-01T00:00:00Z"
    by_id = await raw.post(
        f"/applications/{app['id']}/addPassword",
        json={"passwordCredential": {"displayName": "d", "startDateTime": start, "endDateTime": end}},
        headers=headers,
    )
    assert by_id.status_code == 200
    assert by_id.headers["content-type"] == GRAPH_JSON
    assert by_id.headers["client-request-id"] == headers["client-request-id"]
    assert by_id.headers["request-id"]
    body = by_id.json()
    assert set(body) == PASSWORD_KEYS
    assert body["@odata.context"] == f"{METADATA}#microsoft.graph.passwordCredential"
    assert (body["startDateTime"], body["endDateTime"]) == (start, end)
    assert uuid.UUID(body["keyId"]) and body["customKeyIdentifier"] is None

    by_app_id = await raw.post(f"/applications(appId='{app['appId']}')/addPassword", json={}, headers=headers)
    assert by_app_id.status_code == 200 and set(by_app_id.json()) == PASSWORD_KEYS
    assert by_app_id.json()["displayName"] is None
    empty_body = await raw.post(f"/applications/{app['id']}/addPassword", headers=headers)
    assert empty_body.status_code == 200

    listed = (await raw.get(f"/applications/{app['id']}", headers=headers)).json()["passwordCredentials"]
    assert len(listed) == 3 and all(item["secretText"] is None for item in listed)


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        (
            {"startDateTime": "2030-02-01T00:00:00Z", "endDateTime": "2030-01-01T00:00:00Z"},
            "Request_BadRequest",
        ),
        ({"endDateTime": "next tuesday"}, "Request_BadRequest"),
        ({"endDateTime": "2001-01-01T00:00:00Z"}, "Request_BadRequest"),  # already over
        ({"startDateTime": 12}, "Request_BadRequest"),
        ({"displayName": ["not", "a", "string"]}, "Request_BadRequest"),
    ],
)
async def test_add_password_rejects_bad_dates(
    cloud: LocalCloud, raw: httpx.AsyncClient, credential: dict[str, Any], code: str
) -> None:
    app = make_app(cloud, "svc-dates")
    token = await token_for(cloud, make_identity(cloud, RW_ALL))
    response = await raw.post(
        f"/applications/{app['id']}/addPassword",
        json={"passwordCredential": credential},
        headers=bearer(token),
    )
    assert_graph_error(response, 400, code)
    assert _passwords(cloud, app["id"]) == []


async def test_add_password_rejects_malformed_json(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-json")
    token = await token_for(cloud, make_identity(cloud, RW_ALL))
    response = await raw.post(
        f"/applications/{app['id']}/addPassword",
        content=b"{not json",
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert_graph_error(response, 400, "BadRequest")


def _passwords(cloud: LocalCloud, object_id: str) -> list[dict[str, Any]]:
    for tenant in cloud.admin("GET", "/state")["tenants"]:
        for app in tenant["applications"]:
            if app["id"] == object_id:
                passwords: list[dict[str, Any]] = app["passwordCredentials"]
                return passwords
    raise AssertionError(f"no application {object_id}")


# --- removePassword --------------------------------------------------------------------------
async def test_remove_password(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-remove")
    keep = cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": "human"})
    gone = cloud.admin("POST", f"/applications/{app['id']}/passwords", {"displayName": "old"})
    writer = make_identity(cloud, RW_ALL)
    async with graph_client(cloud, writer) as client:
        remover = client.applications.by_application_id(app["id"]).remove_password
        body = RemovePasswordPostRequestBody(key_id=uuid.UUID(gone["keyId"]))
        await remover.post(body)
        assert [p["keyId"] for p in _passwords(cloud, app["id"])] == [keep["keyId"]]
        with pytest.raises(ODataError) as again:
            await remover.post(body)  # already gone: an error a client may treat as "done"
    assert again.value.response_status_code == 400
    assert again.value.error is not None and again.value.error.code == "Request_BadRequest"
    assert again.value.error.message is not None and gone["keyId"] in again.value.error.message


async def test_remove_password_wire_shape(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-remove-raw")
    first = cloud.admin("POST", f"/applications/{app['id']}/passwords", {})
    second = cloud.admin("POST", f"/applications/{app['id']}/passwords", {})
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))

    response = await raw.post(
        f"/applications/{app['id']}/removePassword", json={"keyId": first["keyId"]}, headers=token
    )
    assert response.status_code == 204
    assert response.content == b"" and "content-type" not in response.headers
    assert response.headers["request-id"]
    alternate = await raw.post(
        f"/applications(appId='{app['appId']}')/removePassword",
        json={"keyId": second["keyId"].upper()},  # GUIDs compare case-insensitively
        headers=token,
    )
    assert alternate.status_code == 204
    assert _passwords(cloud, app["id"]) == []

    unknown = await raw.post(f"/applications/{app['id']}/removePassword", json={"keyId": first["keyId"]}, headers=token)
    assert_graph_error(unknown, 400, "Request_BadRequest")
    for body in ({"keyId": "not-a-guid"}, {"keyId": 7}, {}):
        malformed = await raw.post(f"/applications/{app['id']}/removePassword", json=body, headers=token)
        assert_graph_error(malformed, 400, "Request_BadRequest")


# --- authorisation ---------------------------------------------------------------------------
async def test_owned_by_reads_every_app_but_writes_only_owned_ones(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    """The permissions reference: OwnedBy "allows an app to call GET /applications and GET
    /servicePrincipals to list all applications and service principals in the tenant"; it "cannot
    update any apps that it is not an owner of"."""
    tenant = make_tenant(cloud)
    owner = make_identity(cloud, RW_OWNED, tenant_id=tenant)
    owned = make_app(cloud, "owned", tenantId=tenant)
    foreign = make_app(cloud, "foreign", tenantId=tenant)
    cloud.admin("POST", f"/applications/{owned['id']}/owners", {"objectId": owner.object_id})

    async with graph_client(cloud, owner) as client:
        page = await client.applications.get()
        assert page is not None
        assert {a.id for a in page.value or []} >= {owned["id"], foreign["id"]}
        assert await client.applications.by_application_id(owned["id"]).get() is not None
        got = await client.applications.by_application_id(foreign["id"]).get()
        assert got is not None and got.app_id == foreign["appId"]
        added = await client.applications.by_application_id(owned["id"]).add_password.post(AddPasswordPostRequestBody())
        assert added is not None and added.secret_text
        with pytest.raises(ODataError) as write_denied:
            await client.applications.by_application_id(foreign["id"]).add_password.post(AddPasswordPostRequestBody())
    denied = write_denied.value
    assert denied.response_status_code == 403
    assert denied.error is not None and denied.error.code == "Authorization_RequestDenied"
    assert denied.error.message == "Insufficient privileges to complete the operation."

    token = bearer(await token_for(cloud, owner))
    response = await raw.post(
        f"/applications/{foreign['id']}/removePassword", json={"keyId": str(uuid.uuid4())}, headers=token
    )
    assert_graph_error(response, 403, "Authorization_RequestDenied")
    patched = await raw.patch(f"/applications/{foreign['id']}", json={"tags": ["x"]}, headers=token)
    assert_graph_error(patched, 403, "Authorization_RequestDenied")


async def test_a_service_principal_reads_its_own_app_without_any_permission(
    cloud: LocalCloud, raw: httpx.AsyncClient
) -> None:
    """ "A service principal can retrieve its own application and service principal details without
    being granted any application permissions" (servicePrincipal: get); everything else stays 403."""
    nobody = make_identity(cloud)
    token = bearer(await token_for(cloud, nobody))
    own_app = await raw.get(f"/applications(appId='{nobody.app_id}')", headers=token)
    assert own_app.status_code == 200, own_app.text
    assert own_app.json()["appId"] == nobody.app_id
    own_sp = await raw.get(f"/servicePrincipals/{nobody.object_id}", headers=token)
    assert own_sp.status_code == 200 and own_sp.json()["appId"] == nobody.app_id
    other = make_app(cloud, "someone else")
    assert_graph_error(await raw.get(f"/applications/{other['id']}", headers=token), 403, "Authorization_RequestDenied")
    assert_graph_error(await raw.get("/servicePrincipals", headers=token), 403, "Authorization_RequestDenied")


async def test_managed_identity_with_owned_by_writes_its_own_app(cloud: LocalCloud) -> None:
    """A managed identity (system-assigned, OwnedBy) through ManagedIdentityCredential."""
    state = cloud.admin("GET", "/state")
    [identity] = [i for i in state["managedIdentities"] if i["systemAssigned"]]
    owned = make_app(cloud, "rotated-by-mi")
    cloud.admin("POST", f"/applications/{owned['id']}/owners", {"objectId": identity["objectId"]})
    async with ManagedIdentityCredential() as credential:
        client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
        client.request_adapter.base_url = cloud.graph_url
        added = await client.applications.by_application_id(owned["id"]).add_password.post(
            AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="mi"))
        )
        assert added is not None and added.key_id is not None
        await client.applications.by_application_id(owned["id"]).remove_password.post(
            RemovePasswordPostRequestBody(key_id=added.key_id)
        )
    assert _passwords(cloud, owned["id"]) == []


async def test_read_all_reads_but_cannot_write(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-read-only")
    reader = make_identity(cloud, READ_ALL)
    async with graph_client(cloud, reader) as client:
        assert await client.applications.by_application_id(app["id"]).get() is not None
        with pytest.raises(ODataError) as denied:
            await client.applications.by_application_id(app["id"]).add_password.post(AddPasswordPostRequestBody())
    assert denied.value.response_status_code == 403


async def test_no_role_is_denied_everything(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-no-role")
    token = bearer(await token_for(cloud, make_identity(cloud)))
    assert_graph_error(await raw.get("/applications", headers=token), 403, "Authorization_RequestDenied")
    assert_graph_error(await raw.get(f"/applications/{app['id']}", headers=token), 403, "Authorization_RequestDenied")
    response = await raw.post(f"/applications/{app['id']}/addPassword", json={}, headers=token)
    assert_graph_error(response, 403, "Authorization_RequestDenied")


async def test_other_tenants_apps_do_not_exist(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-home")
    stranger = make_identity(cloud, RW_ALL, tenant_id=make_tenant(cloud))
    async with graph_client(cloud, stranger) as client:
        with pytest.raises(ODataError) as missing:
            await client.applications.by_application_id(app["id"]).get()
        page = await client.applications.get(
            RequestConfiguration(
                query_parameters=ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
                    filter=f"appId eq '{app['appId']}'"
                )
            )
        )
    assert missing.value.response_status_code == 404
    assert missing.value.error is not None and missing.value.error.code == "Request_ResourceNotFound"
    assert missing.value.error.message == not_found(app["id"])
    assert page is not None and page.value == []
    token = bearer(await token_for(cloud, stranger))
    response = await raw.post(f"/applications(appId='{app['appId']}')/addPassword", json={}, headers=token)
    assert_graph_error(response, 404, "Request_ResourceNotFound")


async def test_authentication_failures(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-auth")
    identity = make_identity(cloud, RW_ALL)
    path = f"/applications/{app['id']}"
    cases = [
        ({}, "Access token is empty."),
        ({"Authorization": "Bearer"}, "Access token is empty."),
        ({"Authorization": "Bearer not-a-token"}, None),
        (
            bearer(await token_for(cloud, identity, VAULT_SCOPE)),
            "Access token validation failure. Invalid audience.",
        ),
    ]
    for headers, message in cases:
        response = await raw.get(path, headers=headers)
        error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
        if message:
            assert error["message"] == message


async def test_expired_token_is_rejected(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-expiry")
    token = await token_for(cloud, make_identity(cloud, RW_ALL))
    # Tokens age in real time (moving the clock leaves them alone), so expire this one directly.
    cloud.admin("POST", "/tokens/expire", {"token": token})
    response = await raw.get(f"/applications/{app['id']}", headers=bearer(token))
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Lifetime validation failed, the token is expired."


# --- policy and limits -----------------------------------------------------------------------
async def test_policy_caps_lifetime(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-policy-lifetime")
    cloud.admin("POST", "/policies", {"appId": app["appId"], "passwordMaxLifetime": "P90D"})
    writer = make_identity(cloud, RW_ALL)
    async with graph_client(cloud, writer) as client:
        items = client.applications.by_application_id(app["id"])
        with pytest.raises(ODataError) as too_long:
            await items.add_password.post(AddPasswordPostRequestBody())  # default: two years
        within = datetime.now(UTC) + timedelta(days=89)
        ok = await items.add_password.post(
            AddPasswordPostRequestBody(password_credential=PasswordCredential(end_date_time=within))
        )
    assert too_long.value.response_status_code == 400
    error = too_long.value.error
    assert error is not None and error.code == "CredentialInvalidLifetimeAsPerAppPolicy"
    assert error.message is not None
    assert error.message.startswith("Credential lifetime exceeds the max value allowed as per assigned policy '")
    assert ok is not None and ok.secret_text

    response = await raw.post(
        f"/applications/{app['id']}/addPassword", json={}, headers=bearer(await token_for(cloud, writer))
    )
    body = assert_graph_error(response, 400, "CredentialInvalidLifetimeAsPerAppPolicy")
    assert body["details"] == [{"code": "InvalidKeyEndDate", "message": body["message"], "target": "EndDate"}]


async def test_tenant_policy_blocks_passwords(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    tenant = make_tenant(cloud)
    app = make_app(cloud, "svc-policy-block", tenantId=tenant)
    writer = make_identity(cloud, RW_ALL, tenant_id=tenant)
    cloud.admin("POST", "/policies", {"tenantId": tenant, "blockPasswordAddition": True})
    async with graph_client(cloud, writer) as client:
        with pytest.raises(ODataError) as blocked:
            await client.applications.by_application_id(app["id"]).add_password.post(AddPasswordPostRequestBody())
    assert blocked.value.response_status_code == 400
    assert blocked.value.error is not None
    assert blocked.value.error.code == "CredentialTypeNotAllowedAsPerAppPolicy"
    assert blocked.value.error.message is not None
    assert blocked.value.error.message.startswith("Credential type not allowed as per assigned policy '")
    # A per-app policy wins over the tenant default: this app may have passwords again.
    cloud.admin("POST", "/policies", {"appId": app["appId"], "blockPasswordAddition": False})
    response = await raw.post(
        f"/applications/{app['id']}/addPassword", json={}, headers=bearer(await token_for(cloud, writer))
    )
    assert response.status_code == 200


async def test_personal_account_apps_hold_two_passwords(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-msa", signInAudience="AzureADandPersonalMicrosoftAccount")
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))
    path = f"/applications/{app['id']}/addPassword"
    first, second = [await raw.post(path, json={}, headers=token) for _ in range(2)]
    assert first.status_code == second.status_code == 200
    third = await raw.post(path, json={}, headers=token)
    error = assert_graph_error(third, 400, "TooManyAppPasswords")
    assert error["message"] == "Not allowed to add 3 passwords. You can only add a maximum of 2 passwords."
    assert error["details"] == [{"target": "passwordCredentials", "code": "TooManyAppPasswords"}]
    removed = await raw.post(
        f"/applications/{app['id']}/removePassword", json={"keyId": first.json()["keyId"]}, headers=token
    )
    assert removed.status_code == 204
    assert (await raw.post(path, json={}, headers=token)).status_code == 200
    # Other audiences have no such cap.
    org_app = make_app(cloud, "svc-org")
    for _ in range(3):
        assert (await raw.post(f"/applications/{org_app['id']}/addPassword", json={}, headers=token)).status_code == 200


# --- throttling ------------------------------------------------------------------------------
async def test_writes_are_throttled_with_retry_after(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-throttle")
    writer = make_identity(cloud, RW_ALL)
    other = make_identity(cloud, RW_ALL)
    cloud.admin("PUT", "/config", {"throttle": {"enabled": True, "graphWrites": 2, "graphWindowSeconds": 10}})
    token = bearer(await token_for(cloud, writer))
    path = f"/applications/{app['id']}/addPassword"
    assert [(await raw.post(path, json={}, headers=token)).status_code for _ in range(2)] == [200, 200]

    throttled = await raw.post(path, json={}, headers=token)
    assert_graph_error(throttled, 429, "TooManyRequests")
    retry_after = throttled.headers["Retry-After"]
    assert re.fullmatch(r"\d+(\.\d{1,3})?", retry_after), retry_after
    assert 0 < float(retry_after) <= 5  # one write's worth of a 2-per-10-s bucket
    read = await raw.get(f"/applications/{app['id']}", headers=token)
    assert read.status_code == 200  # reads are not limited

    # The budget is per calling app: another caller still writes, through the SDK too.
    async with graph_client(cloud, other) as client:
        items = client.applications.by_application_id(app["id"])
        assert await items.add_password.post(AddPasswordPostRequestBody(), no_retry()) is not None
        assert await items.add_password.post(AddPasswordPostRequestBody(), no_retry()) is not None
        with pytest.raises(ODataError) as limited:
            await items.add_password.post(AddPasswordPostRequestBody(), no_retry())
    assert limited.value.response_status_code == 429
    assert limited.value.response_headers is not None and "retry-after" in {
        key.lower() for key in limited.value.response_headers
    }


# --- conformance of the rest -----------------------------------------------------------------
async def test_lookup_errors(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))
    missing = str(uuid.uuid4())
    error = assert_graph_error(
        await raw.get(f"/applications/{missing}", headers=token), 404, "Request_ResourceNotFound"
    )
    assert error["message"] == not_found(missing)
    error = assert_graph_error(await raw.get("/applications/not-a-guid", headers=token), 400, "Request_BadRequest")
    assert error["message"] == "Invalid object identifier 'not-a-guid'."
    response = await raw.post(f"/applications/{missing}/addPassword", json={}, headers=token)
    assert_graph_error(response, 404, "Request_ResourceNotFound")
    assert_graph_error(await raw.get("/users", headers=token), 400, "BadRequest")


async def test_client_request_id_is_echoed_in_errors(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    sent = "0ddba11-0000-4000-8000-000000000042"
    response = await raw.get(f"/applications/{uuid.uuid4()}", headers={"client-request-id": sent})
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["innerError"]["client-request-id"] == sent == response.headers["client-request-id"]
