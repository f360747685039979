"""The two JWTs a certificate rotation signs through Key Vault, built without any private key.

- The **proof of possession** Graph's ``addKey``/``removeKey`` want: signed by the private key of one
  of the app's existing valid certificates, header ``x5t`` (base64url of that certificate's SHA-1
  thumbprint), claims ``aud`` = ``00000002-0000-0000-c000-000000000000`` (the legacy Azure AD Graph
  resource, which is what the API checks), ``iss`` = the application's object id, ``nbf`` and ``exp``
  at most 10 minutes later.
- The **client assertion** Entra's token endpoint takes in place of a secret
  (``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``): header
  ``x5t#S256`` (base64url of the certificate's SHA-256 thumbprint), claims ``aud`` = the token
  endpoint, ``iss`` = ``sub`` = the client id, a unique ``jti``, ``nbf``, ``iat`` and ``exp``.

Both are RS256: the signature is RSASSA-PKCS1-v1_5 over the SHA-256 digest of the signing input
``base64url(header).base64url(payload)``. :class:`UnsignedJwt` gives that digest to the caller, who
has Key Vault sign it (``keys/{name}/{version}/sign``), and :meth:`UnsignedJwt.signed` joins the
signature on. A signed JWT authenticates as the app for its lifetime, so it only ever travels as
:class:`~rotation.domain.model.Sensitive`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from rotation.domain.model import Sensitive, ensure_utc

#: The audience Graph requires of an addKey/removeKey proof (Azure AD Graph's application id).
PROOF_AUDIENCE: Final = "00000002-0000-0000-c000-000000000000"
#: Graph refuses a proof whose ``exp`` is more than 10 minutes after its ``nbf``.
PROOF_LIFETIME_MAX: Final = timedelta(minutes=10)
#: A client assertion is used at once; a short life limits what a copy could do.
ASSERTION_LIFETIME: Final = timedelta(minutes=5)
ALGORITHM: Final = "RS256"


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sha1_thumbprint(der: bytes) -> str:
    """The certificate's SHA-1 thumbprint as upper-case hex (what Graph and Key Vault list)."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def x5t(thumbprint_hex: str) -> str:
    """The ``x5t`` header from a SHA-1 thumbprint in hex."""
    return b64url(bytes.fromhex(thumbprint_hex))


def x5t_s256(der: bytes) -> str:
    """The ``x5t#S256`` header: base64url of the SHA-256 digest of the certificate's DER."""
    return b64url(hashlib.sha256(der).digest())


def _seconds(value: datetime) -> int:
    return int(ensure_utc(value).timestamp())


def _segment(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())


@dataclass(frozen=True)
class UnsignedJwt:
    """A JWT's header and claims, waiting for the signature Key Vault makes over :attr:`digest`."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signing_input", f"{_segment(self.header)}.{_segment(self.claims)}")

    @property
    def digest(self) -> bytes:
        """SHA-256 of the signing input: what RS256 signs."""
        return hashlib.sha256(self.signing_input.encode("ascii")).digest()

    def signed(self, signature: bytes) -> Sensitive:
        """The compact JWT: a credential from here on, so it is wrapped."""
        if not signature:
            raise ValueError("an empty signature cannot complete a JWT")
        return Sensitive(f"{self.signing_input}.{b64url(signature)}")


def possession_proof(
    object_id: str, signer_thumbprint: str, now: datetime, *, lifetime: timedelta = PROOF_LIFETIME_MAX
) -> UnsignedJwt:
    """The proof for ``addKey``/``removeKey`` on the app with ``object_id``, to be signed by the key
    of the certificate with ``signer_thumbprint`` (SHA-1 hex), one the app already has and that is valid."""
    if lifetime <= timedelta(0) or lifetime > PROOF_LIFETIME_MAX:
        raise ValueError(f"a proof lives at most {PROOF_LIFETIME_MAX}, not {lifetime}")
    start = ensure_utc(now).replace(microsecond=0)
    header = {"alg": ALGORITHM, "typ": "JWT", "x5t": x5t(signer_thumbprint)}
    claims = {
        "aud": PROOF_AUDIENCE,
        "iss": object_id,
        "nbf": _seconds(start),
        "exp": _seconds(start + lifetime),
    }
    return UnsignedJwt(header, claims)


def client_assertion(
    client_id: str,
    token_endpoint: str,
    certificate_der: bytes,
    now: datetime,
    *,
    lifetime: timedelta = ASSERTION_LIFETIME,
    jti: str | None = None,
) -> UnsignedJwt:
    """A client assertion for ``client_id`` at ``token_endpoint`` (``…/{tenant}/oauth2/v2.0/token``),
    to be signed by the key of the certificate whose DER this is."""
    start = ensure_utc(now).replace(microsecond=0)
    header = {"alg": ALGORITHM, "typ": "JWT", "x5t#S256": x5t_s256(certificate_der)}
    claims = {
        "aud": token_endpoint,
        "iss": client_id,
        "sub": client_id,
        "jti": jti or str(uuid.uuid4()),
        "nbf": _seconds(start),
        "iat": _seconds(start),
        "exp": _seconds(start + lifetime),
    }
    return UnsignedJwt(header, claims)
