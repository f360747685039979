"""Operators' Entra ID access tokens, validated by the function itself.

App Service authentication (infra turns it on) refuses requests without a token before they reach
the app, but the rule must hold wherever the app runs (``func start``, tests, a slot without the
platform's module), so the function checks every token itself, as a resource server does:

- the signature, RS256 only, with a key of the tenant: the OpenID configuration
  (``{authority}/{tenant}/v2.0/.well-known/openid-configuration``) names the ``jwks_uri``; keys are
  cached for :data:`KEYS_TTL_SECONDS` and fetched again once when a token names an unknown ``kid``
  (Entra rolls its keys), at most every :data:`REFETCH_MIN_SECONDS`;
- the issuer: the v2.0 issuer the configuration names (``{authority}/{tenant id}/v2.0``) or the
  v1.0 form (``https://sts.windows.net/{tenant id}/``), and ``tid`` is that tenant;
- the audience: one of ``ROTATION_API_AUDIENCE`` (client id and/or identifier URI);
- the lifetime: ``exp`` and ``nbf`` with :data:`LEEWAY_SECONDS` of clock skew.

What the caller may do (its ``roles``) is decided by ``functions.principal``. Nothing here ever puts
the token, or anything read from an unverified token, in a message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

# PyJWT (with cryptography) and aiohttp are imported where a token is first checked, not here: the
# Functions host imports this module on every cold start, and only the HTTP routes ever need them.

KEYS_TTL_SECONDS: Final = 3600.0
#: An unknown ``kid`` fetches the keys again at most this often: a stream of made-up kids must not
#: turn every request into two requests to the authority.
REFETCH_MIN_SECONDS: Final = 30.0
LEEWAY_SECONDS: Final = 60
#: Entra access tokens are 1-3 KB (more with many roles); anything far larger is refused unread.
MAX_TOKEN_LENGTH: Final = 16 * 1024
_FETCH_TIMEOUT_SECONDS: Final = 10.0
_MAX_DOCUMENT_BYTES: Final = 512 * 1024
#: The v1.0 issuer's host per authority host; anything else (the local cloud, Azure Stack) gets the public form.
_V1_ISSUER_HOSTS: Final = {"login.chinacloudapi.cn": "sts.chinacloudapi.cn"}
_PUBLIC_V1_ISSUER_HOST: Final = "sts.windows.net"


class TokenRejected(Exception):
    """The bearer token is not a valid token for this API; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The tenant's signing keys could not be read (the authority did not answer as expected)."""


@dataclass(frozen=True)
class TokenIdentity:
    """Who a validated token says called: its claims, nothing from any header."""

    tenant_id: str
    object_id: str | None
    app_id: str | None
    name: str | None
    roles: frozenset[str]

    def describe(self) -> str:
        parts = [f"oid={self.object_id or 'unknown'}", f"appid={self.app_id or 'unknown'}"]
        if self.name:
            parts.append(f"name={self.name}")
        return "aad " + " ".join(parts)

    def log_facts(self) -> dict[str, str | None]:
        """Who asked, for the audit line: from the validated token's claims only."""
        return {"caller": self.describe(), "callerObjectId": self.object_id, "callerAppId": self.app_id}


Fetch = Callable[[str], Awaitable[Any]]


async def fetch_json(url: str) -> Any:
    import aiohttp

    """GET a JSON document over https (the process's trust store: ``SSL_CERT_FILE`` for the local cloud)."""
    timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_SECONDS)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as response,
    ):
        if response.status != 200:
            raise KeysUnavailable(f"{url} answered {response.status}")
        raw = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
        if len(raw) > _MAX_DOCUMENT_BYTES:
            raise KeysUnavailable(f"{url} answered a document larger than {_MAX_DOCUMENT_BYTES} bytes")
        return json.loads(raw)


@dataclass
class _TenantKeys:
    issuer: str
    keys: Mapping[str, Any]
    fetched: float


@dataclass(eq=False)
class SigningKeys:
    """The tenants' signing keys, cached per (authority, tenant)."""

    fetch: Fetch = fetch_json
    clock: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, str], _TenantKeys] = field(default_factory=dict)

    async def for_token(self, authority: str, tenant: str, kid: str) -> tuple[str, Any | None]:
        """``(v2.0 issuer, the key named kid or None)``; fetches when stale or once for a new kid."""
        entry = self._cache.get((authority, tenant))
        now = self.clock()
        stale = entry is None or now - entry.fetched >= KEYS_TTL_SECONDS
        unknown = entry is not None and kid not in entry.keys and now - entry.fetched >= REFETCH_MIN_SECONDS
        if stale or unknown:
            entry = await self._load(authority, tenant)
            self._cache[(authority, tenant)] = entry
        assert entry is not None
        return entry.issuer, entry.keys.get(kid)

    def clear(self) -> None:
        self._cache.clear()

    async def _load(self, authority: str, tenant: str) -> _TenantKeys:
        import aiohttp
        import jwt
        from jwt.exceptions import InvalidKeyError, PyJWKError

        config_url = f"{authority}/{tenant}/v2.0/.well-known/openid-configuration"
        try:
            config = await self.fetch(config_url)
            if not isinstance(config, dict):
                raise KeysUnavailable("the OpenID configuration is not a JSON object")
            issuer, jwks_uri = config.get("issuer"), config.get("jwks_uri")
            if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
                raise KeysUnavailable("the OpenID configuration names no issuer or jwks_uri")
            # The keys must come from the authority itself, never from wherever a document points.
            where = urlsplit(jwks_uri)
            if where.scheme != "https" or where.netloc.lower() != urlsplit(authority).netloc.lower():
                raise KeysUnavailable("the OpenID configuration's jwks_uri is not on the authority")
            document = await self.fetch(jwks_uri)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise KeysUnavailable(f"{type(exc).__name__} reading the signing keys") from None
        listed = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise KeysUnavailable("the jwks_uri answered no 'keys' array")
        keys: dict[str, Any] = {}
        for item in listed:
            if not isinstance(item, dict) or item.get("kty") != "RSA" or item.get("use", "sig") != "sig":
                continue
            kid = item.get("kid")
            if not isinstance(kid, str):
                continue
            try:
                keys[kid] = jwt.PyJWK(item, algorithm="RS256").key
            except (PyJWKError, InvalidKeyError, ValueError, TypeError, KeyError):
                continue
        return _TenantKeys(issuer=issuer, keys=keys, fetched=self.clock())


#: The app's cache (one per process, like the SDKs' token caches).
SIGNING_KEYS: Final = SigningKeys()


def bearer_token(authorization: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; :class:`TokenRejected` when there is none."""
    if authorization is None or not authorization.strip():
        raise TokenRejected("no bearer token was sent (Authorization: Bearer <access token>)")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenRejected("the Authorization header is not 'Bearer <access token>'")
    if len(token) > MAX_TOKEN_LENGTH or " " in token or token.count(".") != 2:
        raise TokenRejected("the bearer token is not a JWT access token")
    return token


def v1_issuer(authority: str, tenant_id: str) -> str:
    host = _V1_ISSUER_HOSTS.get((urlsplit(authority).hostname or "").lower(), _PUBLIC_V1_ISSUER_HOST)
    return f"https://{host}/{tenant_id}/"


async def validate_token(
    token: str, *, authority: str, tenant: str, audiences: tuple[str, ...], keys: SigningKeys
) -> TokenIdentity:
    """Verify ``token`` for this API or raise :class:`TokenRejected` (or :class:`KeysUnavailable`)."""
    import jwt
    from jwt.exceptions import (
        ExpiredSignatureError,
        ImmatureSignatureError,
        InvalidAudienceError,
        InvalidIssuerError,
        InvalidTokenError,
        MissingRequiredClaimError,
    )

    try:
        header = jwt.get_unverified_header(token)
    except InvalidTokenError:
        raise TokenRejected("the bearer token is not a JWT access token") from None
    # RS256 only: "none", HMAC with the public key as secret and any other algorithm are refused
    # before a key is even looked up.
    if header.get("alg") != "RS256":
        raise TokenRejected("the token is not signed with RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 200:
        raise TokenRejected("the token names no signing key (kid)")
    issuer_v2, key = await keys.for_token(authority, tenant, kid)
    if key is None:
        raise TokenRejected("the token is not signed by a key of the tenant")
    tenant_id = _tenant_of(issuer_v2)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=list(audiences),
            issuer=[issuer_v2, v1_issuer(authority, tenant_id)],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "nbf", "iss", "aud", "tid"], "verify_signature": True},
        )
    except ExpiredSignatureError:
        raise TokenRejected("the token has expired") from None
    except ImmatureSignatureError:
        raise TokenRejected("the token is not valid yet") from None
    except InvalidAudienceError:
        raise TokenRejected("the token is not for this API (audience)") from None
    except InvalidIssuerError:
        raise TokenRejected("the token was not issued by the rotator's tenant") from None
    except MissingRequiredClaimError as exc:
        raise TokenRejected(f"the token lacks the '{exc.claim}' claim") from None
    except InvalidTokenError:
        raise TokenRejected("the token's signature or claims are invalid") from None
    if str(claims.get("tid", "")).lower() != tenant_id.lower():
        raise TokenRejected("the token was not issued by the rotator's tenant")
    raw_roles = claims.get("roles", [])
    roles = frozenset(r for r in raw_roles if isinstance(r, str)) if isinstance(raw_roles, list) else frozenset()
    return TokenIdentity(
        tenant_id=tenant_id,
        object_id=_text(claims.get("oid")),
        app_id=_text(claims.get("appid")) or _text(claims.get("azp")),
        name=_text(claims.get("name")) or _text(claims.get("app_displayname")),
        roles=roles,
    )


def _tenant_of(issuer_v2: str) -> str:
    # https://login.microsoftonline.com/{tenant id}/v2.0
    parts = [p for p in urlsplit(issuer_v2).path.split("/") if p]
    return parts[0] if parts else ""


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None
