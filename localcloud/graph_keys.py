"""Microsoft Graph v1.0: `addKey` and `removeKey` on applications, with proof of possession.

What the Graph reference documents for both actions (`POST /applications/{id}/addKey`,
`/removeKey`, and on the `applications(appId='…')` key; the same on `servicePrincipals`, whose proof's
`iss` is the service principal's id and whose OwnedBy writers are the service principal's owners):

- the body of addKey: `keyCredential` {`type` `AsymmetricX509Cert`, `usage` `Verify`, `key` = the
  base64 DER certificate, `displayName`?}, `passwordCredential` (null for a certificate), `proof`;
  the answer: the new keyCredential (`key` null). removeKey: `{keyId, proof}`, 204.
- `proof`: a self-signed JWT signed with the private key of one of the app's *existing valid*
  certificates (header `x5t`, or `x5t#S256`, names it), with `aud`
  `00000002-0000-0000-c000-000000000000`, `iss` the object id of the application, `nbf`, and `exp` at
  most `nbf` + 10 minutes. An app without a valid certificate cannot use these actions.
- permissions: an application rolls its own keys without any permission; otherwise as addPassword
  (Application.ReadWrite.All, or Application.ReadWrite.OwnedBy on an owned app).

A proof that fails any check is refused the way users quote Graph refusing one: 401
`Authentication_MissingOrMalformed`, "Access Token missing or malformed." (Graph names no reason).
Proof times are checked on real time (the signer's clock); which certificates are valid, on the
cloud's movable clock.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from localcloud import certificates
from localcloud.certificates import MalformedJwt
from localcloud.graph import (
    METADATA,
    PREFIX,
    GraphError,
    _authenticate,
    _bad_request,
    _find_application,
    _handled,
    _json,
    _json_body,
    _key_id,
    _may_write,
    _no_content,
    _throttle_write,
)
from localcloud.graph_directory import _find_service_principal
from localcloud.keys import WORLD
from localcloud.state import ROLE_RW_ALL, ROLE_RW_OWNED, Application, IssuedToken, KeyCredential, World

#: The audience of a proof: the Azure AD Graph application's id, as the reference says.
PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
PROOF_MAX_LIFETIME = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=5)
_INSUFFICIENT = "Insufficient privileges to complete the operation."


def add_routes(router: web.UrlDispatcher) -> None:
    for base in (
        PREFIX + "/applications/{object_id}",
        PREFIX + "/applications(appId={app_key})",
        PREFIX + "/servicePrincipals/{sp_id}",
        PREFIX + "/servicePrincipals(appId={app_key})",
    ):
        router.add_post(base + "/addKey", _handled(add_key))
        router.add_post(base + "/removeKey", _handled(remove_key))


def _proof_refused() -> GraphError:
    return GraphError(401, "Authentication_MissingOrMalformed", "Access Token missing or malformed.")


def _invalid_key_property(name: str) -> GraphError:
    return _bad_request(f"Invalid value specified for property '{name}' of resource 'KeyCredential'.")


@dataclass(frozen=True)
class KeyRequest:
    certificate: bytes  # DER
    display_name: str | None
    proof: str


def _proof(body: dict[str, Any]) -> str:
    proof = body.get("proof")
    if not isinstance(proof, str) or not proof.strip():
        raise _bad_request("The 'proof' parameter is required.")
    return proof


def _key_request(body: Any) -> KeyRequest:
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a JSON object.")
    credential = body.get("keyCredential")
    if not isinstance(credential, dict):
        raise _bad_request("The 'keyCredential' parameter is required.")
    if body.get("passwordCredential") is not None:
        # Only X509CertAndPassword keys carry a password; a certificate for sign-in does not.
        raise _bad_request("Invalid value specified for property 'passwordCredential'.")
    if credential.get("type") != "AsymmetricX509Cert":
        raise _invalid_key_property("type")
    if credential.get("usage") == "Sign":
        # A signing key (SAML token signing) is not a credential an app signs in with.
        raise _invalid_key_property("usage")
    if credential.get("usage") != "Verify":
        # Real text: microsoftgraph/msgraph-sdk-java#1823.
        raise _bad_request(
            'The value for the property "usage" in one of your credentials is invalid. Acceptable values are Sign, '
            "Verify."
        )
    key = credential.get("key")
    if not isinstance(key, str) or not key:
        raise _invalid_key_property("key")
    try:
        der = certificates.certificate_der(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _invalid_key_property("key") from exc
    display_name = credential.get("displayName")
    if display_name is not None and not isinstance(display_name, str):
        raise _invalid_key_property("displayName")
    return KeyRequest(der, display_name, _proof(body))


@dataclass(frozen=True)
class KeyHolder:
    """The object whose key credentials a request changes: an app registration, or its service principal."""

    app: Application
    credentials: list[KeyCredential]  # the live list
    object_id: str  # what a proof's `iss` must name
    on_service_principal: bool


def _key_holder(world: World, token: IssuedToken, request: web.Request) -> KeyHolder:
    """The object the route names (404 outside the caller's tenant), if the caller may roll its keys
    (403): itself without any permission; anyone else with addPassword's rights on that object."""
    if request.path.startswith(PREFIX + "/servicePrincipals"):
        app = _find_service_principal(world, token, request)
        owns = token.subject_object_id.lower() in {o.lower() for o in app.sp_owners}
        allowed = ROLE_RW_ALL in token.roles or (ROLE_RW_OWNED in token.roles and owns)
        holder = KeyHolder(app, app.sp_certificates, app.sp_object_id, True)
    else:
        app = _find_application(world, token, request)
        allowed = _may_write(token, app)
        holder = KeyHolder(app, app.certificates, app.object_id, False)
    if not (allowed or token.subject_object_id.lower() == app.sp_object_id.lower()):
        raise GraphError(403, "Authorization_RequestDenied", _INSUFFICIENT)
    return holder


def verify_proof(world: World, holder: KeyHolder, proof: str) -> KeyCredential:
    """The currently valid certificate of the object that signed a valid proof; GraphError 401
    otherwise (the caller holds the lock)."""
    try:
        jwt = certificates.parse_jwt(proof)
    except MalformedJwt as exc:
        raise _proof_refused() from exc
    now = world.clock.now()
    valid = [k for k in holder.credentials if k.start <= now < k.end]
    signer = certificates.named_credential(jwt, valid)
    if signer is None or not certificates.signed_by(jwt, signer):
        raise _proof_refused()
    claims = jwt.claims
    if claims.get("aud") != PROOF_AUDIENCE or str(claims.get("iss", "")).lower() != holder.object_id.lower():
        raise _proof_refused()
    not_before = certificates.numeric_date(claims.get("nbf"))
    expires = certificates.numeric_date(claims.get("exp"))
    real_now = datetime.now(UTC)
    if not_before is None or expires is None or expires - not_before > PROOF_MAX_LIFETIME:
        raise _proof_refused()
    if not_before - CLOCK_SKEW > real_now or expires <= real_now:
        raise _proof_refused()
    return signer


async def add_key(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    requested = _key_request(await _json_body(request))
    with world.lock:
        holder = _key_holder(world, token, request)
        verify_proof(world, holder, requested.proof)
        parsed = certificates.load_certificate(requested.certificate)
        if parsed.not_valid_after_utc <= world.clock.now():
            # What the directory answers to a credential that ends in the past (as for passwords).
            raise _bad_request("Key credential end date is invalid.")
        credential = certificates.new_key_credential(
            world,
            holder.app,
            requested.certificate,
            display_name=requested.display_name,
            on_service_principal=holder.on_service_principal,
        )
        body: dict[str, Any] = {"@odata.context": f"{METADATA}#microsoft.graph.keyCredential"}
        body.update(credential.to_graph())
    return _json(request, body)


async def remove_key(request: web.Request) -> web.StreamResponse:
    world = request.app[WORLD]
    token = _authenticate(request)
    _throttle_write(world, token)
    body = await _json_body(request)
    key_id = _key_id(body)
    proof = _proof(body)
    with world.lock:
        holder = _key_holder(world, token, request)
        verify_proof(world, holder, proof)
        credential = next((k for k in holder.credentials if k.key_id.lower() == key_id.lower()), None)
        if credential is None:
            # As removePassword (400; the real wording is unpublished).
            raise _bad_request(f"No key credential found with keyId '{key_id}'.")
        holder.credentials.remove(credential)
    return _no_content(request)
