"""In-memory implementations of `rotation.service.certificate_ports`, with real cryptography.

`FakeCertificateVault` keeps each certificate's versions with a real RSA key and a self-signed X.509
certificate (the Self issuer of a certificate policy), signs RS256 digests with a version's key, and
refuses to sign with a disabled or expired version, like Key Vault. `FakeKeyDirectory` keeps each
app's key credentials (the DER, its SHA-1 thumbprint as ``customKeyIdentifier``) and checks every
``addKey``/``removeKey`` proof the way Graph does: header ``x5t`` naming a valid key of the app, its
RS256 signature, ``aud``, ``iss`` = the object id, a lifetime of at most 10 minutes. `FakeAssertionProbe`
signs in only with an assertion whose ``x5t#S256`` names a valid key of the app and whose signature,
``aud``, ``iss``/``sub`` and lifetime check out, after ``propagation_probes`` answers of AADSTS700027.

Writes are logged in order (``writes``), and any operation can be made to fail (``faults``).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from rotation.domain.assertions import PROOF_AUDIENCE, PROOF_LIFETIME_MAX, b64url, sha1_thumbprint, x5t_s256
from rotation.domain.certificates import CertificateVersion, KeyApplication, KeyCredential
from rotation.domain.errors import ApplicationNotFoundError, GraphError, KeyVaultError
from rotation.domain.model import Application, ProbeResult, SecretVersion, Sensitive
from rotation.service.certificate_ports import AssertionProbe, CertificateVault, KeyDirectory
from rotation.service.ports import Clock
from tests.fakes import Faults

__all__ = ["FakeAssertionProbe", "FakeCertificateVault", "FakeKeyDirectory", "self_signed"]

#: Small keys keep the unit tests fast; the flow does not depend on the size.
KEY_BITS = 1024


def self_signed(subject: str, start: datetime, end: datetime) -> tuple[rsa.RSAPrivateKey, bytes]:
    """A key pair and a self-signed certificate (DER) valid from ``start`` to ``end``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.DER)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header, payload, signature = token.split(".")
    return (
        json.loads(_b64url_decode(header)),
        json.loads(_b64url_decode(payload)),
        f"{header}.{payload}".encode(),
        _b64url_decode(signature),
    )


def _verify(der: bytes, signing_input: bytes, signature: bytes) -> bool:
    public = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Key Vault certificates


@dataclass
class _CertVersion:
    name: str
    version: str
    key: rsa.RSAPrivateKey
    der: bytes
    created: datetime
    expires: datetime
    tags: dict[str, str]
    enabled: bool = True

    @property
    def thumbprint(self) -> str:
        return sha1_thumbprint(self.der)


class FakeCertificateVault:
    """`CertificateVault`: certificates with versions, each a real key and self-signed certificate."""

    def __init__(self, name: str, clock: Clock, *, writes: list[tuple[str, ...]] | None = None) -> None:
        self.name = name
        self._clock = clock
        self._certificates: dict[str, list[_CertVersion]] = {}
        #: The validity of new versions, per certificate (its policy's ``validity_in_months``).
        self.validity: dict[str, timedelta] = {}
        self.faults = Faults()
        self.writes: list[tuple[str, ...]] = [] if writes is None else writes
        self.signatures = 0

    # --- set-up -----------------------------------------------------------------------------------
    def seed(
        self,
        name: str,
        *,
        tags: Mapping[str, str],
        validity: timedelta = timedelta(days=365),
        age: timedelta = timedelta(0),
    ) -> _CertVersion:
        """A version created by someone else (no write logged), ``age`` ago."""
        self.validity.setdefault(name.lower(), validity)
        return self._new_version(name, dict(tags), self._clock.now() - age, validity)

    def versions(self, name: str) -> list[_CertVersion]:
        return list(self._certificates.get(name.lower(), []))

    def latest(self, name: str) -> _CertVersion:
        return self._certificates[name.lower()][-1]

    # --- the port ----------------------------------------------------------------------------------
    async def get_certificate(self, certificate: str, version: str | None = None) -> CertificateVersion | None:
        self.faults.check("get_certificate")
        found = self._find(certificate, version)
        return None if found is None else self._view(found, with_der=True)

    async def list_certificate_versions(self, certificate: str) -> list[CertificateVersion]:
        self.faults.check("list_certificate_versions")
        return [self._view(v, with_der=False) for v in self.versions(certificate)]

    async def certificate_pages(self) -> AsyncIterator[list[CertificateVersion]]:
        self.faults.check("list_certificates")
        yield [self._view(versions[-1], with_der=False) for versions in self._certificates.values() if versions]

    async def create_version(self, certificate: str, *, tags: Mapping[str, str]) -> CertificateVersion:
        self.faults.check("create_version")
        if len(tags) > 15:
            raise KeyVaultError(f"certificate '{certificate}' would have {len(tags)} tags; Key Vault allows 15")
        validity = self.validity.get(certificate.lower(), timedelta(days=365))
        created = self._new_version(certificate, dict(tags), self._clock.now(), validity)
        self.writes.append(("createCertificate", created.version))
        self.faults.wrote("create_version")
        return self._view(created, with_der=True)

    async def update_certificate(
        self, certificate: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> CertificateVersion:
        self.faults.check("update_certificate")
        found = self._find(certificate, version)
        if found is None:
            raise KeyVaultError(f"no version {version} of certificate '{certificate}'")
        if tags is not None:
            if len(tags) > 15:
                raise KeyVaultError(f"certificate '{certificate}' would have {len(tags)} tags; Key Vault allows 15")
            found.tags = dict(tags)
        if enabled is not None:
            found.enabled = enabled
        self.writes.append(("updateCertificate", version, "tags" if tags is not None else "enabled"))
        self.faults.wrote("update_certificate")
        return self._view(found, with_der=False)

    async def sign(self, certificate: str, version: str, digest: bytes) -> bytes:
        self.faults.check("sign")
        found = self._find(certificate, version)
        if found is None:
            raise KeyVaultError(f"no key behind version {version} of '{certificate}'")
        if not found.enabled or found.expires <= self._clock.now():
            raise KeyVaultError(f"the key of version {version} of '{certificate}' is disabled or expired")
        if len(digest) != 32:
            raise KeyVaultError("RS256 signs a 32-byte SHA-256 digest")
        self.signatures += 1
        return found.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    # --- internals ---------------------------------------------------------------------------------
    def _new_version(self, name: str, tags: dict[str, str], created: datetime, validity: timedelta) -> _CertVersion:
        start = created.replace(microsecond=0)
        key, der = self_signed(f"CN={name}", start, start + validity)
        version = _CertVersion(name, uuid.uuid4().hex, key, der, start, start + validity, tags)
        self._certificates.setdefault(name.lower(), []).append(version)
        return version

    def _find(self, certificate: str, version: str | None) -> _CertVersion | None:
        versions = self._certificates.get(certificate.lower())
        if not versions:
            return None
        if version is None:
            return versions[-1]
        return next((v for v in versions if v.version == version), None)

    def _view(self, version: _CertVersion, *, with_der: bool) -> CertificateVersion:
        properties = SecretVersion(
            vault=self.name,
            name=version.name,
            version=version.version,
            enabled=version.enabled,
            created=version.created,
            updated=version.created,
            not_before=version.created,
            expires=version.expires,
            tags=dict(version.tags),
        )
        return CertificateVersion(properties, version.thumbprint, version.der if with_der else None)


# --------------------------------------------------------------------------------------------------
# Graph key credentials


@dataclass
class _KeyApp:
    object_id: str
    app_id: str
    keys: list[tuple[KeyCredential, bytes]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


class FakeKeyDirectory:
    """`KeyDirectory`: apps with key credentials; addKey/removeKey check their proofs like Graph."""

    def __init__(self, clock: Clock, *, writes: list[tuple[str, ...]] | None = None) -> None:
        self._clock = clock
        self._apps: dict[str, _KeyApp] = {}
        self.faults = Faults()
        self.writes: list[tuple[str, ...]] = [] if writes is None else writes
        self.sign_ins: dict[str, datetime | None] | None = None
        self.reads = 0
        self.proofs: list[str] = []  # every proof presented (to assert that none leaked)

    # --- set-up -----------------------------------------------------------------------------------
    def add_app(self, app_id: str | None = None) -> str:
        app_id = (app_id or str(uuid.uuid4())).lower()
        self._apps[app_id] = _KeyApp(str(uuid.uuid4()), app_id)
        return app_id

    def set_tags(self, app_id: str, tags: list[str]) -> None:
        self._apps[app_id.lower()].tags = list(tags)

    def add_certificate_now(
        self, app_id: str, der: bytes, *, display_name: str = "CN=added by a human"
    ) -> KeyCredential:
        """What ``az ad app credential reset --cert … --append`` does (no write logged)."""
        return self._add(self._apps[app_id.lower()], der, display_name)

    def remove_now(self, app_id: str, key_id: str) -> None:
        app = self._apps[app_id.lower()]
        app.keys = [(k, d) for k, d in app.keys if k.key_id != key_id]

    def keys(self, app_id: str) -> list[KeyCredential]:
        return [k for k, _ in self._apps[app_id.lower()].keys]

    def object_id(self, app_id: str) -> str:
        return self._apps[app_id.lower()].object_id

    def der_of(self, app_id: str, key_id: str) -> bytes | None:
        return next((d for k, d in self._apps[app_id.lower()].keys if k.key_id == key_id), None)

    # --- the port ----------------------------------------------------------------------------------
    async def get_key_application(self, app_id: str) -> KeyApplication:
        self.faults.check("get_key_application")
        self.reads += 1
        app = self._apps.get(app_id.lower())
        if app is None:
            raise ApplicationNotFoundError(f"No application with appId {app_id} is visible to the rotator.")
        return KeyApplication(
            Application(app.object_id, app.app_id, tags=tuple(app.tags)), tuple(k for k, _ in app.keys)
        )

    async def add_key(
        self, object_id: str, der: bytes, display_name: str, proof: Sensitive, *, app_id: str = ""
    ) -> KeyCredential:
        self.faults.check("add_key")
        app = self._by_object_id(object_id)
        self._check_proof(app, proof)
        if any(sha1_thumbprint(d) == sha1_thumbprint(der) for _, d in app.keys):
            raise GraphError("Graph addKey: the certificate is on the application already.")
        credential = self._add(app, der, display_name)
        self.writes.append(("addKey", credential.key_id))
        self.faults.wrote("add_key")
        return credential

    async def remove_key(self, object_id: str, key_id: str, proof: Sensitive, *, app_id: str = "") -> bool:
        self.faults.check("remove_key")
        app = self._by_object_id(object_id)
        self._check_proof(app, proof)
        self.writes.append(("removeKey", key_id.lower()))
        before = len(app.keys)
        app.keys = [(k, d) for k, d in app.keys if k.key_id.lower() != key_id.lower()]
        self.faults.wrote("remove_key")
        return len(app.keys) < before

    async def credential_sign_ins(self, app_id: str) -> dict[str, datetime | None] | None:
        self.faults.check("credential_sign_ins")
        return None if self.sign_ins is None else dict(self.sign_ins)

    # --- internals ---------------------------------------------------------------------------------
    def _add(self, app: _KeyApp, der: bytes, display_name: str) -> KeyCredential:
        certificate = x509.load_der_x509_certificate(der)
        credential = KeyCredential(
            key_id=str(uuid.uuid4()),
            display_name=display_name,
            start=certificate.not_valid_before_utc,
            end=certificate.not_valid_after_utc,
            thumbprint=sha1_thumbprint(der),
        )
        app.keys.append((credential, der))
        return credential

    def _by_object_id(self, object_id: str) -> _KeyApp:
        app = next((a for a in self._apps.values() if a.object_id == object_id), None)
        if app is None:
            raise ApplicationNotFoundError(f"No application with object id {object_id}.")
        return app

    def _check_proof(self, app: _KeyApp, proof: Sensitive) -> None:
        """Graph's checks of a proof of possession (400 ``Authentication_...`` when one fails)."""
        self.proofs.append(proof.reveal())
        header, claims, signing_input, signature = _parse_jwt(proof.reveal())
        now = int(self._clock.now().timestamp())
        signer = next(
            (
                (k, d)
                for k, d in app.keys
                if header.get("x5t") == b64url(bytes.fromhex(k.thumbprint or "")) and k.is_valid(self._clock.now())
            ),
            None,
        )
        problems = []
        if header.get("alg") != "RS256":
            problems.append("alg")
        if signer is None:
            problems.append("x5t names no valid key of the app")
        elif not _verify(signer[1], signing_input, signature):
            problems.append("signature")
        if claims.get("aud") != PROOF_AUDIENCE:
            problems.append("aud")
        if claims.get("iss") != app.object_id:
            problems.append("iss")
        nbf, exp = int(claims.get("nbf", 0)), int(claims.get("exp", 0))
        if not nbf - 300 <= now < exp or exp - nbf > PROOF_LIFETIME_MAX.total_seconds():
            problems.append("lifetime")
        if problems:
            raise GraphError(f"Graph refused the proof of possession: {', '.join(problems)}.")


# --------------------------------------------------------------------------------------------------
# Client-assertion sign-ins


class FakeAssertionProbe:
    """`AssertionProbe` over a `FakeKeyDirectory`: a sign-in works with an assertion signed by the
    key of a valid certificate on the app, once that key has "propagated"."""

    def __init__(self, directory: FakeKeyDirectory, clock: Clock, *, propagation_probes: int = 0) -> None:
        self._directory = directory
        self._clock = clock
        self.propagation_probes = propagation_probes
        self._seen: dict[str, int] = {}
        self._refusals: list[tuple[int | None, bool]] = []
        self.probes = 0
        self.assertions: list[str] = []  # every assertion presented (to assert that none leaked)

    def refuse(self, code: int, *, times: int = 1) -> None:
        self._refusals.extend([(code, False)] * times)

    def token_endpoint(self, tenant_id: str) -> str:
        return f"https://login.fake/{tenant_id}/oauth2/v2.0/token"

    async def probe_assertion(
        self, tenant_id: str, app_id: str, assertion: Sensitive, *, within: float | None = None
    ) -> ProbeResult:
        self.probes += 1
        self.assertions.append(assertion.reveal())
        if self._refusals:
            code, transient = self._refusals.pop(0)
            return ProbeResult(ok=False, code=code, transient=transient, message=f"AADSTS{code}")
        header, claims, signing_input, signature = _parse_jwt(assertion.reveal())
        now = self._clock.now()
        try:
            app = await self._directory.get_key_application(app_id)
        except ApplicationNotFoundError:
            return ProbeResult(ok=False, code=700016, message="AADSTS700016")
        match = None
        for key in app.keys:
            der = self._directory.der_of(app_id, key.key_id)
            if der is not None and x5t_s256(der) == header.get("x5t#S256"):
                match = (key, der)
        if match is None:
            return ProbeResult(ok=False, code=700027, message="AADSTS700027: key not found")
        key, der = match
        if not _verify(der, signing_input, signature):
            return ProbeResult(ok=False, code=700027, message="AADSTS700027: signature")
        stamp = int(now.timestamp())
        if (
            claims.get("aud") != self.token_endpoint(tenant_id)
            or claims.get("iss") != app_id
            or claims.get("sub") != app_id
        ):
            return ProbeResult(ok=False, code=700021, message="AADSTS700021: claims")
        if not int(claims["nbf"]) - 300 <= stamp < int(claims["exp"]) or not claims.get("jti"):
            return ProbeResult(ok=False, code=700024, message="AADSTS700024")
        if not key.is_valid(now):
            return ProbeResult(ok=False, code=7000274, message="AADSTS7000274: key expired")
        seen = self._seen.get(key.key_id, 0)
        self._seen[key.key_id] = seen + 1
        if seen < self.propagation_probes:
            return ProbeResult(ok=False, code=700027, message="AADSTS700027: key not found")
        return ProbeResult(ok=True)


# The fakes really are the ports (mypy checks these assignments).
def _conforms(clock: Clock) -> None:
    vault: CertificateVault = FakeCertificateVault("kv", clock)
    directory: KeyDirectory = FakeKeyDirectory(clock)
    probe: AssertionProbe = FakeAssertionProbe(FakeKeyDirectory(clock), clock)
    del vault, directory, probe
