"""Key Vault certificates and keys in the local cloud, driven by the unmodified aio SDKs
(`CertificateClient`, `KeyClient`, `CryptographyClient`, `SecretClient`) and checked on the wire.

Each test makes a vault of its own, so that lists and role assignments see only its objects.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.certificates import (
    CertificateContentType,
    CertificatePolicy,
    CertificateProperties,
    KeyVaultCertificate,
)
from azure.keyvault.certificates._shared import http_challenge_cache as certificate_challenges
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys._shared import http_challenge_cache as key_challenges
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.keys.crypto.aio import CryptographyClient
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from localcloud.cloud import LocalCloud

API_VERSION = "7.5"


@pytest.fixture(autouse=True)
def _clear_challenges() -> Iterator[None]:
    # Like the secrets' cache (conftest): each SDK caches a vault's challenge by host:port.
    yield
    certificate_challenges.clear()
    key_challenges.clear()


# --- helpers ---------------------------------------------------------------------------------------
def _vault(cloud: LocalCloud) -> tuple[str, str]:
    created = cloud.admin("POST", "/vaults", {"name": f"kv{uuid.uuid4().hex[:12]}"})
    return created["name"], created["url"]


def _identity(cloud: LocalCloud, vault: str, *roles: str) -> dict[str, Any]:
    identity: dict[str, Any] = cloud.admin("POST", "/identities", {"displayName": "kv-cert-test"})
    for role in roles:
        cloud.admin("POST", "/role-assignments", {"objectId": identity["objectId"], "vault": vault, "role": role})
    return identity


def _credential(cloud: LocalCloud, identity: dict[str, Any]) -> ClientSecretCredential:
    return ClientSecretCredential(
        identity["tenantId"], identity["appId"], identity["clientSecret"], authority=cloud.authority
    )


@asynccontextmanager
async def _clients(
    cloud: LocalCloud, url: str, identity: dict[str, Any]
) -> AsyncIterator[tuple[CertificateClient, KeyClient, SecretClient, ClientSecretCredential]]:
    """The real aio clients; only the loopback-specific challenge-resource check is turned off."""
    credential = _credential(cloud, identity)
    options = {"verify_challenge_resource": False}
    async with (
        credential,
        CertificateClient(url, credential, **options) as certificates,
        KeyClient(url, credential, **options) as keys,
        SecretClient(url, credential, **options) as secrets,
    ):
        yield certificates, keys, secrets, credential


def _policy(subject: str = "CN=app.contoso.test", **kwargs: Any) -> CertificatePolicy:
    return CertificatePolicy(issuer_name="Self", subject=subject, **kwargs)


async def _create(
    client: CertificateClient, name: str, policy: CertificatePolicy, **kwargs: Any
) -> KeyVaultCertificate:
    result = await client.create_certificate(name, policy, _polling_interval=0.05, **kwargs)
    assert isinstance(result, KeyVaultCertificate)
    return result


def _token(cloud: LocalCloud, identity: dict[str, Any]) -> str:
    response = requests.post(
        f"{cloud.authority}/{identity['tenantId']}/oauth2/v2.0/token",
        data={
            "client_id": identity["appId"],
            "client_secret": identity["clientSecret"],
            "grant_type": "client_credentials",
            "scope": "https://vault.azure.net/.default",
        },
        verify=cloud.ca_bundle,
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _raw(cloud: LocalCloud, method: str, url: str, token: str, body: Any = None, **params: str) -> requests.Response:
    return requests.request(
        method,
        url,
        params={"api-version": API_VERSION, **params},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=cloud.ca_bundle,
        timeout=10,
    )


def _props(certificate: KeyVaultCertificate) -> CertificateProperties:
    assert certificate.properties is not None
    return certificate.properties


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


# --- create from policy, the certificate, its secret and key ---------------------------------------
async def test_create_from_policy_polls_to_a_real_self_signed_certificate(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    officer = _identity(cloud, vault, "Key Vault Administrator")
    policy = _policy(
        "CN=app.contoso.test, O=Contoso",
        validity_in_months=6,
        key_size=3072,
        san_dns_names=["app.contoso.test"],
        content_type=CertificateContentType.pkcs12,
    )
    async with _clients(cloud, url, officer) as (certificates, keys, secrets, _):
        created = await _create(certificates, "app-cert", policy, tags={"ProviderAddress": "x"})
        assert created.name == "app-cert"
        assert created.id == f"{url}/certificates/app-cert/{_props(created).version}"
        assert created.key_id == f"{url}/keys/app-cert/{_props(created).version}"
        assert created.secret_id == f"{url}/secrets/app-cert/{_props(created).version}"
        assert _props(created).tags == {"ProviderAddress": "x"}
        assert created.policy is not None and created.policy.issuer_name == "Self"
        assert created.policy.key_size == 3072 and created.policy.validity_in_months == 6

        cert = x509.load_der_x509_certificate(bytes(created.cer or b""))
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "app.contoso.test"
        assert cert.issuer == cert.subject
        assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
        public_key = cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 3072
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["app.contoso.test"]
        # x5t is the SHA-1 thumbprint; nbf/exp are the certificate's own validity (6 calendar months).
        assert _props(created).x509_thumbprint == hashlib.sha1(created.cer or b"", usedforsecurity=False).digest()
        assert _props(created).not_before == cert.not_valid_before_utc
        assert _props(created).expires_on == cert.not_valid_after_utc
        assert 180 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 184

        # The secret behind it: the PKCS#12 with the private key, managed, naming its key.
        secret = await secrets.get_secret("app-cert")
        assert secret.properties.version == _props(created).version
        assert secret.properties.content_type == "application/x-pkcs12"
        assert secret.properties.managed is True
        assert secret.properties.key_id == created.key_id
        private_key, loaded, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value or ""), None)
        assert loaded is not None and loaded.public_bytes(serialization.Encoding.DER) == bytes(created.cer or b"")
        assert isinstance(private_key, rsa.RSAPrivateKey)
        assert private_key.public_key().public_numbers() == public_key.public_numbers()

        # The key behind it: the public JWK only, managed.
        key = await keys.get_key("app-cert")
        assert key.id == created.key_id and key.properties.managed is True
        jwk: Any = key.key  # JsonWebKey's fields are set dynamically
        assert jwk.kty == "RSA" and jwk.d is None
        assert int.from_bytes(bytes(jwk.n), "big") == public_key.public_numbers().n


async def test_pem_content_type_and_a_non_exportable_key(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    officer = _identity(cloud, vault, "Key Vault Administrator")
    async with _clients(cloud, url, officer) as (certificates, _, secrets, _):
        await _create(certificates, "pem", _policy(content_type=CertificateContentType.pem))
        pem = await secrets.get_secret("pem")
        assert pem.properties.content_type == "application/x-pem-file"
        assert pem.value is not None and pem.value.startswith("-----BEGIN PRIVATE KEY-----")
        serialization.load_pem_private_key(pem.value.encode(), None)
        x509.load_pem_x509_certificate(pem.value.encode())

        await _create(certificates, "sealed", _policy(exportable=False, key_type="RSA"))
        sealed = await secrets.get_secret("sealed")
        key, cert, others = pkcs12.load_key_and_certificates(base64.b64decode(sealed.value or ""), None)
        assert key is None and [cert, *others] != [None]  # the certificate only: its key stays in the vault


async def test_pending_operation_with_an_issuance_delay(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    cloud.set_certificate_issuance_delay(vault, 0.4)
    officer = _identity(cloud, vault, "Key Vault Certificates Officer")
    token = _token(cloud, officer)
    async with _clients(cloud, url, officer) as (certificates, _, _, _):
        creating = asyncio.ensure_future(certificates.create_certificate("slow", _policy(), _polling_interval=0.1))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if _raw(cloud, "GET", f"{url}/certificates/slow/pending", token).status_code == 200:
                break
        operation = await certificates.get_certificate_operation("slow")
        assert operation.status == "inProgress" and operation.issuer_name == "Self"
        assert operation.csr  # a real PKCS#10 request
        x509.load_der_x509_csr(bytes(operation.csr))
        raw = _raw(cloud, "GET", f"{url}/certificates/slow/", token)
        assert raw.status_code == 404 and raw.json()["error"]["code"] == "CertificateNotFound"
        result = await creating
        assert isinstance(result, KeyVaultCertificate) and result.cer
        done = await certificates.get_certificate_operation("slow")
        assert done.status == "completed" and done.target == f"{url}/certificates/slow"
        deleted = await certificates.delete_certificate_operation("slow")
        assert deleted.status == "completed"
        with pytest.raises(ResourceNotFoundError):
            await certificates.get_certificate_operation("slow")


def test_create_on_the_wire(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    token = _token(cloud, _identity(cloud, vault, "Key Vault Certificates Officer"))
    body = {"policy": {"x509_props": {"subject": "CN=wire"}, "issuer": {"name": "Self"}}, "tags": {"a": "1"}}
    created = _raw(cloud, "POST", f"{url}/certificates/wire/create", token, body)
    assert created.status_code == 202
    operation = created.json()
    assert operation["id"] == f"{url}/certificates/wire/pending"
    # Like the service, the first answer is in progress, even for an issuance without delay.
    assert operation["status"] == "inProgress" and operation["target"] == f"{url}/certificates/wire"
    assert _raw(cloud, "GET", f"{url}/certificates/wire/pending", token).json()["status"] == "completed"
    bundle = _raw(cloud, "GET", f"{url}/certificates/wire/", token).json()
    assert set(bundle) == {"id", "kid", "sid", "x5t", "cer", "contentType", "attributes", "tags", "policy"}
    der = base64.b64decode(bundle["cer"])
    assert bundle["x5t"] == _b64url(hashlib.sha1(der, usedforsecurity=False).digest())
    assert bundle["policy"]["key_props"] == {"exportable": True, "kty": "RSA", "key_size": 2048, "reuse_key": False}
    assert bundle["policy"]["x509_props"]["validity_months"] == 12
    assert bundle["policy"]["lifetime_actions"] == [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}
    ]
    assert set(bundle["attributes"]) >= {"enabled", "nbf", "exp", "created", "updated", "recoveryLevel"}
    bad = _raw(cloud, "POST", f"{url}/certificates/bad/create", token, {"policy": {"key_props": {"key_size": 1024}}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadParameter"


# --- versions, tags, policy, lists -----------------------------------------------------------------
async def test_versions_tags_per_version_and_policy(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    officer = _identity(cloud, vault, "Key Vault Certificates Officer")
    async with _clients(cloud, url, officer) as (certificates, _, _, _):
        first = await _create(certificates, "rolled", _policy(), tags={"RotationId": "one"})
        policy = await certificates.get_certificate_policy("rolled")
        assert policy.subject == "CN=app.contoso.test"
        await certificates.update_certificate_policy("rolled", CertificatePolicy(validity_in_months=3))
        second = await _create(certificates, "rolled", await certificates.get_certificate_policy("rolled"))
        assert _props(second).version != _props(first).version
        assert _props(second).tags is None  # tags belong to a version, like a secret's
        assert second.policy is not None and second.policy.validity_in_months == 3

        updated = await certificates.update_certificate_properties(
            "rolled", _props(first).version, tags={"RotationId": "one", "RotationState": "active"}
        )
        assert _props(updated).tags == {"RotationId": "one", "RotationState": "active"}
        again = await certificates.get_certificate_version("rolled", _props(second).version or "")
        assert _props(again).tags is None
        versions = [v async for v in certificates.list_properties_of_certificate_versions("rolled")]
        assert sorted(v.version or "" for v in versions) == sorted(
            [_props(first).version or "", _props(second).version or ""]
        )
        assert cloud.certificate_versions(vault, "rolled")[0].tags == {"RotationId": "one", "RotationState": "active"}

        # Disabling a version disables the key and secret versions behind it.
        await certificates.update_certificate_properties("rolled", _props(first).version, enabled=False)
    key = cloud.edit(lambda w: w.vault(vault).keys["rolled"].find(_props(first).version or ""))  # type: ignore[union-attr]
    assert key is not None and key.enabled is False


def test_certificate_lists_page_beyond_25(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    token = _token(cloud, _identity(cloud, vault, "Key Vault Certificates Officer"))
    for index in range(27):
        cloud.create_certificate(vault, f"c{index:02d}", validity_months=1)
    first = _raw(cloud, "GET", f"{url}/certificates", token).json()
    assert len(first["value"]) == 25 and first["nextLink"].startswith(f"{url}/certificates?")
    assert first["value"][0]["id"] == f"{url}/certificates/c00" and "x5t" in first["value"][0]
    second = requests.get(
        first["nextLink"], headers={"Authorization": f"Bearer {token}"}, verify=cloud.ca_bundle, timeout=10
    ).json()
    assert [item["id"].rsplit("/", 1)[1] for item in second["value"]] == ["c25", "c26"]
    assert second["nextLink"] is None


async def test_sdk_lists_and_the_managed_flag_in_the_secrets_list(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    admin = _identity(cloud, vault, "Key Vault Administrator")
    for index in range(3):
        cloud.create_certificate(vault, f"listed-{index}")
    async with _clients(cloud, url, admin) as (certificates, keys, secrets, _):
        await secrets.set_secret("plain", "value")
        names = sorted([c.name or "" async for c in certificates.list_properties_of_certificates()])
        assert names == ["listed-0", "listed-1", "listed-2"]
        managed = {s.name: s.managed async for s in secrets.list_properties_of_secrets()}
        assert managed == {"listed-0": True, "listed-1": True, "listed-2": True, "plain": None}
        assert sorted([k.name or "" async for k in keys.list_properties_of_keys()]) == names


# --- one name space, managed objects ----------------------------------------------------------------
async def test_managed_secret_and_key_writes_are_refused(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    admin = _identity(cloud, vault, "Key Vault Administrator")
    cloud.create_certificate(vault, "owned")
    async with _clients(cloud, url, admin) as (certificates, keys, secrets, _):
        with pytest.raises(HttpResponseError) as refused:
            await secrets.set_secret("owned", "overwrite")
        assert refused.value.status_code == 403
        assert "lifetime is managed by Key Vault" in str(refused.value.message)
        with pytest.raises(HttpResponseError) as refused:
            await secrets.update_secret_properties("owned", tags={"x": "y"})
        assert refused.value.status_code == 403
        with pytest.raises(HttpResponseError) as refused:
            await keys.update_key_properties("owned", tags={"x": "y"})
        assert refused.value.status_code == 403
        with pytest.raises(HttpResponseError) as refused:
            await secrets.delete_secret("owned")
        assert refused.value.status_code == 403
        # A plain secret's name cannot become a certificate's.
        await secrets.set_secret("taken", "value")
        with pytest.raises(HttpResponseError) as conflict:
            await certificates.create_certificate("taken", _policy())
        assert conflict.value.status_code == 409
    token = _token(cloud, admin)
    raw = _raw(cloud, "PUT", f"{url}/secrets/owned", token, {"value": "x"})
    assert raw.status_code == 403
    assert raw.json()["error"] == {
        "code": "Forbidden",
        "message": 'Operation "set" is not allowed as this object\'s lifetime is managed by Key Vault.',
        "innererror": {"code": "SecretManagedByKeyVault"},
    }


async def test_delete_recover_and_purge_take_the_secret_and_key_along(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    admin = _identity(cloud, vault, "Key Vault Administrator")
    cloud.create_certificate(vault, "gone")
    async with _clients(cloud, url, admin) as (certificates, keys, secrets, _):
        deleted = await certificates.delete_certificate("gone", _polling_interval=0.05)
        assert deleted.recovery_id == f"{url}/deletedcertificates/gone"
        with pytest.raises(ResourceNotFoundError):
            await secrets.get_secret("gone")
        with pytest.raises(ResourceNotFoundError):
            await keys.get_key("gone")
        with pytest.raises(HttpResponseError) as conflict:
            await certificates.create_certificate("gone", _policy())
        assert conflict.value.status_code == 409
        with pytest.raises(HttpResponseError) as conflict:
            await secrets.set_secret("gone", "a plain secret in a deleted certificate's name")
        assert conflict.value.status_code == 409
        recovered = await certificates.recover_deleted_certificate("gone", _polling_interval=0.05)
        assert recovered.name == "gone"
        assert (await secrets.get_secret("gone")).properties.managed is True
        await certificates.delete_certificate("gone", _polling_interval=0.05)
        await certificates.purge_deleted_certificate("gone")
        with pytest.raises(ResourceNotFoundError):
            await certificates.get_deleted_certificate("gone")


# --- sign and verify -------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", [SignatureAlgorithm.rs256, SignatureAlgorithm.ps256])
async def test_sign_through_key_vault_verifies_against_the_certificate(
    cloud: LocalCloud, algorithm: SignatureAlgorithm
) -> None:
    vault, url = _vault(cloud)
    issued = cloud.create_certificate(vault, "signer", subject="CN=signer")
    user = _identity(cloud, vault, "Key Vault Crypto User")
    public_key = x509.load_der_x509_certificate(issued.der).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    digest = hashlib.sha256(b"header.payload").digest()
    credential = _credential(cloud, user)
    key_id = f"{url}/keys/signer/{issued.version}"
    async with credential, CryptographyClient(key_id, credential, verify_challenge_resource=False) as crypto:
        signed = await crypto.sign(algorithm, digest)
        assert signed.key_id == key_id
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if algorithm == SignatureAlgorithm.rs256
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        )
        public_key.verify(signed.signature, b"header.payload", pad, hashes.SHA256())
        verified = await crypto.verify(algorithm, digest, signed.signature)
        assert verified.is_valid


def test_sign_on_the_wire(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    issued = cloud.create_certificate(vault, "wire-signer")
    token = _token(cloud, _identity(cloud, vault, "Key Vault Crypto User"))
    digest = _b64url(hashlib.sha256(b"x").digest())
    latest = _raw(cloud, "POST", f"{url}/keys/wire-signer//sign", token, {"alg": "RS256", "value": digest})
    assert latest.status_code == 200
    assert latest.json()["kid"] == f"{url}/keys/wire-signer/{issued.version}"
    short = _raw(cloud, "POST", f"{url}/keys/wire-signer//sign", token, {"alg": "RS256", "value": digest[:-4]})
    assert short.status_code == 400 and short.json()["error"]["code"] == "BadParameter"
    missing = _raw(cloud, "POST", f"{url}/keys/nokey/{'0' * 32}/sign", token, {"alg": "RS256", "value": digest})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "KeyNotFound"


async def test_create_rsa_key(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    officer = _identity(cloud, vault, "Key Vault Crypto Officer")
    async with _clients(cloud, url, officer) as (_, keys, _, _):
        key = await keys.create_rsa_key("plain-key", size=2048, tags={"a": "b"})
        assert key.properties.managed is None and key.properties.tags == {"a": "b"}
        jwk: Any = key.key
        assert jwk.n is not None and jwk.d is None


# --- RBAC boundaries -------------------------------------------------------------------------------
def _forbidden(response: requests.Response, action: str) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "Forbidden" and error["innererror"] == {"code": "ForbiddenByRbac"}
    assert f"Action: 'Microsoft.KeyVault/vaults/{action}'" in error["message"]


def test_rbac_boundaries_between_secrets_certificates_and_keys(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    issued = cloud.create_certificate(vault, "guarded")
    digest = {"alg": "RS256", "value": _b64url(hashlib.sha256(b"x").digest())}
    create = {"policy": {"x509_props": {"subject": "CN=x"}, "issuer": {"name": "Self"}}}

    secrets_officer = _token(cloud, _identity(cloud, vault, "Key Vault Secrets Officer"))
    _forbidden(
        _raw(cloud, "POST", f"{url}/certificates/new/create", secrets_officer, create), "certificates/create/action"
    )
    _forbidden(
        _raw(cloud, "POST", f"{url}/keys/guarded/{issued.version}/sign", secrets_officer, digest), "keys/sign/action"
    )
    assert _raw(cloud, "GET", f"{url}/secrets/guarded/", secrets_officer).status_code == 200

    crypto_user = _token(cloud, _identity(cloud, vault, "Key Vault Crypto User"))
    _forbidden(_raw(cloud, "GET", f"{url}/secrets/guarded/", crypto_user), "secrets/getSecret/action")
    _forbidden(_raw(cloud, "POST", f"{url}/keys/other/create", crypto_user, {"kty": "RSA"}), "keys/create/action")
    assert _raw(cloud, "POST", f"{url}/keys/guarded/{issued.version}/sign", crypto_user, digest).status_code == 200

    certificates_officer = _token(cloud, _identity(cloud, vault, "Key Vault Certificates Officer"))
    _forbidden(_raw(cloud, "GET", f"{url}/secrets/guarded/", certificates_officer), "secrets/getSecret/action")
    _forbidden(_raw(cloud, "GET", f"{url}/keys/guarded/", certificates_officer), "keys/read")
    assert _raw(cloud, "POST", f"{url}/certificates/new/create", certificates_officer, create).status_code == 202

    reader = _token(cloud, _identity(cloud, vault, "Key Vault Reader"))
    assert _raw(cloud, "GET", f"{url}/certificates/guarded/", reader).status_code == 200
    assert _raw(cloud, "GET", f"{url}/keys/guarded/", reader).status_code == 200
    _forbidden(_raw(cloud, "GET", f"{url}/secrets/guarded/", reader), "secrets/getSecret/action")
    _forbidden(_raw(cloud, "POST", f"{url}/keys/guarded/{issued.version}/sign", reader, digest), "keys/sign/action")
    denied = _raw(cloud, "PATCH", f"{url}/certificates/guarded/{issued.version}", reader, {"tags": {}})
    _forbidden(denied, "certificates/update/action")
    assert "/certificates/guarded'" in denied.json()["error"]["message"]


async def test_sdk_surfaces_the_rbac_refusal(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    secrets_only = _identity(cloud, vault, "Key Vault Secrets Officer")
    async with _clients(cloud, url, secrets_only) as (certificates, _, _, _):
        with pytest.raises(HttpResponseError) as refused:
            await certificates.create_certificate("denied", _policy())
        assert refused.value.status_code == 403
        assert "ForbiddenByRbac" in str(refused.value)


# --- events and the facade ---------------------------------------------------------------------------
def test_new_version_event_and_expiry_events_follow_the_clock(private_cloud: Any) -> None:
    local: LocalCloud = private_cloud()
    vault, _ = _vault(local)
    issued = local.create_certificate(vault, "evented", validity_months=1)
    events = [e for e in local.admin("GET", "/events?since=0")["events"] if e["subject"] == "evented"]
    assert [e["eventType"] for e in events] == ["Microsoft.KeyVault.CertificateNewVersionCreated"]
    assert events[0]["data"]["ObjectType"] == "Certificate"
    assert events[0]["data"]["Version"] == issued.version
    assert events[0]["data"]["EXP"] == int(issued.expires.timestamp())
    local.advance_clock(timedelta(days=32).total_seconds())
    events = local.admin("GET", "/events?since=0")["events"]
    # The secret behind it has the same `exp`, so its own Secret* events fire too; these are the certificate's.
    types = [e["eventType"] for e in events if e["subject"] == "evented" and e["data"]["ObjectType"] == "Certificate"]
    assert types[1:] == ["Microsoft.KeyVault.CertificateNearExpiry", "Microsoft.KeyVault.CertificateExpired"]


def test_facade_and_admin_route(cloud: LocalCloud) -> None:
    vault, _ = _vault(cloud)
    first = cloud.create_certificate(vault, "facade", subject="CN=facade", validity_months=2, tags={"t": "1"})
    second = cloud.create_certificate(vault, "facade")
    assert [v.version for v in cloud.certificate_versions(vault, "facade")] == [first.version, second.version]
    assert first.thumbprint == hashlib.sha1(first.der, usedforsecurity=False).hexdigest().upper()
    assert first.tags == {"t": "1"} and second.tags is None
    assert first.not_before <= datetime.now(UTC) + timedelta(seconds=5) < first.expires
    listed = cloud.admin("GET", f"/vaults/{vault}/certificates/facade")["versions"]
    assert [v["version"] for v in listed] == [first.version, second.version]
    assert "private" not in str(listed).lower()
    with pytest.raises(KeyError):
        cloud.certificate_versions(vault, "nothing")


async def test_sdk_role_boundaries_for_sign_and_the_secret(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    issued = cloud.create_certificate(vault, "bounded")
    digest = hashlib.sha256(b"x").digest()
    key_id = f"{url}/keys/bounded/{issued.version}"
    secrets_officer = _credential(cloud, _identity(cloud, vault, "Key Vault Secrets Officer"))
    async with secrets_officer, CryptographyClient(key_id, secrets_officer, verify_challenge_resource=False) as crypto:
        with pytest.raises(HttpResponseError) as refused:
            await crypto.sign(SignatureAlgorithm.rs256, digest)
        assert refused.value.status_code == 403 and "keys/sign/action" in str(refused.value)
    crypto_user = _identity(cloud, vault, "Key Vault Crypto User")
    async with _clients(cloud, url, crypto_user) as (_, _, secrets, _):
        with pytest.raises(HttpResponseError) as refused:
            await secrets.get_secret("bounded")
        assert refused.value.status_code == 403 and "secrets/getSecret/action" in str(refused.value)


def test_certificate_paths_answer_the_bearer_challenge(cloud: LocalCloud) -> None:
    _, url = _vault(cloud)
    for method, path in (("POST", "/certificates/x/create"), ("GET", "/keys/x/"), ("POST", "/keys/x//sign")):
        response = requests.request(
            method, f"{url}{path}", params={"api-version": API_VERSION}, verify=cloud.ca_bundle, timeout=10
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].endswith('resource="https://vault.azure.net"')


def test_unknown_issuer_waits_for_a_merge_and_cancel(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    token = _token(cloud, _identity(cloud, vault, "Key Vault Certificates Officer"))
    body = {"policy": {"x509_props": {"subject": "CN=csr"}, "issuer": {"name": "Unknown"}}}
    operation = _raw(cloud, "POST", f"{url}/certificates/csr/create", token, body).json()
    assert operation["status"] == "inProgress" and operation["issuer"] == {"name": "Unknown"}
    assert "Perform Merge" in operation["status_details"]
    x509.load_der_x509_csr(base64.b64decode(operation["csr"]))
    cancelled = _raw(cloud, "PATCH", f"{url}/certificates/csr/pending", token, {"cancellation_requested": True})
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancellation_requested"] is True
    assert _raw(cloud, "DELETE", f"{url}/certificates/csr/pending", token).status_code == 200
    gone = _raw(cloud, "GET", f"{url}/certificates/csr/pending", token)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "PendingCertificateNotFound"


async def test_private_key_and_secret_value_never_leave_through_admin_events_or_logs(cloud: LocalCloud) -> None:
    vault, url = _vault(cloud)
    admin = _identity(cloud, vault, "Key Vault Administrator")
    async with _clients(cloud, url, admin) as (certificates, _, secrets, _):
        await _create(certificates, "quiet", _policy(content_type=CertificateContentType.pem))
        pem = (await secrets.get_secret("quiet")).value or ""
    key_pem = pem.split("-----END PRIVATE KEY-----")[0]
    key_body = "".join(key_pem.splitlines()[1:])
    assert len(key_body) > 1000
    private = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    d = _b64url(private.private_numbers().d.to_bytes(384, "big").lstrip(b"\0"))
    outputs = [
        cloud.admin("GET", "/state"),
        cloud.admin("GET", "/events?since=0"),
        cloud.admin("GET", "/requests?since=0"),
        cloud.admin("GET", f"/vaults/{vault}/certificates/quiet"),
        cloud.admin("POST", f"/vaults/{vault}/certificates", {"name": "quiet2"}),
    ]
    text = str(outputs)
    for needle in (key_body[:64], key_body[-64:], d[:64]):
        assert needle not in text
    assert "quiet" in text  # the outputs do describe the certificate


def test_the_sync_clients_too(cloud: LocalCloud) -> None:
    from azure.identity import ClientSecretCredential as SyncCredential
    from azure.keyvault.certificates import CertificateClient as SyncCertificateClient
    from azure.keyvault.keys.crypto import CryptographyClient as SyncCryptographyClient

    vault, url = _vault(cloud)
    identity = _identity(cloud, vault, "Key Vault Certificates Officer", "Key Vault Crypto User")
    credential = SyncCredential(
        identity["tenantId"],
        identity["appId"],
        identity["clientSecret"],
        authority=cloud.authority,
        disable_instance_discovery=True,
    )
    with SyncCertificateClient(url, credential, verify_challenge_resource=False) as certificates:
        poller = certificates.begin_create_certificate("sync", _policy(), _polling_interval=0.05)
        created = poller.result()
        assert isinstance(created, KeyVaultCertificate) and created.key_id
    digest = hashlib.sha256(b"sync").digest()
    with SyncCryptographyClient(created.key_id, credential, verify_challenge_resource=False) as crypto:
        signed = crypto.sign(SignatureAlgorithm.ps256, digest)
        assert crypto.verify(SignatureAlgorithm.ps256, digest, signed.signature).is_valid
