"""Service principals and owners in the local cloud's Graph, through msgraph-sdk and plain httpx.

Pinned: `GET /servicePrincipals` by id, by `(appId='…')`, with `$filter` (`appId eq`,
`servicePrincipalNames/any(…)`, how the Azure CLI resolves `--id`) and exact `$select`; managed
identities as service principals without an app registration; the owners relation of apps and
service principals (list, `$ref` add and remove) with the Graph permissions reference's rules.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.service_principals.service_principals_request_builder import ServicePrincipalsRequestBuilder

from localcloud.cloud import LocalCloud, ManagedIdentity
from localcloud.errors import GRAPH_JSON
from localcloud.tests.test_graph import (
    METADATA,
    READ_ALL,
    RW_ALL,
    RW_OWNED,
    Identity,
    assert_graph_error,
    bearer,
    graph_client,
    make_app,
    make_identity,
    make_tenant,
    token_for,
    trust,
)


@pytest.fixture
async def raw(cloud: LocalCloud) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cloud.graph_url, verify=trust(cloud)) as client:
        yield client


def _sp_id(cloud: LocalCloud, app: dict[str, Any]) -> str:
    apps = [a for t in cloud.admin("GET", "/state")["tenants"] for a in t["applications"] if a["id"] == app["id"]]
    return str(apps[0]["servicePrincipalId"])


def _ref(cloud: LocalCloud, object_id: str) -> dict[str, str]:
    # The Azure CLI writes its own Graph endpoint into the reference; Graph's clients write theirs.
    return {"@odata.id": f"{cloud.graph_url}/directoryObjects/{object_id}"}


# --- service principals ----------------------------------------------------------------------------
async def test_service_principal_by_id_by_app_id_and_by_filter(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-sp")
    sp_id = _sp_id(cloud, app)
    reader = make_identity(cloud, READ_ALL)
    token = bearer(await token_for(cloud, reader))

    by_id = await raw.get(f"/servicePrincipals/{sp_id}", headers=token)
    assert by_id.status_code == 200 and by_id.headers["content-type"] == GRAPH_JSON
    body = by_id.json()
    assert body["@odata.context"] == f"{METADATA}#servicePrincipals/$entity"
    assert (body["id"], body["appId"], body["displayName"]) == (sp_id, app["appId"], "svc-sp")
    assert body["servicePrincipalType"] == "Application" and body["accountEnabled"] is True
    assert body["servicePrincipalNames"] == [app["appId"]] and body["appOwnerOrganizationId"] == cloud.tenant_id
    assert body["passwordCredentials"] == [] and body["keyCredentials"] == []

    by_app_id = await raw.get(f"/servicePrincipals(appId='{app['appId']}')", headers=token)
    assert by_app_id.status_code == 200 and by_app_id.json()["id"] == sp_id
    for filter_ in (f"appId eq '{app['appId']}'", f"servicePrincipalNames/any(c:c eq '{app['appId']}')"):
        listed = await raw.get("/servicePrincipals", params={"$filter": filter_}, headers=token)
        assert listed.status_code == 200, listed.text
        assert [sp["id"] for sp in listed.json()["value"]] == [sp_id], filter_

    async with graph_client(cloud, reader) as client:
        got = await client.service_principals.by_service_principal_id(sp_id).get()
        assert got is not None and got.app_id == app["appId"] and got.service_principal_type == "Application"
        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=f"appId eq '{app['appId']}'", select=["id", "appId"]
        )
        page = await client.service_principals.get(RequestConfiguration(query_parameters=query))
        assert page is not None and [(sp.id, sp.display_name) for sp in page.value or []] == [(sp_id, None)]
        alternate = await client.service_principals_with_app_id(app["appId"]).get()
        assert alternate is not None and alternate.id == sp_id


async def test_service_principal_select_is_exact_and_unknown_properties_are_refused(
    cloud: LocalCloud, raw: httpx.AsyncClient
) -> None:
    app = make_app(cloud, "svc-sp-select")
    token = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))
    response = await raw.get(f"/servicePrincipals/{_sp_id(cloud, app)}?$select=appId,tags,notes", headers=token)
    assert response.json() == {
        "@odata.context": f"{METADATA}#servicePrincipals(appId,tags,notes)/$entity",
        "appId": app["appId"],
        "tags": [],
        "notes": None,
    }
    bad = await raw.get(f"/servicePrincipals/{_sp_id(cloud, app)}?$select=colour", headers=token)
    error = assert_graph_error(bad, 400, "Request_BadRequest")
    assert error["message"] == "Could not find a property named 'colour' on type 'microsoft.graph.servicePrincipal'."
    unsupported = await raw.get("/servicePrincipals", params={"$filter": "accountEnabled eq 'true'"}, headers=token)
    assert_graph_error(unsupported, 400, "Request_UnsupportedQuery")


async def test_lookup_errors_for_service_principals(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    token = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))
    missing = str(uuid.uuid4())
    assert_graph_error(await raw.get(f"/servicePrincipals/{missing}", headers=token), 404, "Request_ResourceNotFound")
    assert_graph_error(
        await raw.get(f"/servicePrincipals(appId='{missing}')", headers=token), 404, "Request_ResourceNotFound"
    )
    assert_graph_error(await raw.get("/servicePrincipals/not-a-guid", headers=token), 400, "Request_BadRequest")
    # A service principal of another tenant does not exist here.
    stranger = make_app(cloud, "elsewhere", tenantId=make_tenant(cloud))
    assert_graph_error(
        await raw.get(f"/servicePrincipals/{_sp_id(cloud, stranger)}", headers=token), 404, "Request_ResourceNotFound"
    )
    # The resource exists, the method does not.
    response = await raw.delete(f"/servicePrincipals/{missing}", headers=token)
    assert_graph_error(response, 405, "Request_BadRequest")


async def test_a_managed_identity_is_a_service_principal_without_an_app_registration(
    cloud: LocalCloud, raw: httpx.AsyncClient, workload: ManagedIdentity
) -> None:
    token = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))
    sp = await raw.get(f"/servicePrincipals/{workload.sp_object_id}", headers=token)
    assert sp.status_code == 200
    body = sp.json()
    assert body["servicePrincipalType"] == "ManagedIdentity" and body["appId"] == workload.app_id
    assert body["alternativeNames"][0] == "isExplicit=False"  # system-assigned
    listed = await raw.get("/applications", params={"$filter": f"appId eq '{workload.app_id}'"}, headers=token)
    assert listed.json()["value"] == []
    missing = await raw.get(f"/applications(appId='{workload.app_id}')", headers=token)
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


async def test_who_may_read_service_principals(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-sp-read")
    sp_id = _sp_id(cloud, app)
    for roles, status in (((READ_ALL,), 200), ((RW_ALL,), 200), ((RW_OWNED,), 200), ((), 403)):
        token = bearer(await token_for(cloud, make_identity(cloud, *roles)))
        response = await raw.get(f"/servicePrincipals/{sp_id}", headers=token)
        assert response.status_code == status, roles
        listed = await raw.get("/servicePrincipals", params={"$top": "1"}, headers=token)
        assert listed.status_code == status, roles


async def test_service_principals_page_with_next_links(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    tenant = make_tenant(cloud)
    reader = make_identity(cloud, READ_ALL, tenant_id=tenant)
    for i in range(4):
        make_app(cloud, f"paged-{i}", tenantId=tenant)
    token = bearer(await token_for(cloud, reader))
    seen: list[str] = []
    response = await raw.get("/servicePrincipals", params={"$top": "2", "$select": "id"}, headers=token)
    while True:
        body = response.json()
        seen.extend(item["id"] for item in body["value"])
        if "@odata.nextLink" not in body:
            break
        response = await raw.get(body["@odata.nextLink"], headers=token)
    assert len(seen) == len(set(seen)) == 5  # four apps and the reader itself


# --- owners ----------------------------------------------------------------------------------------
async def test_owners_of_an_app_list_add_and_remove(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-owned")
    admin = make_identity(cloud, RW_ALL)
    owner = make_identity(cloud, RW_OWNED)
    token = bearer(await token_for(cloud, admin))

    assert (await raw.get(f"/applications/{app['id']}/owners", headers=token)).json() == {
        "@odata.context": f"{METADATA}#directoryObjects",
        "value": [],
    }
    added = await raw.post(f"/applications/{app['id']}/owners/$ref", json=_ref(cloud, owner.object_id), headers=token)
    assert added.status_code == 204 and added.content == b""
    listed = (await raw.get(f"/applications(appId='{app['appId']}')/owners", headers=token)).json()["value"]
    assert [(o["@odata.type"], o["id"], o["appId"]) for o in listed] == [
        ("#microsoft.graph.servicePrincipal", owner.object_id, owner.app_id)
    ]
    again = await raw.post(f"/applications/{app['id']}/owners/$ref", json=_ref(cloud, owner.object_id), headers=token)
    error = assert_graph_error(again, 400, "Request_BadRequest")
    assert "already exist for the following modified properties: 'owners'" in error["message"]
    removed = await raw.delete(f"/applications/{app['id']}/owners/{owner.object_id}/$ref", headers=token)
    assert removed.status_code == 204
    gone = await raw.delete(f"/applications/{app['id']}/owners/{owner.object_id}/$ref", headers=token)
    assert_graph_error(gone, 404, "Request_ResourceNotFound")


async def test_owners_through_msgraph_sdk(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-owned-sdk")
    admin = make_identity(cloud, RW_ALL)
    owner = make_identity(cloud, RW_OWNED)
    async with graph_client(cloud, admin) as client:
        await client.applications.by_application_id(app["id"]).owners.ref.post(
            ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{owner.object_id}")
        )
        page = await client.applications.by_application_id(app["id"]).owners.get()
        assert page is not None and [o.id for o in page.value or []] == [owner.object_id]
        await (
            client.applications.by_application_id(app["id"]).owners.by_directory_object_id(owner.object_id).ref.delete()
        )
        page = await client.applications.by_application_id(app["id"]).owners.get()
        assert page is not None and page.value == []


async def test_owner_permissions_follow_the_permissions_reference(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    """Adding an owner needs Application.ReadWrite.All ("Application.ReadWrite.OwnedBy isn't sufficient
    to add another owner"); removing one needs OwnedBy on an app the caller owns, or ReadWrite.All;
    listing them needs only read access."""
    app = make_app(cloud, "svc-owner-rules")
    owner = make_identity(cloud, RW_OWNED)
    other = make_identity(cloud, RW_OWNED)
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": owner.object_id})
    owner_token = bearer(await token_for(cloud, owner))
    other_token = bearer(await token_for(cloud, other))

    add = await raw.post(
        f"/applications/{app['id']}/owners/$ref", json=_ref(cloud, other.object_id), headers=owner_token
    )
    assert_graph_error(add, 403, "Authorization_RequestDenied")
    assert (await raw.get(f"/applications/{app['id']}/owners", headers=other_token)).status_code == 200
    denied = await raw.delete(f"/applications/{app['id']}/owners/{owner.object_id}/$ref", headers=other_token)
    assert_graph_error(denied, 403, "Authorization_RequestDenied")
    reader = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))
    denied = await raw.delete(f"/applications/{app['id']}/owners/{owner.object_id}/$ref", headers=reader)
    assert_graph_error(denied, 403, "Authorization_RequestDenied")
    # An owner holding OwnedBy may remove an owner, itself included.
    removed = await raw.delete(f"/applications/{app['id']}/owners/{owner.object_id}/$ref", headers=owner_token)
    assert removed.status_code == 204
    nobody = bearer(await token_for(cloud, make_identity(cloud)))
    assert_graph_error(
        await raw.get(f"/applications/{app['id']}/owners", headers=nobody), 403, "Authorization_RequestDenied"
    )


async def test_owner_references_are_checked(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-owner-refs")
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))
    path = f"/applications/{app['id']}/owners/$ref"
    missing = await raw.post(path, json=_ref(cloud, str(uuid.uuid4())), headers=token)
    assert_graph_error(missing, 404, "Request_ResourceNotFound")
    for body in ({}, {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/not-a-guid"}, {"@odata.id": 5}):
        assert_graph_error(await raw.post(path, json=body, headers=token), 400, "Request_BadRequest")
    foreign: Identity = make_identity(cloud, tenant_id=make_tenant(cloud))
    assert_graph_error(
        await raw.post(path, json=_ref(cloud, foreign.object_id), headers=token), 404, "Request_ResourceNotFound"
    )


async def test_owners_of_a_service_principal_are_its_own(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-sp-owners")
    sp_id = _sp_id(cloud, app)
    owner = make_identity(cloud, RW_OWNED)
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))
    added = await raw.post(f"/servicePrincipals/{sp_id}/owners/$ref", json=_ref(cloud, owner.object_id), headers=token)
    assert added.status_code == 204
    sp_owners = (await raw.get(f"/servicePrincipals(appId='{app['appId']}')/owners", headers=token)).json()["value"]
    assert [o["id"] for o in sp_owners] == [owner.object_id]
    # The app registration's owners are another relation.
    assert (await raw.get(f"/applications/{app['id']}/owners", headers=token)).json()["value"] == []
    assert (
        await raw.delete(f"/servicePrincipals/{sp_id}/owners/{owner.object_id}/$ref", headers=token)
    ).status_code == 204


async def test_an_owner_the_cloud_does_not_model_is_listed_by_id(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    """An owner added by the admin API that is no service principal here (a user, say) is listed the
    way Graph lists objects the caller may not read: type and id."""
    app = make_app(cloud, "svc-user-owner")
    user_id = str(uuid.uuid4())
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": user_id})
    token = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))
    listed = (await raw.get(f"/applications/{app['id']}/owners", headers=token)).json()["value"]
    assert listed == [{"@odata.type": "#microsoft.graph.directoryObject", "id": user_id}]


async def test_owner_writes_surface_in_msgraph_errors(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-owner-sdk-denied")
    owner = make_identity(cloud, RW_OWNED)
    async with graph_client(cloud, owner) as client:
        with pytest.raises(ODataError) as denied:
            await client.applications.by_application_id(app["id"]).owners.ref.post(
                ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{owner.object_id}")
            )
    assert denied.value.response_status_code == 403
