"""Graph `addKey` and `removeKey` with proof of possession, through msgraph-sdk and plain httpx.

Pinned: a proof signed by a valid certificate of the app, with `aud` 00000002-…, `iss` the app's
object id and at most ten minutes between `nbf` and `exp`, adds a certificate (which then signs in) and
removes one; every failing check is 401 `Authentication_MissingOrMalformed` and changes nothing; the
app rolls its own keys without permissions, OwnedBy needs ownership, Read.All is refused; malformed
key credentials are 400.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from msgraph.generated.applications.item.add_key.add_key_post_request_body import AddKeyPostRequestBody
from msgraph.generated.applications.item.remove_key.remove_key_post_request_body import RemoveKeyPostRequestBody
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.service_principals.item.add_key.add_key_post_request_body import (
    AddKeyPostRequestBody as SpAddKeyPostRequestBody,
)

from localcloud.cloud import LocalCloud
from localcloud.tests.test_certificate_sign_in import (
    OwnedCertificate,
    assertion_claims,
    make_certificate,
    post_assertion,
    sign,
)
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
    token_for,
    trust,
)

GRAPH_AAD_AUDIENCE = "00000002-0000-0000-c000-000000000000"


@pytest.fixture
async def raw(cloud: LocalCloud) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cloud.graph_url, verify=trust(cloud)) as client:
        yield client


def proof(certificate: OwnedCertificate, object_id: str, *, lifetime: float = 600, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"aud": GRAPH_AAD_AUDIENCE, "iss": object_id, "nbf": now, "exp": now + lifetime}
    claims.update(overrides)
    return sign(certificate, claims)


def add_key_body(new: OwnedCertificate, proof_jwt: str, **key: Any) -> dict[str, Any]:
    credential = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(new.der).decode(), **key}
    return {"keyCredential": credential, "passwordCredential": None, "proof": proof_jwt}


def _owned_app(cloud: LocalCloud, name: str, owner: Identity) -> tuple[dict[str, Any], OwnedCertificate, str]:
    app = make_app(cloud, name)
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": owner.object_id})
    current = make_certificate(f"{name}-current")
    return app, current, cloud.add_key_credential(app["id"], current.der)


async def test_add_key_and_remove_key_roll_a_certificate(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    rotator = make_identity(cloud, RW_OWNED)
    app, current, current_key_id = _owned_app(cloud, "svc-roll", rotator)
    new = make_certificate("svc-roll-next")
    async with graph_client(cloud, rotator) as client:
        items = client.applications.by_application_id(app["id"])
        added = await items.add_key.post(
            AddKeyPostRequestBody(
                key_credential=KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=new.der),
                proof=proof(current, app["id"]),
            )
        )
        assert added is not None and added.key_id is not None
        assert added.type == "AsymmetricX509Cert" and added.usage == "Verify" and added.key is None
        assert added.display_name == "CN=svc-roll-next"
        listed = await items.get()
        assert listed is not None and {str(k.key_id) for k in listed.key_credentials or []} == {
            current_key_id,
            str(added.key_id),
        }
        # The new certificate signs in (this cloud propagates at once by default)...
        signed_in = await post_assertion(cloud, app["appId"], sign(new, assertion_claims(cloud, app["appId"])))
        assert signed_in.status_code == 200
        # ...and proves possession for removing the old one.
        await items.remove_key.post(
            RemoveKeyPostRequestBody(key_id=uuid.UUID(current_key_id), proof=proof(new, app["id"]))
        )
    assert [k.key_id for k in cloud.key_credentials(app["id"])] == [str(added.key_id)]
    old = await post_assertion(cloud, app["appId"], sign(current, assertion_claims(cloud, app["appId"])))
    assert old.json()["error_codes"] == [700027]

    token = bearer(await token_for(cloud, rotator))
    again = await raw.post(
        f"/applications/{app['id']}/removeKey",
        json={"keyId": current_key_id, "proof": proof(new, app["id"])},
        headers=token,
    )
    assert_graph_error(again, 400, "Request_BadRequest")
    by_app_id = await raw.post(
        f"/applications(appId='{app['appId']}')/addKey",
        json=add_key_body(make_certificate(), proof(new, app["id"])),
        headers=token,
    )
    assert by_app_id.status_code == 200, by_app_id.text
    body = by_app_id.json()
    assert body["@odata.context"] == f"{METADATA}#microsoft.graph.keyCredential" and body["key"] is None
    assert set(body) == {
        "@odata.context",
        "customKeyIdentifier",
        "displayName",
        "endDateTime",
        "key",
        "keyId",
        "startDateTime",
        "type",
        "usage",
    }


async def test_every_failing_proof_check_is_refused_and_changes_nothing(
    cloud: LocalCloud, raw: httpx.AsyncClient
) -> None:
    writer = make_identity(cloud, RW_ALL)
    app = make_app(cloud, "svc-proofs")
    current = make_certificate("svc-proofs")
    cloud.add_key_credential(app["id"], current.der)
    stranger = make_certificate("stranger")
    expired = make_certificate("expired", start=datetime.now(UTC) - timedelta(days=30), days=1)
    cloud.add_key_credential(app["id"], expired.der)
    now = int(time.time())
    token = bearer(await token_for(cloud, writer))
    proofs = {
        "signed by a certificate the app does not have": proof(stranger, app["id"]),
        "names the app's certificate, signed by another key": sign(
            current, {"aud": GRAPH_AAD_AUDIENCE, "iss": app["id"], "nbf": now, "exp": now + 600}, signer=stranger.key
        ),
        "signed by the app's expired certificate": proof(expired, app["id"]),
        "wrong audience": proof(current, app["id"], aud="https://graph.microsoft.com"),
        "issuer is the appId, not the object id": proof(current, app["id"], iss=app["appId"]),
        "longer than ten minutes": proof(current, app["id"], lifetime=601),
        "expired": proof(current, app["id"], nbf=now - 1200, exp=now - 600),
        "not yet valid": proof(current, app["id"], nbf=now + 3600, exp=now + 3900),
        "no nbf": sign(current, {"aud": GRAPH_AAD_AUDIENCE, "iss": app["id"], "exp": now + 600}),
        "not a JWT": "not-a-jwt",
    }
    for reason, candidate in proofs.items():
        response = await raw.post(
            f"/applications/{app['id']}/addKey", json=add_key_body(make_certificate(), candidate), headers=token
        )
        error = assert_graph_error(response, 401, "Authentication_MissingOrMalformed")
        assert error["message"] == "Access Token missing or malformed.", reason
        removed = await raw.post(
            f"/applications/{app['id']}/removeKey",
            json={"keyId": cloud.key_credentials(app["id"])[0].key_id, "proof": candidate},
            headers=token,
        )
        assert_graph_error(removed, 401, "Authentication_MissingOrMalformed")
    assert len(cloud.key_credentials(app["id"])) == 2
    # No proof reaches the admin state or the request log (a proof is a bearer credential for ten minutes).
    logged = str(cloud.admin("GET", "/state")) + str(cloud.admin("GET", "/requests"))
    assert not any(candidate in logged for candidate in proofs.values() if candidate != "not-a-jwt")

    # An app without a certificate cannot use the action at all (the reference says so).
    bare = make_app(cloud, "svc-proofs-bare")
    response = await raw.post(
        f"/applications/{bare['id']}/addKey", json=add_key_body(current, proof(current, bare["id"])), headers=token
    )
    assert_graph_error(response, 401, "Authentication_MissingOrMalformed")

    async with graph_client(cloud, writer) as client:
        with pytest.raises(ODataError) as refused:
            await client.applications.by_application_id(app["id"]).add_key.post(
                AddKeyPostRequestBody(
                    key_credential=KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=stranger.der),
                    proof=proofs["wrong audience"],
                )
            )
    assert refused.value.response_status_code == 401
    assert refused.value.error is not None and refused.value.error.code == "Authentication_MissingOrMalformed"


async def test_who_may_roll_keys(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    outsider = make_identity(cloud, RW_OWNED)
    reader = make_identity(cloud, READ_ALL)
    owner = make_identity(cloud, RW_OWNED)
    app, current, _ = _owned_app(cloud, "svc-who", owner)
    for caller in (outsider, reader):
        response = await raw.post(
            f"/applications/{app['id']}/addKey",
            json=add_key_body(make_certificate(), proof(current, app["id"])),
            headers=bearer(await token_for(cloud, caller)),
        )
        assert_graph_error(response, 403, "Authorization_RequestDenied")
    assert len(cloud.key_credentials(app["id"])) == 1

    # "An application does not need any specific permission to roll its own keys."
    itself = make_identity(cloud)
    own = next(
        a for t in cloud.admin("GET", "/state")["tenants"] for a in t["applications"] if a["appId"] == itself.app_id
    )
    own_certificate = make_certificate("itself")
    cloud.add_key_credential(own["id"], own_certificate.der)
    response = await raw.post(
        f"/applications/{own['id']}/addKey",
        json=add_key_body(make_certificate(), proof(own_certificate, own["id"])),
        headers=bearer(await token_for(cloud, itself)),
    )
    assert response.status_code == 200, response.text


async def test_malformed_key_credentials_are_400(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    writer = make_identity(cloud, RW_ALL)
    app = make_app(cloud, "svc-bad-keys")
    current = make_certificate()
    cloud.add_key_credential(app["id"], current.der)
    token = bearer(await token_for(cloud, writer))
    good = proof(current, app["id"])
    new = make_certificate()
    gone = make_certificate("gone", start=datetime.now(UTC) - timedelta(days=30), days=1)
    for body in (
        add_key_body(new, good, type="Symmetric"),
        add_key_body(new, good, usage="Encrypt"),
        add_key_body(new, good, usage="Sign"),
        add_key_body(new, good, key=base64.b64encode(b"not a certificate").decode()),
        {"keyCredential": None, "proof": good},
        {**add_key_body(new, good), "proof": None},
        add_key_body(gone, good),
    ):
        response = await raw.post(f"/applications/{app['id']}/addKey", json=body, headers=token)
        assert_graph_error(response, 400, "Request_BadRequest")
    assert len(cloud.key_credentials(app["id"])) == 1


async def test_service_principal_keys_roll_with_the_service_principals_own_proof(
    cloud: LocalCloud, raw: httpx.AsyncClient
) -> None:
    rotator = make_identity(cloud, RW_OWNED)
    app = make_app(cloud, "svc-sp-keys")
    sp_id = next(
        a["servicePrincipalId"]
        for t in cloud.admin("GET", "/state")["tenants"]
        for a in t["applications"]
        if a["id"] == app["id"]
    )
    current = make_certificate("sp-current")
    cloud.add_key_credential(app["id"], current.der, service_principal=True)
    # Owning the app registration is not owning its service principal.
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": rotator.object_id})
    token = bearer(await token_for(cloud, rotator))
    denied = await raw.post(
        f"/servicePrincipals/{sp_id}/addKey",
        json=add_key_body(make_certificate(), proof(current, sp_id)),
        headers=token,
    )
    assert_graph_error(denied, 403, "Authorization_RequestDenied")
    cloud.add_service_principal_owner(sp_id, rotator.object_id)
    # The proof's issuer is the service principal's id, not the application's.
    wrong_issuer = await raw.post(
        f"/servicePrincipals/{sp_id}/addKey",
        json=add_key_body(make_certificate(), proof(current, app["id"])),
        headers=token,
    )
    assert_graph_error(wrong_issuer, 401, "Authentication_MissingOrMalformed")

    new = make_certificate("sp-next")
    async with graph_client(cloud, rotator) as client:
        added = await client.service_principals.by_service_principal_id(sp_id).add_key.post(
            SpAddKeyPostRequestBody(
                key_credential=KeyCredential(type="AsymmetricX509Cert", usage="Verify", key=new.der),
                proof=proof(current, sp_id),
            )
        )
        assert added is not None and added.key_id is not None
        sp = await client.service_principals.by_service_principal_id(sp_id).get()
    assert sp is not None and len(sp.key_credentials or []) == 2
    assert cloud.key_credentials(app["id"]) == []  # the app registration's own list is apart

    signed_in = await post_assertion(cloud, app["appId"], sign(new, assertion_claims(cloud, app["appId"])))
    assert signed_in.status_code == 200, signed_in.text
    [record] = cloud.sign_ins(app["appId"])
    assert (record.key_id, record.key_type, record.credential_origin) == (
        str(added.key_id),
        "certificate",
        "servicePrincipal",
    )
    removed = await raw.post(
        f"/servicePrincipals/{sp_id}/removeKey",
        json={"keyId": str(added.key_id), "proof": proof(current, sp_id)},
        headers=token,
    )
    assert removed.status_code == 204
