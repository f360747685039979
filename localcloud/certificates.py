"""Certificate credentials of app registrations: X.509 certificates as Entra keeps them.

An app's key credential is the public certificate (DER) only; its thumbprints name it in a client
assertion's or a proof's header (`x5t` = base64url SHA-1, `x5t#S256` = base64url SHA-256) and its
public key verifies their signatures (RS256 = PKCS#1 v1.5, PS256 = PSS, both with SHA-256). Its
validity defaults to the certificate's own dates, as `addKey` and the portal take them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from localcloud.state import Application, KeyCredential, World, new_guid

#: Signature algorithms Entra accepts on client assertions and proofs (RSA keys only, as Entra's
#: key credentials are RSA certificates).
ALGORITHMS = ("RS256", "PS256")


class MalformedJwt(ValueError):
    """Not a compact JWS with JSON header and claims (Entra's AADSTS50027, Graph's malformed proof)."""


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from DER or PEM bytes; ValueError for anything else."""
    text = data.lstrip()
    if text.startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(text)
    return x509.load_der_x509_certificate(data)


def certificate_der(data: bytes) -> bytes:
    """The DER encoding of a DER or PEM certificate (ValueError if it is neither)."""
    return load_certificate(data).public_bytes(serialization.Encoding.DER)


def new_key_credential(
    world: World,
    app: Application,
    certificate: bytes,
    *,
    display_name: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    replica_delays_seconds: Iterable[float] | None = None,
    on_service_principal: bool = False,
) -> KeyCredential:
    """Add a certificate (DER or PEM) to `app` as a key credential (the caller holds the lock).

    The display name defaults to the certificate's subject and the dates to its validity, as Graph
    fills them. Each replica learns it within the propagation window, as it learns a new password;
    `replica_delays_seconds` says exactly when instead (from now). `on_service_principal`: the
    certificate is the service principal's own, not the app registration's."""
    parsed = load_certificate(certificate)
    now = world.clock.now()
    if replica_delays_seconds is None:
        ready = world.replica_schedule()
    else:
        ready = [now + timedelta(seconds=d) for d in replica_delays_seconds]
    credential = KeyCredential(
        key_id=new_guid(),
        display_name=display_name if display_name is not None else parsed.subject.rfc4514_string(),
        start=start or parsed.not_valid_before_utc,
        end=end or parsed.not_valid_after_utc,
        certificate=parsed.public_bytes(serialization.Encoding.DER),
        replica_ready=ready,
    )
    (app.sp_certificates if on_service_principal else app.certificates).append(credential)
    return credential


def self_signed_certificate(common_name: str, start: datetime, end: datetime) -> bytes:
    """A throwaway self-signed RSA certificate (DER) whose private key nobody keeps: what an admin-seeded
    certificate "a human uploaded earlier" is, when its caller brings none."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
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
    return certificate.public_bytes(serialization.Encoding.DER)


# --- JWTs signed with a certificate's key -------------------------------------------------------
def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedJwt("not base64url") from exc


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class SignedJwt:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def thumbprint_hex(self) -> str:
        """The thumbprint the header names, upper-case hex (SHA-256 if given, else SHA-1), as Entra's
        messages quote it; empty if it names none."""
        for name in ("x5t#S256", "x5t"):
            value = _thumbprint_bytes(self.header.get(name))
            if value is not None:
                return value.hex().upper()
        return ""


def parse_jwt(token: str) -> SignedJwt:
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise MalformedJwt("not three segments")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJwt("not JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedJwt("not JSON objects")
    return SignedJwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url_decode(parts[2]))


def _thumbprint_bytes(value: Any) -> bytes | None:
    """A header thumbprint as bytes: base64url, with or without padding (MSAL pads it)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _b64url_decode(value.rstrip("="))
    except MalformedJwt:
        return None


def named_credential(jwt: SignedJwt, credentials: Iterable[KeyCredential]) -> KeyCredential | None:
    """The key credential the header's `x5t#S256` (preferred) or `x5t` names, if the app has it."""
    wanted256 = _thumbprint_bytes(jwt.header.get("x5t#S256"))
    wanted1 = _thumbprint_bytes(jwt.header.get("x5t"))
    for credential in credentials:
        if not credential.certificate:
            continue
        if wanted256 is not None and wanted256 == bytes.fromhex(credential.thumbprint_sha256):
            return credential
        if wanted1 is not None and wanted1 == bytes.fromhex(credential.thumbprint):
            return credential
    return None


def signed_by(jwt: SignedJwt, credential: KeyCredential) -> bool:
    """Whether the JWT's signature verifies with the certificate's public key under its `alg`."""
    algorithm = jwt.header.get("alg")
    if algorithm not in ALGORITHMS or not credential.certificate:
        return False
    public_key = load_certificate(credential.certificate).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    scheme: padding.AsymmetricPadding
    if algorithm == "PS256":
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    else:
        scheme = padding.PKCS1v15()
    try:
        public_key.verify(jwt.signature, jwt.signing_input, scheme, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def numeric_date(value: Any) -> datetime | None:
    """A JWT NumericDate (seconds since the epoch, integer or not) as a UTC datetime; None if absent
    or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
