"""Checks for a stored *certificate* (issue 15): what a consumer signing client assertions with it meets.

A consumer that reads a certificate from the vault (a Key Vault certificate's secret, or a PEM stored
as a secret) signs a client assertion whose header names the certificate by thumbprint (``x5t``,
``x5t#S256``). Entra looks that thumbprint up among the app's ``keyCredentials``:

- the app has only client secrets, or none of its certificates has the thumbprint: AADSTS700027
  ("The certificate with identifier used to sign the client assertion is not registered on
  application. [Reason - The key was not found.]"), the usual cause being a certificate renewed on
  one side only;
- the app's credential for it is outside its validity window (expired, not started): AADSTS1000502;
- the assertion's ``nbf``/``exp`` come from the signing machine's clock: a skewed clock gives AADSTS700024.

The reverse case, a secret stored for an app that has only certificates (AADSTS7000215), is
:func:`.credentials.check_app_credentials`. Pure functions, like every check module: the certificate
facts come from :mod:`.certificate_value`, the app's certificates from Graph, Entra's clock from the
``Date`` of its OpenID configuration answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from rotation.domain import aadsts
from rotation.domain.listing import CertificateCredential
from rotation.domain.model import format_utc
from rotation.tools.diagnose.certificate_value import StoredCertificate
from rotation.tools.diagnose.credentials import PROPAGATION_WINDOW
from rotation.tools.diagnose.facts import Observed
from rotation.tools.diagnose.results import Check, Status
from rotation.tools.diagnose.wording import days_between, in_days, skip

#: Entra's tolerance for a client assertion's times is not documented; libraries build assertions
#: that live 5-10 minutes, so a clock this far off makes a fresh assertion expired or not yet valid.
CLOCK_SKEW_LIMIT: Final = timedelta(minutes=5)
_UPLOAD = (
    "Upload the certificate's public part (.cer) to the app (Certificates & secrets > Certificates, or az ad "
    "app credential reset --id {app} --cert @certificate.cer --append), or configure the consumer with a "
    "certificate the app lists."
)


def _expired(credential: CertificateCredential, now: datetime) -> bool:
    return credential.end is not None and credential.end <= now


def _started(credential: CertificateCredential, now: datetime) -> bool:
    return credential.start is None or credential.start <= now


def _label(credential: CertificateCredential, now: datetime) -> str:
    name = f" '{credential.display_name}'" if credential.display_name else ""
    return f"{credential.key_id}{name} thumbprint {credential.thumbprint or '?'} {in_days(credential.end, now)}"


def _stored(certificate: StoredCertificate) -> str:
    return f"the stored {certificate.format} certificate (thumbprint {certificate.thumbprint}, {certificate.subject})"


def matched_key_credential(seen: Observed, certificate: StoredCertificate) -> CertificateCredential | None:
    """The app's certificate with the stored certificate's thumbprint."""
    if seen.app is None:
        return None
    wanted = certificate.thumbprint.upper()
    return next((k for k in seen.app.key_credentials if (k.thumbprint or "").upper() == wanted), None)


def check_app_certificates(seen: Observed, certificate: StoredCertificate) -> Check:
    """The reverse of a secret sent to a certificate-only app: a certificate for an app without one."""
    title = "The app has certificates, and not all are expired"
    app = seen.app
    if app is None:
        return skip("app.certificates", title, "the app was not read")
    now = seen.now
    keys = app.key_credentials
    entry = aadsts.lookup(700027)
    if not keys:
        secrets = len(app.password_credentials)
        evidence = f"no certificates, {secrets} client secret(s)" if secrets else "no certificates and no secrets"
        return Check(
            "app.certificates",
            title,
            Status.FAIL,
            f"{_stored(certificate)} is for app {app.app_id}, which has {evidence}",
            "A client assertion signed with this certificate names a key the app does not have: Entra answers "
            "AADSTS700027 (the key was not found)"
            + (", whatever the certificate; the app signs in with secrets." if secrets else "."),
            _UPLOAD.format(app=app.app_id)
            + (" Or store one of the app's client secret values instead." if secrets else "")
            + (f" ({entry.docs_url})" if entry else ""),
        )
    listing = "; ".join(_label(k, now) for k in keys)
    if all(_expired(k, now) for k in keys):
        return Check(
            "app.certificates",
            title,
            Status.FAIL,
            f"all {len(keys)} certificate(s) expired: {listing}",
            "Entra accepts no assertion signed with a certificate whose credential on the app is outside its "
            "validity window (AADSTS1000502).",
            "Renew the certificate and upload the new one to the app (a managed Key Vault certificate: "
            "python -m rotation rotate VAULT NAME).",
        )
    return Check("app.certificates", title, Status.PASS, f"{len(keys)} certificate(s): {listing}")


def check_certificate_match(seen: Observed, certificate: StoredCertificate) -> Check:
    """The thumbprint the consumer's assertion will carry is one of the app's."""
    title = "The stored certificate is one of the app's (by thumbprint)"
    app = seen.app
    if app is None:
        return skip("certificate.match", title, "the app was not read")
    if not app.key_credentials:
        return skip("certificate.match", title, "the app has no certificates to compare with")
    found = matched_key_credential(seen, certificate)
    if found is not None:
        return Check("certificate.match", title, Status.PASS, f"{_label(found, seen.now)} is {_stored(certificate)}")
    if not any(k.thumbprint for k in app.key_credentials):
        return Check(
            "certificate.match",
            title,
            Status.WARN,
            f"Graph shows no thumbprint (customKeyIdentifier) for the app's {len(app.key_credentials)} "
            f"certificate(s), so {_stored(certificate)} cannot be compared",
            "Someone set a custom key identifier on the app's certificates.",
            "Compare the thumbprints in the portal (Certificates & secrets > Certificates).",
        )
    listing = "; ".join(_label(k, seen.now) for k in app.key_credentials)
    return Check(
        "certificate.match",
        title,
        Status.FAIL,
        f"thumbprint {certificate.thumbprint} is not on app {app.app_id}; its certificates: {listing}",
        "The consumer's assertion names a certificate the app does not have: Entra answers AADSTS700027 (the key "
        "was not found). Usually the certificate was renewed on one side only: a new certificate in the vault "
        "and the old one on the app, or the reverse.",
        _UPLOAD.format(app=app.app_id),
    )


def check_private_key(certificate: StoredCertificate) -> Check:
    """A consumer signs its assertion with the private key: a certificate alone signs nothing."""
    title = "The stored certificate comes with its private key"
    if certificate.has_private_key:
        return Check("certificate.key", title, Status.PASS, f"{certificate.format} with the private key")
    return Check(
        "certificate.key",
        title,
        Status.FAIL,
        f"{_stored(certificate)} holds no private key",
        "A consumer reading this secret has only the public certificate and cannot sign a client assertion "
        "(a non-exportable Key Vault certificate's key stays in the vault: it signs with the Key Vault key, not "
        "with this secret).",
        "Store the certificate with its private key (PFX or PEM with the key), or have the consumer sign through "
        "Key Vault (the key behind the certificate, CryptographyClient.sign).",
    )


def check_certificate_validity(seen: Observed, certificate: StoredCertificate, rotate_before_days: int) -> Check:
    """The stored certificate and its credential on the app are both valid now."""
    title = "That certificate is valid now (in the vault and on the app)"
    now = seen.now
    if certificate.is_expired(now):
        return Check(
            "certificate.validity",
            title,
            Status.FAIL,
            f"{_stored(certificate)} expired on {format_utc(certificate.not_after)}",
            "An expired certificate signs no assertion Entra accepts.",
            "Renew the certificate (a new Key Vault certificate version), upload it to the app and let consumers "
            "read the new version.",
        )
    if certificate.not_yet_valid(now):
        return Check(
            "certificate.validity",
            title,
            Status.FAIL,
            f"{_stored(certificate)} is valid only from {format_utc(certificate.not_before)}",
            "The certificate is not valid yet.",
            "Wait for its start, or store a certificate that is valid now.",
        )
    found = matched_key_credential(seen, certificate)
    if found is None:
        return skip("certificate.validity", title, "the certificate is not on the app (or the app was not read)")
    label = _label(found, now)
    if _expired(found, now):
        return Check(
            "certificate.validity",
            title,
            Status.FAIL,
            f"the app's credential {label}",
            "The app's credential for this certificate has expired: Entra answers AADSTS1000502 (outside its "
            "validity window), although the certificate in the vault may still be valid.",
            "Upload the certificate again with a later end date (or a renewed certificate), and remove the expired "
            "credential.",
        )
    if not _started(found, now):
        return Check(
            "certificate.validity",
            title,
            Status.FAIL,
            f"the app's credential {found.key_id} starts only at {format_utc(found.start) if found.start else '?'}",
            "Entra refuses assertions with this certificate until then (AADSTS1000502).",
            "Wait for the start date, or upload the certificate with a start of now.",
        )
    if found.start is not None and now - found.start < PROPAGATION_WINDOW:
        return Check(
            "certificate.validity",
            title,
            Status.WARN,
            f"the app's credential {found.key_id} was added {int((now - found.start).total_seconds())} s ago",
            "A new certificate reaches Entra's replicas over seconds to minutes; until then some sign-ins get "
            "AADSTS700027.",
            "Wait a few minutes and try again before changing anything.",
        )
    end = min(d for d in (certificate.not_after, found.end) if d is not None)
    if days_between(end, now) <= rotate_before_days:
        return Check(
            "certificate.validity",
            title,
            Status.WARN,
            f"{label}; the stored certificate ends {format_utc(certificate.not_after)}",
            "The certificate is inside its rotation window.",
            "Renew it soon; a managed Key Vault certificate is renewed by the next sweep.",
        )
    return Check("certificate.validity", title, Status.PASS, f"{label}; stored certificate {in_days(end, now)}")


def check_assertion_clock(seen: Observed) -> Check:
    """A client assertion's nbf/exp come from the signer's clock; compare this machine's with Entra's."""
    title = "This machine's clock agrees with Entra's (assertion lifetime, AADSTS700024)"
    lookup = seen.tenant
    if lookup is None or lookup.server_time is None or lookup.local_time is None:
        return skip("certificate.clock", title, "Entra's clock was not read (no tenant answer with a Date header)")
    skew = lookup.local_time - lookup.server_time
    seconds = int(skew.total_seconds())
    direction = "ahead of" if seconds > 0 else "behind"
    evidence = f"this machine's clock is {abs(seconds)} s {direction} Entra's ({format_utc(lookup.server_time)})"
    if abs(skew) > CLOCK_SKEW_LIMIT:
        entry = aadsts.lookup(700024)
        return Check(
            "certificate.clock",
            title,
            Status.WARN,
            evidence,
            "An assertion signed on a machine with this clock is expired or not yet valid when Entra checks it "
            "(AADSTS700024); the consumer's own clock is what counts, and it may be off the same way.",
            (entry.remedy if entry else "Sync the clock (NTP).") + " Then diagnose again.",
        )
    return Check(
        "certificate.clock",
        title,
        Status.PASS,
        evidence + "; consumers must build a fresh, short-lived assertion per token request (AADSTS700024 otherwise)",
    )


def certificate_checks(seen: Observed, certificate: StoredCertificate, rotate_before_days: int) -> tuple[Check, ...]:
    """Every certificate check, in the order a client-assertion sign-in depends on them."""
    return (
        check_app_certificates(seen, certificate),
        check_certificate_match(seen, certificate),
        check_private_key(certificate),
        check_certificate_validity(seen, certificate, rotate_before_days),
        check_assertion_clock(seen),
    )
