"""The JWTs a certificate rotation has Key Vault sign (`rotation.domain.assertions`): formats, and a
signature over the digest that verifies as RS256 of the whole signing input."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from rotation.adapters.graph_keys import custom_key_thumbprint
from rotation.domain import policy
from rotation.domain.assertions import (
    PROOF_AUDIENCE,
    client_assertion,
    possession_proof,
    sha1_thumbprint,
    x5t,
    x5t_s256,
)
from rotation.domain.certificates import KeyCredential, normal_thumbprint
from rotation.domain.model import ProbeResult, Sensitive
from tests.certificate_fakes import self_signed

from .samples import APP_ID, NOW

OBJECT_ID = "0f0f0f0f-1111-2222-3333-444444444444"


def _part(segment: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def test_the_addkey_proof_has_graphs_audience_the_object_id_and_at_most_ten_minutes() -> None:
    _, der = self_signed("CN=t", NOW - timedelta(days=1), NOW + timedelta(days=30))
    draft = possession_proof(OBJECT_ID, sha1_thumbprint(der), NOW)
    header, claims = (_part(s) for s in draft.signing_input.split("."))
    assert header == {"alg": "RS256", "typ": "JWT", "x5t": x5t(sha1_thumbprint(der))}
    assert base64.urlsafe_b64decode(str(header["x5t"]) + "=") == hashlib.sha1(der, usedforsecurity=False).digest()
    assert claims["aud"] == PROOF_AUDIENCE == "00000002-0000-0000-c000-000000000000"
    assert claims["iss"] == OBJECT_ID
    assert claims["exp"] == claims["nbf"] + 600 == int(NOW.timestamp()) + 600  # type: ignore[operator]
    with pytest.raises(ValueError):
        possession_proof(OBJECT_ID, sha1_thumbprint(der), NOW, lifetime=timedelta(minutes=11))


def test_the_client_assertion_names_the_token_endpoint_and_the_client_with_x5t_s256() -> None:
    _, der = self_signed("CN=t", NOW - timedelta(days=1), NOW + timedelta(days=30))
    endpoint = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
    one = client_assertion(APP_ID, endpoint, der, NOW)
    two = client_assertion(APP_ID, endpoint, der, NOW)
    header, claims = (_part(s) for s in one.signing_input.split("."))
    assert header == {"alg": "RS256", "typ": "JWT", "x5t#S256": x5t_s256(der)}
    assert base64.urlsafe_b64decode(str(header["x5t#S256"]) + "=") == hashlib.sha256(der).digest()
    assert claims["aud"] == endpoint and claims["iss"] == claims["sub"] == APP_ID
    assert claims["nbf"] == claims["iat"] == int(NOW.timestamp()) and claims["exp"] == claims["nbf"] + 300
    assert _part(two.signing_input.split(".")[1])["jti"] != claims["jti"]  # every assertion is new


def test_a_signature_over_the_digest_verifies_as_rs256_of_the_signing_input() -> None:
    key, der = self_signed("CN=t", NOW - timedelta(days=1), NOW + timedelta(days=30))
    draft = possession_proof(OBJECT_ID, sha1_thumbprint(der), NOW)
    assert draft.digest == hashlib.sha256(draft.signing_input.encode()).digest()
    signature = key.sign(draft.digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))  # what Key Vault does
    token = draft.signed(signature)
    assert isinstance(token, Sensitive) and str(token) == "<redacted>"
    head, body, sig = token.reveal().split(".")
    public = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
        f"{head}.{body}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    with pytest.raises(ValueError):
        draft.signed(b"")


def test_thumbprints_are_normalised_from_hex_or_bytes() -> None:
    raw = bytes(range(20))
    assert normal_thumbprint(raw) == raw.hex().upper() == normal_thumbprint(raw.hex())
    assert normal_thumbprint("ab:" * 19 + "ab") == "AB" * 20
    assert normal_thumbprint(b"short") is None and normal_thumbprint("xyz") is None


def test_a_certificate_not_propagated_yet_keeps_validation_going_until_it_signs_in() -> None:
    """AADSTS700027 (key not found) is what Entra answers for seconds after addKey: waited out."""
    going = policy.ValidationProgress(needed=1, deadline_seconds=60).after(ProbeResult(ok=False, code=700027), 1.0)
    assert going.verdict is policy.Verdict.CONTINUE and not going.last_transient
    assert going.after(ProbeResult(ok=True), 2.0).verdict is policy.Verdict.PASSED


def test_graphs_custom_key_identifier_reads_as_the_thumbprint_whichever_way_it_was_stored() -> None:
    thumbprint = "52ED9B5038A47B9E2E2190715CC238359D4F8F73"
    as_msgraph_reads_the_hex_text = base64.b64decode(thumbprint)
    assert custom_key_thumbprint(as_msgraph_reads_the_hex_text) == thumbprint
    assert custom_key_thumbprint(bytes.fromhex(thumbprint)) == thumbprint
    assert custom_key_thumbprint(None) is None and custom_key_thumbprint(b"\x00" * 7) is None


def test_a_key_issued_by_a_clock_slightly_ahead_still_counts_as_valid_within_the_skew() -> None:
    key = KeyCredential("k", start=NOW + timedelta(minutes=2), end=NOW + timedelta(days=30))
    assert not key.is_valid(NOW)
    assert key.is_valid(NOW, skew=timedelta(minutes=5))
    assert not KeyCredential("k", start=NOW - timedelta(days=40), end=NOW - timedelta(days=1)).is_valid(NOW)
