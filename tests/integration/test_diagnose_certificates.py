"""`diagnose` on a stored certificate (issue 15), against the local cloud's Graph keyCredentials (the real
certificate, its thumbprint as customKeyIdentifier) and its client-assertion sign-in: every verdict is
checked against what Entra answers the same certificate through azure-identity's CertificateCredential,
so the diagnosis and the sign-in agree. No output carries the key or the certificate."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from emulator.rotator_profile import RotatorCloud
from rotation.domain import aadsts
from tests.integration.seed import bind, create_owned_app, unique
from tests.integration.test_diagnose import STORED, VAULT, add_password, check, diagnose_json

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class Issued:
    """A self-signed certificate with its key, as a consumer would hold it."""

    def __init__(self, name: str, *, not_before: datetime, not_after: datetime) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        private = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return private.decode() + self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def pfx(self) -> str:
        """What a Key Vault certificate's secret holds: base64 of a PFX without password."""
        data = pkcs12.serialize_key_and_certificates(
            b"c", self.key, self.certificate, None, serialization.NoEncryption()
        )
        return base64.b64encode(data).decode()


def issue(name: str = "orders-api", *, days: float = 200, started_days_ago: float = 10) -> Issued:
    now = datetime.now(UTC)
    return Issued(name, not_before=now - timedelta(days=started_days_ago), not_after=now + timedelta(days=days))


async def _write(cloud: RotatorCloud, name: str, value: str, tags: dict[str, str], content_type: str) -> None:
    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(cloud.vault_url(VAULT), credential, verify_challenge_resource=False) as client,
    ):
        await client.set_secret(
            name, value, tags=tags, content_type=content_type, expires_on=datetime.now(UTC) + timedelta(days=150)
        )


def store_certificate(cloud: RotatorCloud, app: dict[str, str], issued: Issued, *, pem: bool = False) -> str:
    name = unique("cert")
    value, content_type = (issued.pem, "application/x-pem-file") if pem else (issued.pfx, "application/x-pkcs12")
    STORED.add(value)
    asyncio.run(_write(cloud, name, value, {"ProviderAddress": app["appId"]}, content_type))
    return name


def assertion_sign_in(cloud: RotatorCloud, app_id: str, issued: Issued) -> int | None:
    """What Entra answers a consumer signing in with this certificate: None for a token, else the code."""
    credential = CertificateCredential(
        cloud.tenant_id,
        app_id,
        certificate_data=issued.pem.encode(),
        authority=cloud.authority,
        disable_instance_discovery=True,
    )
    try:
        credential.get_token(GRAPH_SCOPE)
        return None
    except ClientAuthenticationError as error:
        return aadsts.parse_code(error)
    finally:
        credential.close()


def test_a_certificate_on_the_app_passes_and_entra_accepts_it(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_owned_app(cloud, unique("cert-app"))
    issued = issue()
    key_id = cloud.add_key_credential(app["id"], issued.der, display_name="CN=orders-api")
    name = store_certificate(cloud, app, issued)
    bind(cloud, app["appId"], VAULT, name)

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    assert code == 0, [c for c in result["checks"] if c["status"] == "fail"]
    (on_app,) = cloud.key_credentials(app["id"])
    assert result["certificate"]["thumbprint"] == on_app.thumbprint and result["certificate"]["format"] == "PKCS#12"
    assert check(result, "certificate.match")["status"] == "pass"
    assert key_id in check(result, "certificate.match")["evidence"]
    assert check(result, "certificate.validity")["status"] == "pass"
    assert check(result, "certificate.clock")["status"] == "pass"
    assert check(result, "signin.probe")["status"] == "skip" and result["probe"] is None
    assert result["value"] is None
    assert assertion_sign_in(cloud, app["appId"], issued) is None


def test_a_certificate_renewed_on_one_side_only_is_not_on_the_app_700027(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_owned_app(cloud, unique("cert-app"))
    on_app, renewed = issue(), issue()
    cloud.add_key_credential(app["id"], on_app.der)
    name = store_certificate(cloud, app, renewed, pem=True)

    code, result = diagnose_json(capsys, cloud, name)

    found = check(result, "certificate.match")
    assert code == 1 and result["mostLikelyCause"]["id"] == "certificate.match"
    assert found["status"] == "fail" and "AADSTS700027" in found["cause"]
    assert result["certificate"]["thumbprint"] in found["evidence"]
    assert cloud.key_credentials(app["id"])[0].thumbprint in found["evidence"]
    assert assertion_sign_in(cloud, app["appId"], renewed) == 700027


def test_a_certificate_for_an_app_with_only_secrets_is_the_reverse_case(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_owned_app(cloud, unique("secret-app"))
    add_password(cloud, app)
    issued = issue()
    name = store_certificate(cloud, app, issued)

    code, result = diagnose_json(capsys, cloud, name)

    found = check(result, "app.certificates")
    assert code == 1 and found["status"] == "fail"
    assert "no certificates, 1 client secret(s)" in found["evidence"] and "AADSTS700027" in found["cause"]
    assert assertion_sign_in(cloud, app["appId"], issued) == 700027


def test_an_expired_certificate_on_the_app_is_1000502(cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]) -> None:
    app = create_owned_app(cloud, unique("cert-app"))
    expired = issue(days=-2, started_days_ago=400)
    cloud.add_key_credential(app["id"], expired.der)
    name = store_certificate(cloud, app, expired)

    code, result = diagnose_json(capsys, cloud, name)

    assert code == 1
    assert check(result, "app.certificates")["status"] == "fail"
    validity = check(result, "certificate.validity")
    assert validity["status"] == "fail" and "expired" in validity["evidence"]
    assert assertion_sign_in(cloud, app["appId"], expired) == 1000502


def test_a_secret_for_an_app_with_only_a_real_certificate_is_7000215(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_owned_app(cloud, unique("cert-only"))
    cloud.add_key_credential(app["id"], issue().der)
    value = "Xy28Q~" + "b" * 34
    STORED.add(value)
    name = unique("secret")
    asyncio.run(_write(cloud, name, value, {"ProviderAddress": app["appId"]}, "text/plain"))

    code, result = diagnose_json(capsys, cloud, name, "--probe")

    found = check(result, "app.credentials")
    assert code == 1 and found["status"] == "fail" and "AADSTS7000215" in found["cause"]
    assert "CertificateCredential" in found["remedy"]
    assert result["probe"]["code"] == 7000215 and result["certificate"] is None


def test_a_key_vault_certificate_renewed_in_the_vault_but_not_on_the_app(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Diagnosing a Key Vault certificate by its name reads the secret behind it (the PFX of the
    latest version): matched while the app has that version, then not once the vault renews it."""
    app = create_owned_app(cloud, unique("kv-cert-app"))
    name = unique("kv-cert")
    first = cloud.create_certificate(VAULT, name, subject="CN=orders-api")
    cloud.add_key_credential(app["id"], first.der, display_name="CN=orders-api")
    STORED.add(cloud.secret_versions(VAULT, name)[-1].value)  # every output is scanned for the PFX

    code, result = diagnose_json(capsys, cloud, name, "--app", app["appId"])

    assert result["certificate"]["thumbprint"] == first.thumbprint and result["certificate"]["hasPrivateKey"]
    assert check(result, "certificate.match")["status"] == "pass", check(result, "certificate.match")
    renewed = cloud.create_certificate(VAULT, name, subject="CN=orders-api")
    assert renewed.thumbprint != first.thumbprint
    STORED.add(cloud.secret_versions(VAULT, name)[-1].value)

    code, result = diagnose_json(capsys, cloud, name, "--app", app["appId"])

    found = check(result, "certificate.match")
    assert code == 1 and found["status"] == "fail"
    assert (
        f"thumbprint {renewed.thumbprint} is not on app" in found["evidence"] and first.thumbprint in found["evidence"]
    )
