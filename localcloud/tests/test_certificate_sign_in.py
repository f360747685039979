"""Certificate credentials and client-assertion sign-in, through azure-identity's own credentials.

Pinned: a key credential holds the real certificate (thumbprint as `customKeyIdentifier`, dates from
the certificate, `key` null on reads); `CertificateCredential` (sync: MSAL, PS256 + `x5t#S256`; aio:
RS256 + `x5t` or PS256) and `ClientAssertionCredential` sign in unmodified; each refusal has Entra's
code (50027, 700021, 700023, 700024, 700027, 7000274, 1000502); a new certificate propagates per
replica; the sign-in log and the activity report name the certificate's keyId with keyType
`certificate`.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential as SyncCertificateCredential
from azure.identity.aio import CertificateCredential, ClientAssertionCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from localcloud.cloud import LocalCloud
from localcloud.tests.test_graph import GRAPH_SCOPE, READ_ALL, bearer, make_app, make_identity, token_for, trust

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ENTRA_ERROR_KEYS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}


@dataclass(frozen=True)
class OwnedCertificate:
    """A certificate and its private key, as the owner of an app keeps them."""

    key: rsa.RSAPrivateKey
    der: bytes

    @property
    def pem(self) -> bytes:
        """Private key and certificate in one PEM, what azure-identity's `certificate_data` takes."""
        key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        certificate = x509.load_der_x509_certificate(self.der).public_bytes(serialization.Encoding.PEM)
        return key + certificate

    @property
    def thumbprint(self) -> str:
        return hashlib.sha1(self.der).hexdigest().upper()  # noqa: S324 (what x5t names)

    def headers(self, kind: str = "x5t") -> dict[str, str]:
        digest = hashlib.sha1(self.der) if kind == "x5t" else hashlib.sha256(self.der)  # noqa: S324
        return {kind: base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")}


def make_certificate(name: str = "svc", *, start: datetime | None = None, days: float = 365) -> OwnedCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    begins = start or datetime.now(UTC) - timedelta(minutes=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begins)
        .not_valid_after(begins + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return OwnedCertificate(key, certificate.public_bytes(serialization.Encoding.DER))


def sign(
    certificate: OwnedCertificate,
    claims: dict[str, Any],
    *,
    algorithm: str = "RS256",
    header: str = "x5t",
    signer: rsa.RSAPrivateKey | None = None,
) -> str:
    """A JWT the way a client signs one: `header` names `certificate`, `signer` (default: its key) signs."""
    return jwt.encode(claims, signer or certificate.key, algorithm=algorithm, headers=certificate.headers(header))


def assertion_claims(cloud: LocalCloud, app_id: str, *, lifetime: float = 600, **overrides: Any) -> dict[str, Any]:
    now = time.time()
    claims: dict[str, Any] = {
        "aud": f"{cloud.authority}/{cloud.tenant_id}/oauth2/v2.0/token",
        "iss": app_id,
        "sub": app_id,
        "jti": str(uuid.uuid4()),
        "nbf": int(now),
        "exp": int(now + lifetime),
    }
    claims.update(overrides)
    return claims


async def post_assertion(cloud: LocalCloud, app_id: str, assertion: str, **extra: str) -> httpx.Response:
    async with httpx.AsyncClient(verify=trust(cloud)) as client:
        return await client.post(
            f"{cloud.authority}/{cloud.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": app_id,
                "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion,
                "grant_type": "client_credentials",
                "scope": GRAPH_SCOPE,
                **extra,
            },
        )


def assert_entra_error(response: httpx.Response, status: int, error: str, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENTRA_ERROR_KEYS
    assert body["error"] == error and body["error_codes"] == [code], body
    description: str = body["error_description"]
    assert description.startswith(f"AADSTS{code}: ") and "\r\nTrace ID: " in description
    return description


# --- key credentials --------------------------------------------------------------------------------
async def test_a_key_credential_is_the_certificate_as_graph_shows_it(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-cert-shape")
    certificate = make_certificate("CN-orders")
    key_id = cloud.add_key_credential(app["id"], certificate.der)
    reader = make_identity(cloud, READ_ALL)
    async with httpx.AsyncClient(base_url=cloud.graph_url, verify=trust(cloud)) as client:
        response = await client.get(
            f"/applications/{app['id']}?$select=keyCredentials", headers=bearer(await token_for(cloud, reader))
        )
    [listed] = response.json()["keyCredentials"]
    parsed = x509.load_der_x509_certificate(certificate.der)
    assert listed == {
        "customKeyIdentifier": certificate.thumbprint,
        "displayName": "CN=CN-orders",
        "endDateTime": parsed.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": None,
        "keyId": key_id,
        "startDateTime": parsed.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }
    [copy] = cloud.key_credentials(app["appId"])
    assert copy.certificate == certificate.der and copy.thumbprint == certificate.thumbprint
    # PEM is taken too; the admin route without a certificate still seeds one (of its own).
    pem = x509.load_der_x509_certificate(make_certificate().der).public_bytes(serialization.Encoding.PEM)
    assert cloud.add_key_credential(app["id"], pem, display_name="pem") != key_id
    seeded = cloud.admin("POST", f"/applications/{app['id']}/certificates", {"displayName": "CN=metadata"})
    assert seeded["customKeyIdentifier"] and seeded["displayName"] == "CN=metadata"
    assert len(cloud.key_credentials(app["id"])) == 3


# --- signing in with a certificate --------------------------------------------------------------------
def test_sync_certificate_credential_signs_in(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-cert-sync")
    certificate = make_certificate()
    key_id = cloud.add_key_credential(app["id"], certificate.der)
    credential = SyncCertificateCredential(
        cloud.tenant_id,
        app["appId"],
        certificate_data=certificate.pem,
        authority=cloud.authority,
        disable_instance_discovery=True,
    )
    assert credential.get_token(GRAPH_SCOPE).token
    [record] = cloud.sign_ins(app["appId"])
    assert (record.key_id, record.key_type, record.credential_origin) == (key_id, "certificate", "application")


async def test_aio_certificate_and_assertion_credentials_sign_in(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-cert-aio")
    certificate = make_certificate()
    key_id = cloud.add_key_credential(app["id"], certificate.der)
    async with CertificateCredential(
        cloud.tenant_id, app["appId"], certificate_data=certificate.pem, authority=cloud.authority
    ) as credential:
        assert (await credential.get_token(GRAPH_SCOPE)).token

    def make_assertion() -> str:
        return sign(certificate, assertion_claims(cloud, app["appId"]), algorithm="PS256", header="x5t#S256")

    async with ClientAssertionCredential(
        cloud.tenant_id, app["appId"], make_assertion, authority=cloud.authority
    ) as assertion_credential:
        assert (await assertion_credential.get_token(GRAPH_SCOPE)).token
    assert [(r.key_id, r.key_type) for r in cloud.sign_ins(app["appId"])] == [(key_id, "certificate")] * 2

    cloud.admin("PUT", "/config", {"signInReportDelaySeconds": 0})
    auditor = make_identity(cloud, "AuditLog.Read.All")
    async with httpx.AsyncClient(verify=trust(cloud)) as client:
        report = await client.get(
            f"{cloud.authority}/beta/reports/appCredentialSignInActivities",
            params={"$filter": f"keyId eq '{key_id}'"},
            headers=bearer(await token_for(cloud, auditor)),
        )
    [row] = report.json()["value"]
    assert (row["keyType"], row["keyUsage"], row["credentialOrigin"]) == ("certificate", "verify", "application")


async def test_v1_token_endpoint_audience_is_accepted(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-cert-v1")
    certificate = make_certificate()
    cloud.add_key_credential(app["id"], certificate.der)
    v1 = assertion_claims(cloud, app["appId"], aud=f"https://login.microsoftonline.com/{cloud.tenant_id}/oauth2/token")
    assert (await post_assertion(cloud, app["appId"], sign(certificate, v1))).status_code == 200


async def test_each_refusal_has_entras_code(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-cert-refusals")
    app_id = app["appId"]
    certificate = make_certificate()
    cloud.add_key_credential(app["id"], certificate.der)
    stranger = make_certificate("not-on-the-app")
    claims = assertion_claims(cloud, app_id)

    not_on_app = await post_assertion(cloud, app_id, sign(stranger, claims))
    text = assert_entra_error(not_on_app, 401, "invalid_client", 700027)
    assert f"Thumbprint of key used by client: '{stranger.thumbprint}'" in text and app_id in text
    forged = await post_assertion(cloud, app_id, sign(certificate, claims, signer=stranger.key))
    text = assert_entra_error(forged, 401, "invalid_client", 7000274)
    assert "The provided signature value did not match the expected signature value." in text
    expired = assertion_claims(cloud, app_id, nbf=int(time.time()) - 3600, exp=int(time.time()) - 1800)
    text = assert_entra_error(
        await post_assertion(cloud, app_id, sign(certificate, expired)), 401, "invalid_client", 700024
    )
    assert "Client assertion is not within its valid time range. Current time: " in text
    early = assertion_claims(cloud, app_id, nbf=int(time.time()) + 3600, exp=int(time.time()) + 4000)
    assert_entra_error(await post_assertion(cloud, app_id, sign(certificate, early)), 401, "invalid_client", 700024)
    wrong_aud = assertion_claims(cloud, app_id, aud="https://graph.microsoft.com")
    assert_entra_error(await post_assertion(cloud, app_id, sign(certificate, wrong_aud)), 401, "invalid_client", 700023)
    wrong_iss = assertion_claims(cloud, app_id, iss=app["id"], sub=app["id"])
    assert_entra_error(await post_assertion(cloud, app_id, sign(certificate, wrong_iss)), 401, "invalid_client", 700021)
    assert_entra_error(await post_assertion(cloud, app_id, "not-a-jwt"), 400, "invalid_request", 50027)
    wrong_type = await post_assertion(cloud, app_id, sign(certificate, claims), client_assertion_type="jwt")
    assert_entra_error(wrong_type, 400, "invalid_request", 50027)
    assert cloud.sign_ins(app_id) == []  # refusals are not sign-ins

    # A certificate past its end on the app: Entra knows the key and refuses it for its dates.
    old = make_certificate("old", start=datetime.now(UTC) - timedelta(days=30), days=1)
    cloud.add_key_credential(app["id"], old.der)
    assert_entra_error(await post_assertion(cloud, app_id, sign(old, claims)), 401, "invalid_client", 1000502)

    # azure-identity surfaces the code in its exception, as it does for secrets.
    async with ClientAssertionCredential(
        cloud.tenant_id, app_id, lambda: sign(stranger, assertion_claims(cloud, app_id)), authority=cloud.authority
    ) as credential:
        with pytest.raises(ClientAuthenticationError) as refused:
            await credential.get_token(GRAPH_SCOPE)
    assert "AADSTS700027" in str(refused.value)
    # No private key or assertion reaches the admin state or the request log.
    state = str(cloud.admin("GET", "/state")) + str(cloud.admin("GET", "/requests"))
    assert sign(certificate, claims) not in state
    assert certificate.pem.decode().split("-----")[2].strip()[:64] not in state


async def test_a_new_certificate_propagates_per_replica(cloud: LocalCloud) -> None:
    app = make_app(cloud, "svc-cert-propagation")
    certificate = make_certificate()
    cloud.add_key_credential(app["id"], certificate.der, replica_delays_seconds=[0, 3600, 3600])
    outcomes = set()
    for _ in range(30):
        response = await post_assertion(cloud, app["appId"], sign(certificate, assertion_claims(cloud, app["appId"])))
        outcomes.add(response.status_code if response.status_code == 200 else response.json()["error_codes"][0])
    # One replica knows the certificate, two do not yet: a success proves nothing about the next request.
    assert outcomes == {200, 700027}

    late = make_certificate("late")
    cloud.add_key_credential(app["id"], late.der, replica_delays_seconds=[3600, 3600, 3600])
    response = await post_assertion(cloud, app["appId"], sign(late, assertion_claims(cloud, app["appId"])))
    assert_entra_error(response, 401, "invalid_client", 700027)


def test_admin_refuses_what_is_not_a_certificate(cloud: LocalCloud) -> None:
    from localcloud.admin import AdminError

    app = make_app(cloud, "svc-cert-admin")
    bodies: list[dict[str, Any]] = [{"certificate": "bm90IGEgY2VydA=="}, {"replicaDelaysSeconds": []}]
    for body in bodies:
        with pytest.raises(AdminError) as refused:
            cloud.admin("POST", f"/applications/{app['id']}/certificates", body)
        assert refused.value.status == 400
    assert cloud.key_credentials(app["id"]) == []
