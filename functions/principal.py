"""Who is calling over HTTP, and whether they may: the bearer token validated by
``functions.bearer`` decides, with the app role each route needs (``Rotation.Operator`` to roll,
``Rotation.Reader`` or Operator to read). App Service authentication's ``X-MS-CLIENT-PRINCIPAL`` is
only ever compared with the token, never believed on its own."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from functions.bearer import (
    SIGNING_KEYS,
    KeysUnavailable,
    SigningKeys,
    TokenIdentity,
    TokenRejected,
    bearer_token,
    validate_token,
)
from functions.replies import ApiError
from rotation.settings import Settings

ROLE_CLAIM_TYPES: Final = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
_OBJECT_ID_CLAIMS: Final = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_APP_ID_CLAIMS: Final = ("appid", "azp")
CLIENT_PRINCIPAL_HEADER: Final = "X-MS-CLIENT-PRINCIPAL"
#: Far above any real principal (a few KB with many groups); larger is refused before decoding.
_PRINCIPAL_MAX: Final = 64 * 1024


@dataclass(frozen=True)
class PlatformPrincipal:
    """What ``X-MS-CLIENT-PRINCIPAL`` claims: compared with the bearer token, never trusted alone."""

    object_id: str | None
    identity: str | None
    auth_type: str | None
    roles: frozenset[str]


def parse_client_principal(header: str) -> PlatformPrincipal:
    """Decode ``X-MS-CLIENT-PRINCIPAL``: base64 of ``{"auth_typ", "claims": [{"typ", "val"}],
    "name_typ", "role_typ"}``. Raises ``ValueError`` saying what is wrong.

    Role claims are those typed ``roles``, the WS-Federation role URI, or whatever ``role_typ``
    names; App Service maps claim names, so all three occur.
    """
    text = header.strip()
    if not text:
        raise ValueError("the header is empty")
    if len(text) > _PRINCIPAL_MAX:
        raise ValueError("the header is too large")
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("the header is not base64-encoded JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the decoded header is not a JSON object")
    claims = payload.get("claims")
    if not isinstance(claims, list):
        raise ValueError("the decoded header has no 'claims' array")
    role_types = set(ROLE_CLAIM_TYPES)
    role_typ = payload.get("role_typ")
    if isinstance(role_typ, str) and role_typ:
        role_types.add(role_typ)
    roles: set[str] = set()
    values: dict[str, str] = {}
    for claim in claims:
        if not isinstance(claim, dict):
            raise ValueError("a claim is not an object with 'typ' and 'val'")
        typ, val = claim.get("typ"), claim.get("val")
        if not isinstance(typ, str) or not isinstance(val, str):
            raise ValueError("a claim lacks a string 'typ' or 'val'")
        if typ in role_types:
            roles.add(val)
        values.setdefault(typ, val)
    identity = next((values[c] for c in (*_OBJECT_ID_CLAIMS, *_APP_ID_CLAIMS) if c in values), None)
    object_id = next((values[c] for c in _OBJECT_ID_CLAIMS if c in values), None)
    auth_type = payload.get("auth_typ")
    return PlatformPrincipal(
        object_id=object_id,
        identity=identity,
        auth_type=auth_type if isinstance(auth_type, str) else None,
        roles=frozenset(roles),
    )


NOT_CONFIGURED_MESSAGE: Final = (
    "Operator authentication is not configured: set ROTATION_API_AUDIENCE to the rotator API's client id "
    "and/or identifier URI, and ROTATION_TENANT_ID to its tenant. Until then every HTTP request is refused."
)
_CHALLENGE: Final = 'Bearer realm="rotation-api"'


@dataclass(frozen=True)
class Access:
    """What a route needs: any one of ``roles`` (app roles of the rotator's API) for ``action``."""

    roles: frozenset[str]
    action: str


def operate(settings: Settings) -> Access:
    """Rolling a secret: ``ROTATION_OPERATOR_ROLE``."""
    return Access(frozenset({settings.operator_role}), "rotate secrets")


def read(settings: Settings) -> Access:
    """Reading state, listings and the inventory: ``ROTATION_READER_ROLE``; an operator may read too."""
    return Access(frozenset({settings.reader_role, settings.operator_role}), "read the rotator's state")


async def authorize(
    headers: Mapping[str, str], settings: Settings, access: Access, keys: SigningKeys = SIGNING_KEYS
) -> TokenIdentity:
    """The validated caller, or an :class:`ApiError`: 500 when operator authentication is not configured
    (fail closed), 401 for a missing or invalid bearer token, 403 for a valid one without the role, 503
    when the tenant's keys cannot be read. Runs before any Key Vault or Graph call.

    The identity and its roles come from the bearer token only. ``X-MS-CLIENT-PRINCIPAL`` (set by App
    Service authentication when it is on) grants nothing: it is compared with the token, and a header
    that names someone else is a 401, because App Service never lets a client's own header through.
    """
    if not settings.api_audiences or settings.tenant_id is None:
        raise ApiError(500, "AuthenticationNotConfigured", NOT_CONFIGURED_MESSAGE)
    try:
        token = bearer_token(_header(headers, "Authorization"))
        identity = await validate_token(
            token,
            authority=settings.authority_host,
            tenant=settings.tenant_id,
            audiences=settings.api_audiences,
            keys=keys,
        )
        _check_platform_principal(headers, identity)
    except TokenRejected as rejected:
        error = "" if "no bearer token" in rejected.reason else ', error="invalid_token"'
        raise ApiError(
            401,
            "Unauthorized",
            f"A valid Entra ID access token for the rotator's API is required: {rejected.reason}.",
            {"WWW-Authenticate": _CHALLENGE + error},
        ) from None
    except KeysUnavailable:
        raise ApiError(
            503,
            "KeysUnavailable",
            "The tenant's token-signing keys could not be read; try again shortly.",
            {"Retry-After": "30"},
        ) from None
    if not identity.roles & access.roles:
        needed = " or ".join(sorted(access.roles))
        raise ApiError(
            403,
            "Forbidden",
            f"The caller lacks the app role {needed} required to {access.action}; ask an administrator to "
            "assign it on the rotator's API (Enterprise applications > the API > Users and groups, or an "
            "app role assignment for an application).",
            {"WWW-Authenticate": _CHALLENGE + ', error="insufficient_scope"'},
        )
    return identity


def _check_platform_principal(headers: Mapping[str, str], identity: TokenIdentity) -> None:
    header = _header(headers, CLIENT_PRINCIPAL_HEADER)
    if header is None:
        return
    try:
        principal = parse_client_principal(header)
    except ValueError:
        raise TokenRejected(f"{CLIENT_PRINCIPAL_HEADER} does not match the bearer token") from None
    if principal.object_id is not None and principal.object_id.lower() != (identity.object_id or "").lower():
        raise TokenRejected(f"{CLIENT_PRINCIPAL_HEADER} does not match the bearer token")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # func.HttpRequest headers are case-insensitive already; a plain dict (tests, other hosts) is not.
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value
