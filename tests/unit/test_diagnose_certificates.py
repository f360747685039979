"""Diagnose, certificate facts -> checks (issue 15): a stored certificate against the app's keyCredentials,
a secret for a certificate-only app, expiry on either side, the assertion clock; and no key in any output."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from rotation.domain.listing import CertificateCredential
from rotation.domain.model import Application, PasswordCredential, SecretVersion, Sensitive
from rotation.settings import Settings
from rotation.tools.diagnose import AppLookup, Observed, Status, TenantLookup, diagnosis_json, judge, render_text
from rotation.tools.diagnose.certificate_value import StoredCertificate, stored_certificate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
APP_ID = "11111111-2222-3333-4444-555555555555"
SETTINGS = Settings(
    vaults={"kv-local": "https://kv-local.vault.azure.net"}, tenant_id="aaaaaaaa-0000-0000-0000-000000000001"
)


def make_certificate(days: float = 200, *, starts_days_ago: float = 10) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orders-api")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=starts_days_ago))
        .not_valid_after(NOW + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


@pytest.fixture(scope="module")
def pair() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return make_certificate()


def pem_of(key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> str:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private.decode() + certificate.public_bytes(serialization.Encoding.PEM).decode()


def pfx_of(key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> str:
    """What a Key Vault certificate's secret holds (application/x-pkcs12): base64 of a PFX without password."""
    data = pkcs12.serialize_key_and_certificates(b"orders", key, certificate, None, serialization.NoEncryption())
    return base64.b64encode(data).decode()


def thumbprint(certificate: x509.Certificate) -> str:
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def key_credential(
    certificate: x509.Certificate, *, end_days: float = 200, start_days_ago: float = 10
) -> CertificateCredential:
    return CertificateCredential(
        key_id="cccccccc-0000-0000-0000-000000000001",
        display_name="CN=orders-api",
        thumbprint=thumbprint(certificate),
        start=NOW - timedelta(days=start_days_ago),
        end=NOW + timedelta(days=end_days),
    )


def observed(
    value: str,
    *,
    keys: tuple[CertificateCredential, ...] = (),
    passwords: tuple[PasswordCredential, ...] = (),
    content_type: str | None = None,
    skew: timedelta = timedelta(0),
) -> Observed:
    version = SecretVersion(
        vault="kv-local",
        name="orders",
        version="0" * 32,
        created=NOW - timedelta(days=1),
        expires=NOW + timedelta(days=100),
        content_type=content_type,
        tags={"ProviderAddress": APP_ID},
    )
    app = Application(
        object_id="99999999-0000-0000-0000-000000000009",
        app_id=APP_ID,
        display_name="orders-api",
        password_credentials=passwords,
        key_credentials_count=len(keys),
        key_credentials=keys,
    )
    seen = Observed(settings=SETTINGS, vault="kv-local", secret="orders", now=NOW, version=version)
    seen.value = Sensitive(value)
    seen.app_id, seen.app_source = APP_ID, "ProviderAddress tag"
    seen.tenant_id, seen.tenant_source = SETTINGS.tenant_id, "ROTATION_TENANT_ID"
    seen.tenant = TenantLookup(True, tenant_id=SETTINGS.tenant_id, server_time=NOW - skew, local_time=NOW)
    seen.app, seen.app_lookup = app, AppLookup.FOUND
    return seen


def by_id(seen: Observed) -> dict[str, tuple[Status, str, str]]:
    return {c.id: (c.status, c.evidence, c.cause) for c in judge(seen).checks}


# --------------------------------------------------------------------------------------------------
# Reading the stored value


def test_a_pem_and_a_key_vault_pfx_are_read_as_the_same_certificate(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, certificate = pair
    from_pem = stored_certificate(Sensitive(pem_of(key, certificate)))
    from_pfx = stored_certificate(Sensitive(pfx_of(key, certificate)), "application/x-pkcs12")
    assert isinstance(from_pem, StoredCertificate) and isinstance(from_pfx, StoredCertificate)
    assert from_pem.thumbprint == from_pfx.thumbprint == thumbprint(certificate)
    assert (from_pem.format, from_pfx.format) == ("PEM", "PKCS#12")
    assert from_pem.has_private_key and from_pfx.has_private_key
    assert from_pem.subject == "CN=orders-api"


def test_a_client_secret_is_no_certificate() -> None:
    assert stored_certificate(Sensitive("Xy28Q~" + "a" * 34)) is None
    assert stored_certificate(Sensitive("not base64 at all " * 40)) is None


# --------------------------------------------------------------------------------------------------
# The checks


def test_a_certificate_on_the_app_passes_and_the_secret_checks_are_not_run(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, certificate = pair
    seen = observed(pfx_of(key, certificate), keys=(key_credential(certificate),), content_type="application/x-pkcs12")
    diagnosis = judge(seen)
    checks = {c.id: c for c in diagnosis.checks}
    assert not diagnosis.failed, [c for c in diagnosis.checks if c.status is Status.FAIL]
    assert checks["certificate.match"].status is Status.PASS
    assert thumbprint(certificate) in checks["certificate.match"].evidence
    assert checks["certificate.validity"].status is Status.PASS
    assert checks["certificate.clock"].status is Status.PASS
    assert "value.length" not in checks and "credential.match" not in checks and "app.credentials" not in checks
    assert diagnosis.shape is None and diagnosis.certificate is not None


def test_the_thumbprint_the_consumer_uses_is_not_on_the_app(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, certificate = pair
    _, renewed = make_certificate()
    seen = observed(pem_of(key, certificate), keys=(key_credential(renewed),))
    status, evidence, cause = by_id(seen)["certificate.match"]
    assert status is Status.FAIL
    assert f"thumbprint {thumbprint(certificate)} is not on app {APP_ID}" in evidence
    assert thumbprint(renewed) in evidence
    assert "AADSTS700027" in cause and "one side only" in cause
    assert judge(seen).most_likely is not None and judge(seen).most_likely.id == "certificate.match"  # type: ignore[union-attr]


def test_the_reverse_a_certificate_for_an_app_with_only_secrets(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, certificate = pair
    password = PasswordCredential("dddddddd-0000-0000-0000-000000000001", "prod", "Xy2", NOW, NOW + timedelta(days=9))
    status, evidence, cause = by_id(observed(pem_of(key, certificate), passwords=(password,)))["app.certificates"]
    assert status is Status.FAIL
    assert "no certificates, 1 client secret(s)" in evidence
    assert "AADSTS700027" in cause and "the key was not found" in cause


def test_a_secret_for_an_app_with_only_certificates_is_7000215_and_says_what_to_do(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    _, certificate = pair
    seen = observed("Xy28Q~" + "a" * 34, keys=(key_credential(certificate),))
    found = next(c for c in judge(seen).checks if c.id == "app.credentials")
    assert found.status is Status.FAIL
    assert "AADSTS7000215" in found.cause and "certificates (keyCredentials)" in found.cause
    assert "CertificateCredential" in found.remedy and f"az ad app credential reset --id {APP_ID}" in found.remedy


def test_the_certificate_on_the_app_has_expired(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, certificate = pair
    seen = observed(pem_of(key, certificate), keys=(key_credential(certificate, end_days=-2, start_days_ago=400),))
    checks = by_id(seen)
    assert (
        checks["app.certificates"][0] is Status.FAIL and "all 1 certificate(s) expired" in checks["app.certificates"][1]
    )
    assert checks["certificate.validity"][0] is Status.FAIL
    assert "AADSTS1000502" in checks["certificate.validity"][2]


def test_the_stored_certificate_itself_has_expired() -> None:
    key, old = make_certificate(days=-1, starts_days_ago=365)
    seen = observed(pem_of(key, old), keys=(key_credential(old, end_days=30),))
    status, evidence, _ = by_id(seen)["certificate.validity"]
    assert status is Status.FAIL and "expired on" in evidence


def test_a_certificate_added_moments_ago_warns_about_propagation(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, certificate = pair
    fresh = replace(key_credential(certificate), start=NOW - timedelta(seconds=30))
    status, evidence, cause = by_id(observed(pem_of(key, certificate), keys=(fresh,)))["certificate.validity"]
    assert status is Status.WARN and "30 s ago" in evidence and "AADSTS700027" in cause


def test_a_skewed_clock_warns_about_assertion_lifetime(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, certificate = pair
    seen = observed(pem_of(key, certificate), keys=(key_credential(certificate),), skew=timedelta(minutes=12))
    status, evidence, cause = by_id(seen)["certificate.clock"]
    assert status is Status.WARN
    assert "720 s ahead of Entra's" in evidence and "AADSTS700024" in cause


def test_the_probe_is_not_run_with_a_certificate(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, certificate = pair
    seen = observed(pem_of(key, certificate), keys=(key_credential(certificate),))
    seen.probe_requested = True
    status, evidence, _ = by_id(seen)["signin.probe"]
    assert status is Status.SKIP and "is a certificate" in evidence


def test_no_output_carries_the_private_key_or_the_certificate(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    """Neither the text nor the JSON holds any line of the PEM, nor any 16 characters of the PFX."""
    key, certificate = pair
    pem = pem_of(key, certificate)
    pfx = pfx_of(key, certificate)
    for value, content_type in ((pem, None), (pfx, "application/x-pkcs12")):
        _, other = make_certificate()
        for keys in ((key_credential(certificate),), (key_credential(other),), ()):
            diagnosis = judge(observed(value, keys=keys, content_type=content_type))
            output = render_text(diagnosis) + json.dumps(diagnosis_json(diagnosis))
            assert "PRIVATE KEY" not in output and "BEGIN CERTIFICATE" not in output
            for line in pem.splitlines():
                if len(line) >= 16 and not line.startswith("-----"):
                    assert line not in output
            assert all(pfx[i : i + 16] not in output for i in range(0, len(pfx) - 16, 8))
    document = diagnosis_json(judge(observed(pem, keys=(key_credential(certificate),))))
    assert document["certificate"]["thumbprint"] == thumbprint(certificate)
    assert document["certificate"]["hasPrivateKey"] is True and document["value"] is None


def test_a_certificate_without_its_private_key_cannot_sign(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    _, certificate = pair
    public_only = certificate.public_bytes(serialization.Encoding.PEM).decode()
    seen = observed(public_only, keys=(key_credential(certificate),))
    status, evidence, cause = by_id(seen)["certificate.key"]
    assert status is Status.FAIL and "holds no private key" in evidence and "cannot sign" in cause
    assert by_id(observed(pem_of(*pair), keys=(key_credential(certificate),)))["certificate.key"][0] is Status.PASS


def test_consumers_on_the_old_certificate_are_named_by_thumbprint(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    """The sign-in report lists certificates by keyId too: a vault renewed to a new certificate while
    consumers still sign in with the old one is the rotated-but-not-updated cause for certificates."""
    key, certificate = pair
    _, old = make_certificate()
    current = key_credential(certificate)
    previous = replace(key_credential(old), key_id="cccccccc-0000-0000-0000-000000000002", display_name="old")
    seen = observed(pem_of(key, certificate), keys=(current, previous))
    seen.sign_ins_read, seen.sign_ins = True, {previous.key_id: NOW - timedelta(days=2), current.key_id: None}
    found = next(c for c in judge(seen).checks if c.id == "usage.consumers")
    assert found.status is Status.WARN
    assert (
        f"the stored value is credential {current.key_id} 'CN=orders-api' (certificate {thumbprint(certificate)})"
        in (found.evidence)
    )
    assert (
        f"consumers sign in with credential {previous.key_id} 'old' (certificate {thumbprint(old)})" in found.evidence
    )
