"""Catalogue of AADSTS codes met when an app signs in with a client secret or a certificate
(client credentials, with a client assertion for a certificate).

Each entry says what the code means, what usually causes it, whether waiting can fix it, and what
a person should do. Sources: Microsoft's "Microsoft Entra authentication and authorization error
codes" reference, the error bodies the token endpoint returns, and errors users published.
Microsoft warns that codes and texts change over time, so an unknown code is "unknown", never a
guess; ``https://login.microsoftonline.com/error?code=N`` has the current text for any code.

:func:`parse_code` finds the code in what azure-identity raises. ``ClientAuthenticationError``
carries it only in text: the sync credentials say ``Authentication failed: AADSTS7000215: ...``,
the aio ones ``Microsoft Entra ID error '(invalid_client) AADSTS7000215: ...'`` and also keep the
HTTP response, whose JSON body has ``error_codes``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final, Literal

Classification = Literal["propagation", "transient", "permanent", "unknown"]

DOCS_URL: Final = "https://login.microsoftonline.com/error?code={code}"


@dataclass(frozen=True)
class AadstsCode:
    """One AADSTS code.

    ``retryable``: waiting alone can fix it (a service-side hiccup). ``transient_during_propagation``:
    waiting fixes it *only* right after a credential was added, while Entra replicates it (7000215
    for a secret, 700027 for a certificate); at any other time it is a wrong credential and waiting
    achieves nothing.
    """

    code: int
    title: str
    causes: tuple[str, ...]
    remedy: str
    retryable: bool = False
    transient_during_propagation: bool = False

    @property
    def docs_url(self) -> str:
        return DOCS_URL.format(code=self.code)

    @property
    def classification(self) -> Classification:
        if self.transient_during_propagation:
            return "propagation"
        return "transient" if self.retryable else "permanent"


_SECRET_PAGE = "the app registration's Certificates & secrets page"

_ENTRIES: Final = (
    AadstsCode(
        7000215,
        "Invalid client secret provided",
        (
            "the Secret ID (a GUID) was copied instead of the secret Value",
            "the value is mistyped, truncated, or has surrounding spaces or quotes",
            "the secret was deleted from the app, or belongs to a different app",
            "the secret was created moments ago and has not reached every Entra replica yet "
            "(seconds, sometimes up to 2 minutes)",
            "the app has only certificates (keyCredentials), so no client secret can sign in to it",
        ),
        "Copy the secret VALUE, not the Secret ID, from "
        + _SECRET_PAGE
        + " (the value is shown only once, right after creation; if it is lost, add a new secret or run a "
        "rotation). If the secret was just created, wait a minute or two and try again.",
        transient_during_propagation=True,
    ),
    AadstsCode(
        7000222,
        "The provided client secret keys are expired",
        ("every client secret the app was tried with is past its expiry date",),
        "Rotate now (an emergency rotation), or add a new client secret on "
        + _SECRET_PAGE
        + " and store its value; consider certificate credentials for long-lived services.",
    ),
    AadstsCode(
        700016,
        "Application not found in the directory",
        (
            "the client id is wrong (the ProviderAddress tag must be the Application (client) ID)",
            "the request went to the wrong tenant (check the TenantId tag or ROTATION_TENANT_ID)",
            "the app registration was deleted, or a multi-tenant app was never consented in that tenant",
        ),
        "Copy 'Application (client) ID' and 'Directory (tenant) ID' from the app registration's Overview "
        "page into the secret's ProviderAddress and TenantId tags.",
    ),
    AadstsCode(
        700011,
        "Application not found in the organization's tenant",
        ("the client app does not exist in the tenant the token was requested from",),
        "Check the client id (ProviderAddress) and the tenant (TenantId) on the app registration's Overview page.",
    ),
    AadstsCode(
        900023,
        "Tenant identifier is neither a valid DNS name nor a valid external domain",
        (
            "the tenant id is malformed: a typo, a placeholder left in, or a path such as 'oauth2' or "
            "'token' appended to the authority",
        ),
        "Set TenantId (or ROTATION_TENANT_ID) to the Directory (tenant) ID GUID or a verified domain such as "
        "contoso.onmicrosoft.com, and give AZURE_AUTHORITY_HOST as a bare host without a path.",
    ),
    AadstsCode(
        90002,
        "Tenant not found",
        (
            "no tenant has that id or domain",
            "the tenant lives in another cloud (a national cloud needs its own AZURE_AUTHORITY_HOST)",
            "a domain that is not registered with any tenant was used as the tenant",
        ),
        "Check the Directory (tenant) ID on the app's Overview page, and that AZURE_AUTHORITY_HOST points "
        "to the cloud the tenant lives in.",
    ),
    AadstsCode(
        7000218,
        "The request body must contain 'client_assertion' or 'client_secret'",
        ("no secret was sent: the stored value is empty, or the client read the wrong setting",),
        "Make sure the Key Vault secret holds the client secret value and the client actually passes it.",
    ),
    AadstsCode(
        7000112,
        "The application is disabled",
        ("an administrator disabled the app's service principal (enterprise application) in this tenant",),
        "Ask an Entra administrator to enable it again (Enterprise applications > the app > Properties); "
        "rotating the secret does not help.",
    ),
    AadstsCode(
        700025,
        "Client is public, so neither 'client_assertion' nor 'client_secret' should be presented",
        ("the app registration is configured as a public client, which may not authenticate with a secret",),
        "Use a confidential (web/daemon) app registration for secret-based sign-in, or stop sending a secret.",
    ),
    AadstsCode(
        50012,
        "Authentication failed (certificate or client assertion)",
        (
            "the client signed in with a certificate or client assertion, not a secret, and it was rejected: "
            "unauthorised subject or thumbprint, invalid chain or signature",
        ),
        "Check the certificate the client signs with: its thumbprint must be one of the app's certificates "
        "(keyCredentials) and still valid; `python -m rotation diagnose` compares them.",
    ),
    # Certificates and client assertions (issue 15). The error reference names the codes; the
    # wording and the causes follow what the token endpoint answers and the azure-identity
    # troubleshooting tables (ClientCertificateCredential, ClientAssertionCredential).
    AadstsCode(
        700027,
        "Client assertion failed signature validation (the signing certificate is not registered on the app)",
        (
            "the thumbprint in the assertion's x5t / x5t#S256 header names no certificate of the app "
            "('The certificate with identifier used to sign the client assertion is not registered on "
            "application. [Reason - The key was not found.]')",
            "the certificate was rotated on one side only: a new certificate signs, but the app still has the "
            "old one (or the reverse), or the certificate was removed from the app",
            "the app has only client secrets, and the client sends a certificate assertion",
            "x5t#S256 holds the base64 of the hex thumbprint instead of the base64url of the SHA-256 digest",
            "the certificate was added to the app moments ago and has not reached every Entra replica yet",
        ),
        "Upload the certificate the client signs with (its public .cer) to the app's Certificates & secrets "
        "page, or configure the client with a certificate whose thumbprint the app lists; check that x5t#S256 "
        "is the base64url SHA-256 of the certificate's DER. If it was just added, wait a minute or two.",
        transient_during_propagation=True,
    ),
    AadstsCode(
        7000274,
        "Client assertion contains an invalid signature",
        (
            "the assertion names a certificate the app has, but its signature does not verify with that "
            "certificate's key ('The provided signature value did not match the expected signature value'): "
            "signed with another private key than the certificate's",
            "the assertion was changed after it was signed (a header or claim rewritten), or signed with an "
            "algorithm other than the header's alg (RS256, PS256)",
        ),
        "Sign with the private key that belongs to the certificate named in the header (x5t / x5t#S256), and "
        "never change the assertion after signing; azure-identity's CertificateCredential does both.",
    ),
    AadstsCode(
        1000502,
        "The certificate used to sign the client assertion is outside its validity window",
        (
            "the app's credential for that certificate has expired (its endDateTime passed) or has not started",
            "the certificate was renewed in the vault, but the app still lists the old one's dates",
        ),
        "Upload the renewed certificate to the app (Certificates & secrets, or a managed Key Vault certificate's "
        "rotation) and sign with it; remove the expired credential.",
    ),
    AadstsCode(
        700024,
        "Client assertion is not within its valid time range",
        (
            "the assertion's exp is past or its nbf is in the future: the signing machine's clock is wrong "
            "(skew), or the assertion was cached or queued too long before it reached Entra",
            "a federated token used as the assertion expired before it was exchanged",
        ),
        "Sync the signing machine's clock (NTP), build a fresh assertion for every token request with a short "
        "lifetime (minutes), and do not cache it; this is not about the certificate's own validity.",
    ),
    AadstsCode(
        700021,
        "Client assertion application identifier does not match the client_id parameter",
        ("the assertion's iss and sub are not the client id the request names",),
        "Set both iss and sub of the assertion to the Application (client) ID, the same as client_id.",
    ),
    AadstsCode(
        700023,
        "Client assertion audience claim does not match the realm issuer",
        (
            "the assertion's aud is not the token endpoint of the tenant the request goes to (another tenant, "
            "another cloud, or a v1/v2 mismatch)",
            "the error reference also lists 700023 as InvalidResourcelessScope: a scope that names no resource",
        ),
        "Set aud to the token endpoint the request is sent to: "
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token; for a scope error request "
        "'<resource>/.default'.",
    ),
    AadstsCode(
        50027,
        "Invalid JWT token",
        (
            "the client assertion is malformed, or misses a required claim (sub, iss, aud, exp, jti)",
            "unexpected issuer or audience, or the assertion is not within its valid time range",
        ),
        "Build the assertion in Entra's certificate-credential format (header alg RS256/PS256 and x5t#S256; "
        "claims aud, iss = sub = client id, jti, nbf, exp), or let azure-identity's CertificateCredential "
        "build it.",
    ),
    AadstsCode(
        50048,
        "Subject mismatches issuer in the client assertion",
        ("the assertion's sub differs from its iss",),
        "Set both iss and sub to the Application (client) ID.",
    ),
    AadstsCode(
        70002,
        "Error validating the client credentials",
        (
            "the client secret does not match the expected value for this client (an older, catch-all form of 7000215)",
            "the client authenticated in a way this app does not allow (a public client, or no credential of "
            "that kind on the app)",
        ),
        "Check which credential the client sends and that the app has one of that kind: a secret value "
        "from Certificates & secrets, or a certificate the app lists.",
    ),
    AadstsCode(
        500011,
        "Resource principal not found in the tenant",
        (
            "the scope names an API that has no service principal in this tenant",
            "the request went to the wrong tenant, or the scope has a typo",
        ),
        "Check the requested scope (for app-only tokens '<resource>/.default') and the tenant; an "
        "administrator may need to add the resource to the tenant.",
    ),
    AadstsCode(
        50059,
        "No tenant-identifying information found in the request",
        ("the token was requested from /common (or without a tenant), which cannot issue app-only tokens",),
        "Request the token from a tenant-specific authority: set the TenantId tag or ROTATION_TENANT_ID.",
    ),
    AadstsCode(
        90014,
        "A required field is missing from the request",
        ("the token request lacks an expected parameter (for example client_id or grant_type)",),
        "Check the client's configuration; with azure-identity make sure tenant, client id and secret are all set.",
    ),
    AadstsCode(
        70011,
        "The requested scope is invalid",
        ("client credentials need a scope of the form '<resource>/.default'",),
        "Request '<resource>/.default', e.g. 'https://graph.microsoft.com/.default'.",
    ),
    AadstsCode(
        53003,
        "Blocked by Conditional Access",
        ("a Conditional Access policy for workload identities does not allow this sign-in",),
        "Review the policy that applied in the service principal sign-in logs, or ask your Entra administrator.",
    ),
    AadstsCode(
        50196,
        "Loop detected",
        ("the client sent the same request too often in a short time",),
        "Slow down and cache tokens; the rotator backs off between validation attempts.",
        retryable=True,
    ),
    AadstsCode(
        50033,
        "Retryable error",
        ("a transient error inside Entra ID",),
        "Try again shortly.",
        retryable=True,
    ),
    AadstsCode(
        90024,
        "Request budget exceeded",
        ("a transient error inside Entra ID",),
        "Try again shortly.",
        retryable=True,
    ),
    AadstsCode(
        90033,
        "Directory service unavailable",
        ("the directory service behind Entra ID is temporarily unavailable",),
        "Try again shortly.",
        retryable=True,
    ),
)

CATALOGUE: Final[dict[int, AadstsCode]] = {entry.code: entry for entry in _ENTRIES}


def lookup(code: int) -> AadstsCode | None:
    return CATALOGUE.get(code)


def classify(code: int | None) -> Classification:
    """``propagation`` (retry until the validation deadline), ``transient`` (retry with back-off),
    ``permanent`` (fail fast: waiting cannot fix it) or ``unknown`` (not catalogued, or no code)."""
    entry = CATALOGUE.get(code) if code is not None else None
    return entry.classification if entry else "unknown"


def waiting_may_help(code: int | None) -> bool:
    """Whether a validation should keep trying after this code (until its deadline).

    Unknown codes and failures without a code (network errors) count as possibly transient:
    giving up early would roll back a credential that might have worked, and the old one is still
    valid meanwhile, so retrying to the deadline is the cheaper mistake.
    """
    return classify(code) != "permanent"


# --------------------------------------------------------------------------------------------------
# Finding the code

_AADSTS_RE = re.compile(r"AADSTS(\d{5,7})\b")
_ERROR_CODES_RE = re.compile(r"\"error_codes\"\s*:\s*\[\s*(\d{5,7})")
_BARE_CODE_RE = re.compile(r"^\s*(?:AADSTS)?(\d{5,7})\s*$", re.IGNORECASE)
_MAX_CHAIN = 5


def _code_from_body(body: object) -> int | None:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, dict):
        codes = body.get("error_codes")
        if isinstance(codes, list) and codes and isinstance(codes[0], int) and not isinstance(codes[0], bool):
            return codes[0]
        description = body.get("error_description")
        if isinstance(description, str):
            return _code_from_text(description)
    return None


def _read_body(reader: object) -> object:
    try:
        return reader() if callable(reader) else reader
    except Exception:  # an unread or binary body: the caller falls back to the message text
        return None


def _code_from_response(response: object) -> int | None:
    # Duck-typed: azure-core's HttpResponse/AsyncHttpResponse expose text(); others may have json().
    for attribute in ("json", "text"):
        reader = getattr(response, attribute, None)
        if reader is None:
            continue
        code = _code_from_body(_read_body(reader))
        if code is not None:
            return code
    return None


def _code_from_text(text: str) -> int | None:
    match = _AADSTS_RE.search(text)
    if match:
        return int(match.group(1))
    match = _ERROR_CODES_RE.search(text)
    if match:
        return int(match.group(1))
    match = _BARE_CODE_RE.match(text)
    if match:
        return int(match.group(1))
    return None


def parse_code(source: object) -> int | None:
    """The AADSTS code in an exception, a response body, or a pasted string; ``None`` if there is none.

    For exceptions: the HTTP response body's ``error_codes`` first (the aio credentials keep the
    response), then the message text, then the chained cause (``__cause__``, ``inner_exception``).
    """
    if isinstance(source, bool):
        return None
    if isinstance(source, int):
        return source
    if isinstance(source, (str, bytes, bytearray)):
        text = source.decode("utf-8", errors="replace") if isinstance(source, (bytes, bytearray)) else source
        return _code_from_body(text) or _code_from_text(text)
    if isinstance(source, dict):
        return _code_from_body(source)
    if isinstance(source, BaseException):
        seen: set[int] = set()
        current: BaseException | None = source
        while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
            seen.add(id(current))
            response = getattr(current, "response", None)
            code = _code_from_response(response) if response is not None else None
            if code is None:
                message = getattr(current, "message", None)
                code = _code_from_text(message if isinstance(message, str) else str(current))
            if code is not None:
                return code
            inner = getattr(current, "inner_exception", None)
            current = inner if isinstance(inner, BaseException) else current.__cause__
        return None
    return None


# --------------------------------------------------------------------------------------------------
# Explaining it to a person


@dataclass(frozen=True)
class Explanation:
    """A found code with what we know about it (``entry`` is ``None`` for codes not catalogued)."""

    code: int
    entry: AadstsCode | None

    @property
    def classification(self) -> Classification:
        return self.entry.classification if self.entry else "unknown"

    @property
    def docs_url(self) -> str:
        return DOCS_URL.format(code=self.code)

    @property
    def title(self) -> str:
        return self.entry.title if self.entry else "Not in the rotator's catalogue"

    @property
    def remedy(self) -> str:
        if self.entry:
            return self.entry.remedy
        return f"Look the code up at {self.docs_url}."

    def render(self) -> str:
        """Several lines for a terminal."""
        lines = [f"AADSTS{self.code}: {self.title}"]
        if self.entry:
            lines.append("Likely causes:")
            lines.extend(f"  - {cause}" for cause in self.entry.causes)
        lines.append(f"What to do: {self.remedy}")
        lines.append(f"More: {self.docs_url}")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line for logs, tags and outcomes."""
        return f"AADSTS{self.code} ({self.title}): {self.remedy}"


def explain(source: object) -> Explanation | None:
    """Explain the AADSTS code found in ``source`` (see :func:`parse_code`), or ``None`` without one."""
    code = parse_code(source)
    if code is None:
        return None
    return Explanation(code, CATALOGUE.get(code))
