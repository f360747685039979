"""Entra's client-assertion authentication (`private_key_jwt`): a JWT the client signs with the private
key of a certificate on its app registration, sent as `client_assertion` with
`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.

Checks in the order Entra reports them, with its codes (azure-sdk troubleshooting guides, the codes
Microsoft.Identity.Web maps, and real error texts users published):

- 50027 (400 `invalid_request`): not a JWT, or the wrong `client_assertion_type`;
- 700021 (401 `invalid_client`): `iss` or `sub` is not the `client_id`;
- 700023 (401): `aud` is not this tenant's token endpoint (v2.0 or v1, on this cloud's origin or
  login.microsoftonline.com) or its v2.0 issuer;
- 700024 (401): `exp` past or `nbf` in the future (five minutes of clock skew allowed);
- 700027 (401): the header's `x5t#S256` / `x5t` names no certificate of the app, or one this
  replica does not know yet (a new certificate propagates per replica, like a new password);
- 1000502 (401): the certificate it names is outside its validity on the app (wording unpublished);
- 7000274 (401): the certificate is found but the signature (RS256 or PS256) does not verify with it.

Assertion times are checked on real time, as the client that made it reads real time (like token
lifetimes); the certificate's validity on the app follows the cloud's movable clock. No maximum
lifetime is imposed: the certificate-credentials reference says Entra sets no limit on `exp` (clients
should keep it within 5-10 minutes of `nbf`). A `jti` is not checked for reuse: MSAL reuses one
assertion for its whole lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from localcloud.certificates import MalformedJwt, SignedJwt, named_credential, numeric_date, parse_jwt, signed_by
from localcloud.state import Application, KeyCredential, Tenant, World

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = timedelta(minutes=5)
_DOCS = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    code: int
    message: str


def _time(moment: datetime) -> str:
    """Entra's 7-digit fractional seconds: `2024-10-02T22:05:03.6755165Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _audiences(tenant: Tenant, origin: str) -> set[str]:
    names = {tenant.tenant_id, tenant.default_domain}
    hosts = {origin.rstrip("/"), "https://login.microsoftonline.com"}
    accepted = set()
    for host in hosts:
        for name in names:
            accepted |= {
                f"{host}/{name}/oauth2/v2.0/token",
                f"{host}/{name}/oauth2/token",
                f"{host}/{name}/v2.0",
            }
    return {a.lower() for a in accepted}


def authenticate(
    world: World,
    app: Application,
    tenant: Tenant,
    assertion: str,
    assertion_type: str,
    *,
    client_id: str,
    origin: str,
) -> KeyCredential | Refusal:
    """The key credential that signed a valid assertion, or Entra's refusal (the caller holds the lock)."""
    if assertion_type != JWT_BEARER:
        return Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    try:
        jwt = parse_jwt(assertion)
    except MalformedJwt:
        return Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    claims = jwt.claims
    if str(claims.get("iss", "")).lower() != client_id.lower() or str(claims.get("sub", "")).lower() != (
        client_id.lower()
    ):
        return Refusal(
            401,
            "invalid_client",
            700021,
            f"Client assertion application identifier doesn't match 'client_id' parameter. Review the "
            f"documentation at {_DOCS} .",
        )
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    accepted = _audiences(tenant, origin)
    if not any(isinstance(a, str) and a.lower().rstrip("/") in accepted for a in audiences):
        return Refusal(
            401,
            "invalid_client",
            700023,
            f"Client assertion audience claim does not match Realm issuer. Review the documentation at {_DOCS} .",
        )
    refusal = _lifetime_refusal(jwt)
    if refusal is not None:
        return refusal
    return _key_outcome(world, app, jwt)


def _lifetime_refusal(jwt: SignedJwt) -> Refusal | None:
    now = datetime.now(UTC)
    expires = numeric_date(jwt.claims.get("exp"))
    not_before = numeric_date(jwt.claims.get("nbf"))
    if expires is None:
        return Refusal(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    if expires + CLOCK_SKEW <= now or (not_before is not None and not_before - CLOCK_SKEW > now):
        return Refusal(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: {_time(now)}, assertion "
            f"valid from {_time(not_before or _EPOCH)}, expiry time of assertion {_time(expires)}. Review "
            f"the documentation at {_DOCS} .",
        )
    return None


def _key_outcome(world: World, app: Application, jwt: SignedJwt) -> KeyCredential | Refusal:
    now = world.clock.now()
    thumbprint = jwt.thumbprint_hex
    # Entra verifies with the certificates of the app registration and of its service principal.
    credential = named_credential(jwt, [*app.certificates, *app.sp_certificates])
    if credential is not None and credential.replica_ready:
        # One replica answers each request; one that has not learned the certificate yet knows no such key.
        replica = world.random.randrange(len(credential.replica_ready))
        if credential.replica_ready[replica] > now:
            credential = None
    if credential is None:
        return Refusal(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on "
            f"application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', "
            "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
            f"for app Id '{app.app_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/"
            "deployments to determine the corresponding service endpoint and https://docs.microsoft.com/"
            "en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, "
            f"such as 'https://graph.microsoft.com/beta/applications/{app.app_id}'].",
        )
    found = f"Found key 'Start={credential.start:%m/%d/%Y %H:%M:%S}, End={credential.end:%m/%d/%Y %H:%M:%S}'"
    if not credential.start <= now < credential.end:
        return Refusal(
            401,
            "invalid_client",
            1000502,
            f"The certificate used to sign the client assertion is outside its validity window. "
            f"[Thumbprint of key used by client: '{thumbprint}', {found}].",
        )
    if not signed_by(jwt, credential):
        return Refusal(
            401,
            "invalid_client",
            7000274,
            "Client assertion contains an invalid signature. [Reason - The provided signature value did not "
            f"match the expected signature value., Thumbprint of key used by client: '{thumbprint}', {found}].",
        )
    return credential
