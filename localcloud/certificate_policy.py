"""Key Vault certificate policies and the X.509 they describe, for the local cloud's `Self` issuer.

A policy is kept as Key Vault writes it on the wire (`key_props`, `secret_props`, `x509_props`,
`lifetime_actions`, `issuer`), with the service's defaults filled in. From it come a real PKCS#10
request, a self-signed certificate (SHA-256) valid for the policy's calendar months, the key
operations of its key, and the secret value Key Vault serves for it (PKCS#12 or PEM).
"""

from __future__ import annotations

import base64
import calendar
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from localcloud.keyvault import INVALID_PROPERTY
from localcloud.keyvault_keys import RSA_SIZES
from localcloud.state import CertificateRecord

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
CONTENT_TYPES = (PKCS12, PEM)
SELF_ISSUER = "Self"
UNKNOWN_ISSUER = "Unknown"
DEFAULT_VALIDITY_MONTHS = 12
# Key Vault's defaults for a policy that leaves them out (what `CertificatePolicy.get_default()` and
# the portal's defaults show): server and client authentication, signature and key encipherment.
DEFAULT_EKUS = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
DEFAULT_KEY_USAGE = ["digitalSignature", "keyEncipherment"]
DEFAULT_LIFETIME_ACTIONS = [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}]

_KEY_USAGE_FLAGS = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
_SUBJECT_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "E": NameOID.EMAIL_ADDRESS,
}


# --- policy --------------------------------------------------------------------------------------
def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months, the day clamped to the target month's length."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def parse_subject(subject: str) -> x509.Name | None:
    """An X.500 subject as Key Vault policies write it (`CN=app, O=Contoso`), or None if malformed."""
    attributes = []
    for part in (p.strip() for p in subject.split(",")):
        key, sep, value = part.partition("=")
        oid = _SUBJECT_ATTRIBUTES.get(key.strip().upper())
        if not sep or oid is None or not value.strip():
            return None
        attributes.append(x509.NameAttribute(oid, value.strip()))
    return x509.Name(attributes) if attributes else None


def normalise_policy(raw: Any, previous: dict[str, Any] | None = None) -> dict[str, Any] | str:
    """The stored policy (wire names, defaults filled in) of a create or update body, merged over
    `previous` section by section as a PATCH of the policy does; or the BadParameter text."""
    if not isinstance(raw, dict):
        return INVALID_PROPERTY
    base = previous or {}
    key_props = {"exportable": True, "kty": "RSA", "key_size": 2048, "reuse_key": False, **base.get("key_props", {})}
    secret_props = {"contentType": PKCS12, **base.get("secret_props", {})}
    x509_props: dict[str, Any] = {
        "ekus": list(DEFAULT_EKUS),
        "key_usage": list(DEFAULT_KEY_USAGE),
        "validity_months": DEFAULT_VALIDITY_MONTHS,
        "basic_constraints": {"ca": False},
        **base.get("x509_props", {}),
    }
    issuer = {**base.get("issuer", {"name": SELF_ISSUER})}
    for section, target in (
        ("key_props", key_props),
        ("secret_props", secret_props),
        ("x509_props", x509_props),
        ("issuer", issuer),
    ):
        value = raw.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            return INVALID_PROPERTY
        target.update({k: v for k, v in value.items() if v is not None})
    if key_props["kty"] not in ("RSA", "RSA-HSM"):
        return f"The local cloud issues RSA certificates only, not kty '{key_props['kty']}'."
    if key_props["key_size"] not in RSA_SIZES:
        return f"Unsupported key size: {key_props['key_size']}. Supported: 2048, 3072, 4096."
    if not isinstance(key_props["exportable"], bool) or not isinstance(key_props["reuse_key"], bool):
        return INVALID_PROPERTY
    if secret_props["contentType"] not in CONTENT_TYPES:
        return f"Invalid content type '{secret_props['contentType']}'; use {PKCS12} or {PEM}."
    months = x509_props["validity_months"]
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 1200:
        return "The validity_months of the policy must be a whole number of months (1 to 1200)."
    subject = x509_props.get("subject")
    sans = x509_props.get("sans")
    if subject is not None and (not isinstance(subject, str) or parse_subject(subject) is None):
        return f"Invalid subject: '{subject}'."
    if sans is not None and (
        not isinstance(sans, dict)
        or not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in sans.values())
    ):
        return INVALID_PROPERTY
    usage = x509_props["key_usage"]
    if not isinstance(usage, list) or not all(u in _KEY_USAGE_FLAGS for u in usage):
        return INVALID_PROPERTY
    ekus = x509_props["ekus"]
    if not isinstance(ekus, list) or not all(isinstance(e, str) for e in ekus):
        return INVALID_PROPERTY
    name = issuer.get("name")
    if not isinstance(name, str) or name.lower() not in (SELF_ISSUER.lower(), UNKNOWN_ISSUER.lower()):
        # Unverified wording; the local cloud knows no certificate authority.
        return f"Issuer '{name}' is not supported by the local cloud; use Self or Unknown."
    issuer["name"] = SELF_ISSUER if name.lower() == SELF_ISSUER.lower() else UNKNOWN_ISSUER
    actions = raw.get("lifetime_actions", base.get("lifetime_actions"))
    if actions is None:
        actions = DEFAULT_LIFETIME_ACTIONS if issuer["name"] == SELF_ISSUER else []
    if not isinstance(actions, list):
        return INVALID_PROPERTY
    return {
        "key_props": key_props,
        "secret_props": secret_props,
        "x509_props": x509_props,
        "lifetime_actions": [dict(a) for a in actions],
        "issuer": issuer,
    }


def key_operations(usage: list[str]) -> list[str]:
    """The key operations of a certificate's key, from its X.509 key usage."""
    ops: list[str] = []
    if {"digitalSignature", "nonRepudiation"} & set(usage):
        ops += ["sign", "verify"]
    if "keyEncipherment" in usage:
        ops += ["wrapKey", "unwrapKey"]
    if {"keyEncipherment", "dataEncipherment"} & set(usage):
        ops += ["encrypt", "decrypt"]
    return ops


# --- X.509 -----------------------------------------------------------------------------------------
def _subject_of(certificate: CertificateRecord) -> x509.Name:
    subject = certificate.policy["x509_props"].get("subject")
    parsed = parse_subject(subject) if subject else None  # the policy was checked: only a missing one is None
    return parsed or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, certificate.name)])


def _san(policy: dict[str, Any]) -> x509.SubjectAlternativeName | None:
    sans = policy["x509_props"].get("sans") or {}
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in sans.get("dns_names", [])]
    names += [x509.RFC822Name(e) for e in sans.get("emails", [])]
    names += [
        x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), _utf8_der(u)) for u in sans.get("upns", [])
    ]
    return x509.SubjectAlternativeName(names) if names else None


def _utf8_der(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > 127:
        raise ValueError("UPN too long")
    return bytes([0x0C, len(data)]) + data


def certificate_request(private_key: rsa.RSAPrivateKey, certificate: CertificateRecord) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject_of(certificate))
    san = _san(certificate.policy)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(private_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def self_signed(private_key: rsa.RSAPrivateKey, certificate: CertificateRecord, now: datetime) -> x509.Certificate:
    """The self-signed certificate of the policy, valid from `now` for its validity months."""
    policy = certificate.policy
    props = policy["x509_props"]
    not_before = now.astimezone(UTC).replace(microsecond=0)
    not_after = add_months(not_before, props["validity_months"])
    subject = _subject_of(certificate)
    usage = {flag: name in props["key_usage"] for name, flag in _KEY_USAGE_FLAGS.items()}
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
    )
    if any(usage.values()):
        builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if props["ekus"]:
        oids = [x509.ObjectIdentifier(e) for e in props["ekus"]]
        builder = builder.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
    san = _san(policy)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(private_key, hashes.SHA256())


def secret_value(private_key: rsa.RSAPrivateKey, cert: x509.Certificate, content_type: str, exportable: bool) -> str:
    """The certificate's secret as Key Vault serves it: base64 PKCS#12 without a password, or PEM
    (PKCS#8 key, then the certificate). A non-exportable key stays out: only the certificate."""
    key = private_key if exportable else None
    if content_type == PEM:
        parts = []
        if key is not None:
            parts.append(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ).decode("ascii")
            )
        parts.append(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        return "".join(parts)
    blob = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    return base64.b64encode(blob).decode("ascii")
