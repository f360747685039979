"""Who is calling over HTTP: App Service authentication's ``X-MS-CLIENT-PRINCIPAL``, and the one
decision made on it (may this caller roll a secret?)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from functions.replies import ApiError

ROLE_CLAIM_TYPES: Final = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
_OBJECT_ID_CLAIMS: Final = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_APP_ID_CLAIMS: Final = ("appid", "azp")
CLIENT_PRINCIPAL_HEADER: Final = "X-MS-CLIENT-PRINCIPAL"
#: Far above any real principal (a few KB with many groups); larger is refused before decoding.
_PRINCIPAL_MAX: Final = 64 * 1024


@dataclass(frozen=True)
class Caller:
    """Who called, as far as the platform told us. ``authenticated`` is False with a function key only."""

    authenticated: bool
    identity: str | None = None
    auth_type: str | None = None
    roles: frozenset[str] = frozenset()

    def describe(self) -> str:
        if not self.authenticated:
            return "function key"
        return f"{self.auth_type or 'principal'}:{self.identity or 'unknown'}"


def parse_client_principal(header: str) -> Caller:
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
    auth_type = payload.get("auth_typ")
    return Caller(
        authenticated=True,
        identity=identity,
        auth_type=auth_type if isinstance(auth_type, str) else None,
        roles=frozenset(roles),
    )


def authorize_operator(headers: Mapping[str, str], role: str) -> Caller:
    """Allow an emergency-capable operation.

    - Header present (App Service authentication is on and the platform vouches for the caller):
      the caller must hold the app role ``role`` (``ROTATION_OPERATOR_ROLE``), else 403. A header
      that cannot be read is a 403 too: failing open on a garbled identity would be worse.
    - Header absent: App Service authentication is off, and the function key (auth level
      FUNCTION) is the only gate; whoever holds the key is an operator. Without platform
      authentication a client could also *send* the header itself, but that gains nothing the key
      does not already grant, so the check stays sound.
    """
    header = _header(headers, CLIENT_PRINCIPAL_HEADER)
    if header is None:
        return Caller(authenticated=False)
    try:
        caller = parse_client_principal(header)
    except ValueError as exc:
        raise ApiError(
            403, "Forbidden", f"The caller's identity ({CLIENT_PRINCIPAL_HEADER}) could not be read: {exc}."
        ) from None
    if role not in caller.roles:
        raise ApiError(
            403,
            "Forbidden",
            f"The caller lacks the app role '{role}' required to rotate secrets; ask an administrator to "
            "assign it on the rotator's app registration (Enterprise applications > Users and groups).",
        )
    return caller


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # func.HttpRequest headers are case-insensitive already; a plain dict (tests, other hosts) is not.
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value
