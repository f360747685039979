"""Passwords and tags on service principals, through msgraph-sdk, and signing in with an SP password.

Pinned: `servicePrincipals/{id}/addPassword` and `/removePassword` (and the `(appId='…')` key) answer
like the application's, but the password is listed on the service principal only; OwnedBy needs
ownership of the *service principal*; `PATCH /servicePrincipals/{id}` writes `tags`; the token endpoint
accepts an SP password (propagation per replica included) and the sign-in log and the activity report
say `servicePrincipal`; the admin seeding and the facade.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.service_principals.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.service_principals.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)

from localcloud.cloud import LocalCloud
from localcloud.tests.test_graph import (
    GRAPH_SCOPE,
    METADATA,
    RW_ALL,
    RW_OWNED,
    assert_graph_error,
    bearer,
    graph_client,
    make_app,
    make_identity,
    token_for,
    trust,
)
from localcloud.tests.test_graph_directory import _sp_id, raw  # noqa: F401 (fixture)

AUDIT = "AuditLog.Read.All"


async def _sign_in(cloud: LocalCloud, app: dict[str, Any], secret: str) -> None:
    async with ClientSecretCredential(cloud.tenant_id, app["appId"], secret, authority=cloud.authority) as credential:
        await credential.get_token(GRAPH_SCOPE)


async def test_add_password_on_a_service_principal_lists_it_there_only(
    cloud: LocalCloud,
    raw: httpx.AsyncClient,  # noqa: F811
) -> None:
    app = make_app(cloud, "svc-sp-password")
    sp_id = _sp_id(cloud, app)
    writer = make_identity(cloud, RW_ALL)
    async with graph_client(cloud, writer) as client:
        body = AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="sp secret"))
        created = await client.service_principals.by_service_principal_id(sp_id).add_password.post(body)
        assert created is not None and created.secret_text is not None
        assert len(created.secret_text) == 40 and created.hint == created.secret_text[:3]
        assert created.display_name == "sp secret" and created.custom_key_identifier is None
        sp = await client.service_principals.by_service_principal_id(sp_id).get()
        registration = await client.applications.by_application_id(app["id"]).get()
    assert sp is not None and sp.password_credentials is not None
    [listed] = sp.password_credentials
    assert listed.key_id == created.key_id and listed.secret_text is None and listed.hint == created.hint
    assert registration is not None and registration.password_credentials == []

    token = bearer(await token_for(cloud, writer))
    selected = await raw.get(f"/servicePrincipals/{sp_id}?$select=passwordCredentials", headers=token)
    assert selected.status_code == 200
    assert selected.json()["@odata.context"] == f"{METADATA}#servicePrincipals(passwordCredentials)/$entity"
    assert [p["keyId"] for p in selected.json()["passwordCredentials"]] == [str(created.key_id)]
    # The alternate key, which the Graph reference lists for addPassword on service principals too.
    by_app_id = await raw.post(
        f"/servicePrincipals(appId='{app['appId']}')/addPassword", json={"passwordCredential": {}}, headers=token
    )
    assert by_app_id.status_code == 200 and by_app_id.json()["secretText"]
    assert by_app_id.json()["@odata.context"] == f"{METADATA}#microsoft.graph.passwordCredential"
    assert len(cloud.sp_passwords(app["appId"])) == 2 and cloud.passwords(app["appId"]) == []
    # The admin state lists SP passwords by keyId and hint; no secret value ever appears there.
    state = str(cloud.admin("GET", "/state"))
    assert str(created.key_id) in state
    assert created.secret_text not in state and by_app_id.json()["secretText"] not in state


async def test_owned_by_needs_ownership_of_the_service_principal(
    cloud: LocalCloud,
    raw: httpx.AsyncClient,  # noqa: F811
) -> None:
    app = make_app(cloud, "svc-sp-owned")
    sp_id = _sp_id(cloud, app)
    rotator = make_identity(cloud, RW_OWNED)
    # Owning the app registration is another relation: it does not open the service principal.
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": rotator.object_id})
    token = bearer(await token_for(cloud, rotator))
    for method, path, body in (
        ("POST", f"/servicePrincipals/{sp_id}/addPassword", {}),
        ("POST", f"/servicePrincipals/{sp_id}/removePassword", {"keyId": str(uuid.uuid4())}),
        ("PATCH", f"/servicePrincipals/{sp_id}", {"tags": ["x"]}),
    ):
        denied = await raw.request(method, path, json=body, headers=token)
        assert_graph_error(denied, 403, "Authorization_RequestDenied")
    async with graph_client(cloud, rotator) as client:
        with pytest.raises(ODataError) as refused:
            await client.service_principals.by_service_principal_id(sp_id).add_password.post(
                AddPasswordPostRequestBody()
            )
        assert refused.value.response_status_code == 403
        cloud.add_service_principal_owner(app["id"], rotator.object_id)
        created = await client.service_principals.by_service_principal_id(sp_id).add_password.post(
            AddPasswordPostRequestBody()
        )
        assert created is not None and created.key_id is not None
        await client.service_principals.by_service_principal_id(sp_id).remove_password.post(
            RemovePasswordPostRequestBody(key_id=created.key_id)
        )
    assert cloud.sp_passwords(sp_id) == []
    gone = await raw.post(
        f"/servicePrincipals/{sp_id}/removePassword", json={"keyId": str(created.key_id)}, headers=token
    )
    assert_graph_error(gone, 400, "Request_BadRequest")


async def test_service_principal_tags_are_written_by_patch(
    cloud: LocalCloud,
    raw: httpx.AsyncClient,  # noqa: F811
) -> None:
    app = make_app(cloud, "svc-sp-tags")
    sp_id = _sp_id(cloud, app)
    admin = make_identity(cloud, RW_ALL)
    async with graph_client(cloud, admin) as client:
        await client.service_principals.by_service_principal_id(sp_id).patch(
            ServicePrincipal(tags=["rotator:binding=kv-local/orders"])
        )
        got = await client.service_principals.by_service_principal_id(sp_id).get()
    assert got is not None and got.tags == ["rotator:binding=kv-local/orders"]
    assert cloud.service_principal_tags(app["appId"]) == ["rotator:binding=kv-local/orders"]
    assert cloud.application_tags(app["appId"]) == []  # the app registration's own tags are apart

    token = bearer(await token_for(cloud, admin))
    bad = await raw.patch(f"/servicePrincipals/{sp_id}", json={"displayName": "x"}, headers=token)
    assert_graph_error(bad, 400, "Request_BadRequest")
    not_list = await raw.patch(f"/servicePrincipals/{sp_id}", json={"tags": "x"}, headers=token)
    assert_graph_error(not_list, 400, "Request_BadRequest")
    assert cloud.set_service_principal_tags(sp_id, ["a", "b"]) == ["a", "b"]
    listed = await raw.get(f"/servicePrincipals/{sp_id}?$select=tags", headers=token)
    assert listed.json()["tags"] == ["a", "b"]


async def test_a_service_principal_reads_back_its_apps_tags_as_well(
    cloud: LocalCloud,
    raw: httpx.AsyncClient,  # noqa: F811
) -> None:
    """Graph: a service principal's `tags` are "the union of strings set here and on the associated
    application entity's tags property"; the service principal's own tags stay apart."""
    app = make_app(cloud, "svc-sp-union")
    sp_id = _sp_id(cloud, app)
    cloud.set_application_tags(app["appId"], ["team:orders", "shared"])
    cloud.set_service_principal_tags(sp_id, ["shared", "sp-only"])
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))

    got = await raw.get(f"/servicePrincipals/{sp_id}?$select=tags", headers=token)

    assert got.json()["tags"] == ["shared", "sp-only", "team:orders"]
    assert cloud.service_principal_tags(app["appId"]) == ["shared", "sp-only"]
    app_read = await raw.get(f"/applications/{app['id']}?$select=tags", headers=token)
    assert app_read.json()["tags"] == ["team:orders", "shared"]  # never the other way round


async def test_the_policy_and_dates_limit_sp_passwords_as_app_passwords(
    cloud: LocalCloud,
    raw: httpx.AsyncClient,  # noqa: F811
) -> None:
    app = make_app(cloud, "svc-sp-policy")
    cloud.admin("POST", "/policies", {"appId": app["appId"], "passwordMaxLifetime": "P90D"})
    token = bearer(await token_for(cloud, make_identity(cloud, RW_ALL)))
    sp_id = _sp_id(cloud, app)
    too_long = await raw.post(f"/servicePrincipals/{sp_id}/addPassword", json={}, headers=token)
    assert_graph_error(too_long, 400, "CredentialInvalidLifetimeAsPerAppPolicy")
    past = {"passwordCredential": {"endDateTime": "2020-01-01T00:00:00Z"}}
    ended = await raw.post(f"/servicePrincipals/{sp_id}/addPassword", json=past, headers=token)
    assert_graph_error(ended, 400, "Request_BadRequest")
    assert cloud.sp_passwords(sp_id) == []


async def test_sign_in_with_a_service_principal_password_is_logged_as_such(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-sp-sign-in")
    seeded = cloud.add_sp_password(app["id"], display_name="legacy sp secret")
    await _sign_in(cloud, app, seeded["secretText"])
    [record] = cloud.sign_ins(app["appId"])
    assert (record.key_id, record.key_type, record.credential_origin) == (
        seeded["keyId"],
        "clientSecret",
        "servicePrincipal",
    )

    cloud.admin("PUT", "/config", {"signInReportDelaySeconds": 0})
    reader = make_identity(cloud, AUDIT)
    async with httpx.AsyncClient(verify=trust(cloud)) as client:
        response = await client.get(
            f"{cloud.authority}/beta/reports/appCredentialSignInActivities",
            params={"$filter": f"appId eq '{app['appId']}'"},
            headers=bearer(await token_for(cloud, reader)),
        )
    assert response.status_code == 200, response.text
    [row] = response.json()["value"]
    assert row["credentialOrigin"] == "servicePrincipal" and row["keyType"] == "clientSecret"
    assert row["id"] == base64.b64encode(f"{seeded['keyId']}|servicePrincipal".encode()).decode()


async def test_a_new_sp_password_propagates_per_replica(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-sp-propagation")
    late = cloud.add_sp_password(app["id"], replica_delays_seconds=[3600, 3600, 3600])
    with pytest.raises(ClientAuthenticationError) as refused:
        await _sign_in(cloud, app, late["secretText"])
    assert "AADSTS7000215" in str(refused.value)
    ready = cloud.add_sp_password(app["id"], replica_delays_seconds=[0, 0, 0])
    await _sign_in(cloud, app, ready["secretText"])
    assert [r.key_id for r in cloud.sign_ins(app["appId"])] == [ready["keyId"]]


def test_admin_refuses_bad_seeding(cloud: LocalCloud) -> None:
    from localcloud.admin import AdminError

    with pytest.raises(AdminError) as missing:
        cloud.add_service_principal_owner(str(uuid.uuid4()), str(uuid.uuid4()))
    assert missing.value.status == 404
    app = make_app(cloud, "svc-sp-admin")
    with pytest.raises(AdminError) as bad_owner:
        cloud.add_service_principal_owner(app["id"], "not-a-guid")
    assert bad_owner.value.status == 400
    with pytest.raises(AdminError):
        cloud.admin("PUT", f"/service-principals/{app['id']}/tags", {"tags": [1]})


async def test_federated_identity_credentials_are_listed(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-federated")
    seeded = cloud.add_federated_credential(
        app["id"],
        "github-main",
        "https://token.actions.githubusercontent.com",
        "repo:contoso/orders:ref:refs/heads/main",
    )
    reader = make_identity(cloud, "Application.Read.All")
    async with graph_client(cloud, reader) as client:
        page = await client.applications.by_application_id(app["id"]).federated_identity_credentials.get()
    assert page is not None and page.value is not None
    [listed] = page.value
    assert (listed.id, listed.name, listed.issuer, listed.subject, listed.audiences) == (
        seeded["id"],
        "github-main",
        "https://token.actions.githubusercontent.com",
        "repo:contoso/orders:ref:refs/heads/main",
        ["api://AzureADTokenExchange"],
    )
    from localcloud.admin import AdminError

    with pytest.raises(AdminError) as duplicate:
        cloud.add_federated_credential(app["id"], "GitHub-Main", "https://issuer", "subject")
    assert duplicate.value.status == 409
