"""Whether the stored value is a certificate, and which: the facts a certificate diagnosis compares.

A Key Vault *certificate* keeps its certificate and private key in the secret of the same name
(content type ``application/x-pkcs12``: base64 of a PFX without password, or ``application/x-pem-file``),
and people store PEM files as plain secrets too. A consumer that reads such a secret signs client
assertions with it, so the diagnosis compares its thumbprint with the app's ``keyCredentials``.

Like :func:`.checks.value_shape` this looks at the value and returns only what is public anyway:
thumbprints (Graph lists them), subject and validity dates, and whether a private key is present.
Never the key, never the certificate's bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from rotation.domain.model import Sensitive

PEM_CONTENT_TYPE: Final = "application/x-pem-file"
PKCS12_CONTENT_TYPE: Final = "application/x-pkcs12"
_PEM_CERTIFICATE: Final = "-----BEGIN CERTIFICATE-----"
_PEM_PRIVATE_KEY_END: Final = "PRIVATE KEY-----"
#: Shorter than any DER certificate: a client secret (40 characters) is never tried as a PFX.
_MIN_PFX_BASE64: Final = 400


@dataclass(frozen=True)
class StoredCertificate:
    """The certificate in a stored value: public facts only."""

    format: str  # "PEM" or "PKCS#12"
    thumbprint: str  # SHA-1 of the DER, upper-case hex: what Graph's customKeyIdentifier and x5t name
    thumbprint_sha256: str  # SHA-256 of the DER, upper-case hex: what x5t#S256 names
    subject: str
    not_before: datetime
    not_after: datetime
    has_private_key: bool

    def is_expired(self, now: datetime) -> bool:
        return self.not_after <= now

    def not_yet_valid(self, now: datetime) -> bool:
        return self.not_before > now


def stored_certificate(value: Sensitive, content_type: str | None = None) -> StoredCertificate | None:
    """The certificate ``value`` holds (PEM, or base64 PKCS#12 without password), else ``None``."""
    text = value.reveal().strip()
    if _PEM_CERTIFICATE in text:
        return _from_pem(text)
    kind = (content_type or "").strip().lower()
    if kind == PKCS12_CONTENT_TYPE or len(text) >= _MIN_PFX_BASE64:
        return _from_pkcs12(text)
    return None


def _from_pem(text: str) -> StoredCertificate | None:
    start = text.index(_PEM_CERTIFICATE)
    try:
        certificate = x509.load_pem_x509_certificate(text[start:].encode("ascii", errors="replace"))
    except ValueError:
        return None
    return _facts("PEM", certificate, has_private_key=_PEM_PRIVATE_KEY_END in text)


def _from_pkcs12(text: str) -> StoredCertificate | None:
    try:
        data = base64.b64decode(text, validate=True)
        key, certificate, _ = pkcs12.load_key_and_certificates(data, None)
    except (binascii.Error, ValueError, TypeError):
        return None  # not base64, not a PFX, or one with a password: not something to compare
    if certificate is None:
        return None
    return _facts("PKCS#12", certificate, has_private_key=key is not None)


def _facts(kind: str, certificate: x509.Certificate, *, has_private_key: bool) -> StoredCertificate:
    der = certificate.public_bytes(Encoding.DER)
    return StoredCertificate(
        format=kind,
        thumbprint=hashlib.sha1(der).hexdigest().upper(),  # noqa: S324 - the thumbprint Entra names, not a MAC
        thumbprint_sha256=hashlib.sha256(der).hexdigest().upper(),
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc.astimezone(UTC),
        not_after=certificate.not_valid_after_utc.astimezone(UTC),
        has_private_key=has_private_key,
    )
