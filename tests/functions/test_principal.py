"""The caller over HTTP, in isolation: the bearer header, the signing-key cache, the fail-closed
rule, and X-MS-CLIENT-PRINCIPAL (parsed only to be compared with a token). The attacks against the
real function objects are in test_operator_auth.py."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.bearer import (
    KEYS_TTL_SECONDS,
    REFETCH_MIN_SECONDS,
    KeysUnavailable,
    SigningKeys,
    TokenRejected,
    bearer_token,
    v1_issuer,
)
from functions.principal import authorize, operate, parse_client_principal, read
from functions.replies import ApiError
from rotation.settings import Settings
from tests.functions.harness import ROLE_URI, client_principal

ROLE = "Rotation.Operator"
AUTHORITY = "https://login.microsoftonline.com"
TENANT = "11111111-2222-3333-4444-555555555555"
JWK: dict[str, Any] = {
    **json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())),
    "use": "sig",
    "kid": "key-1",
}


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "vaults": {"kv": "https://kv.vault.azure.net"},
        "tenant_id": TENANT,
        "api_audiences": ("api://secret-rotator",),
    }
    return Settings(**{**base, **overrides})


# ----------------------------------------------------------------------------------- fail closed


@pytest.mark.parametrize("overrides", [{"api_audiences": ()}, {"tenant_id": None}])
def test_without_an_audience_or_tenant_every_request_is_refused(overrides: dict[str, Any]) -> None:
    configured = settings(**overrides)
    for access in (operate(configured), read(configured)):
        with pytest.raises(ApiError) as caught:
            asyncio.run(authorize({"X-MS-CLIENT-PRINCIPAL": client_principal(ROLE)}, configured, access))
        assert (caught.value.status, caught.value.code) == (500, "AuthenticationNotConfigured")
        assert "ROTATION_API_AUDIENCE" in caught.value.message


def test_a_reader_or_an_operator_may_read_only_an_operator_may_rotate() -> None:
    configured = settings(reader_role="Secrets.Read", operator_role="Secrets.Rotate")
    assert operate(configured).roles == {"Secrets.Rotate"}
    assert read(configured).roles == {"Secrets.Read", "Secrets.Rotate"}


# ---------------------------------------------------------------------------------- bearer header


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b", "Bearer a.b.c d", "x" * 20],
)
def test_anything_but_one_bearer_jwt_is_rejected(header: str | None) -> None:
    with pytest.raises(TokenRejected) as caught:
        bearer_token(header)
    assert not any(part in caught.value.reason for part in ("dXNlcjpwYXNz", "not-a-jwt", "a.b", "xxxx"))


def test_a_huge_token_is_rejected_unread() -> None:
    with pytest.raises(TokenRejected):
        bearer_token("Bearer " + "a" * 20_000 + ".b.c")


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer a.b.c") == "a.b.c"


def test_the_v1_issuer_of_each_cloud() -> None:
    assert v1_issuer(AUTHORITY, TENANT) == f"https://sts.windows.net/{TENANT}/"
    assert v1_issuer("https://login.chinacloudapi.cn", TENANT) == f"https://sts.chinacloudapi.cn/{TENANT}/"


# --------------------------------------------------------------------------------- signing keys


class FakeAuthority:
    def __init__(self, jwks_uri: str = f"{AUTHORITY}/{TENANT}/discovery/v2.0/keys") -> None:
        self.fetched: list[str] = []
        self.jwks_uri = jwks_uri
        self.keys: list[dict[str, Any]] = [JWK]
        self.now = 1000.0

    async def fetch(self, url: str) -> Any:
        self.fetched.append(url)
        if url.endswith("/openid-configuration"):
            return {"issuer": f"{AUTHORITY}/{TENANT}/v2.0", "jwks_uri": self.jwks_uri}
        return {"keys": self.keys}

    def cache(self) -> SigningKeys:
        return SigningKeys(fetch=self.fetch, clock=lambda: self.now)


def test_keys_are_cached_and_an_unknown_kid_is_fetched_again_once() -> None:
    authority = FakeAuthority()
    keys = authority.cache()
    issuer, key = asyncio.run(keys.for_token(AUTHORITY, TENANT, "key-1"))
    assert issuer == f"{AUTHORITY}/{TENANT}/v2.0" and key is not None
    assert authority.fetched == [
        f"{AUTHORITY}/{TENANT}/v2.0/.well-known/openid-configuration",
        f"{AUTHORITY}/{TENANT}/discovery/v2.0/keys",
    ]
    assert asyncio.run(keys.for_token(AUTHORITY, TENANT, "key-1"))[1] is key
    assert len(authority.fetched) == 2  # cached
    # A made-up kid right after a fetch does not fetch again (no amplification)...
    assert asyncio.run(keys.for_token(AUTHORITY, TENANT, "made-up"))[1] is None
    assert len(authority.fetched) == 2
    # ...but once the keys are older than the refetch interval, a new kid (a rolled key) is fetched once.
    authority.now += REFETCH_MIN_SECONDS
    authority.keys = [JWK, {**JWK, "kid": "key-2"}]
    assert asyncio.run(keys.for_token(AUTHORITY, TENANT, "key-2"))[1] is not None
    assert len(authority.fetched) == 4
    # After the TTL everything is fetched again.
    authority.now += KEYS_TTL_SECONDS
    asyncio.run(keys.for_token(AUTHORITY, TENANT, "key-1"))
    assert len(authority.fetched) == 6


@pytest.mark.parametrize(
    "jwks_uri", ["https://evil.example/keys", f"http://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"]
)
def test_keys_only_come_from_the_authority(jwks_uri: str) -> None:
    authority = FakeAuthority(jwks_uri)
    with pytest.raises(KeysUnavailable):
        asyncio.run(authority.cache().for_token(AUTHORITY, TENANT, "key-1"))
    assert len(authority.fetched) == 1


def test_keys_that_are_not_rsa_signing_keys_are_ignored() -> None:
    authority = FakeAuthority()
    authority.keys = [{**JWK, "use": "enc"}, {"kty": "oct", "kid": "key-1", "k": "c2VjcmV0"}, {**JWK, "n": "!!"}]
    assert asyncio.run(authority.cache().for_token(AUTHORITY, TENANT, "key-1"))[1] is None


# ------------------------------------------------------------------------- X-MS-CLIENT-PRINCIPAL


@pytest.mark.parametrize(
    "principal",
    [
        client_principal(ROLE),
        client_principal(ROLE, role_typ=ROLE_URI),
        client_principal("Other", ROLE, role_typ="roles"),
        # role_typ names a custom claim type; App Service's mapping may produce either form.
        client_principal(ROLE, role_typ="custom-role-claim"),
    ],
)
def test_principal_roles_are_read_in_every_claim_form(principal: str) -> None:
    parsed = parse_client_principal(principal)
    assert ROLE in parsed.roles and parsed.object_id


@pytest.mark.parametrize(
    "header",
    [
        "",
        "%%%not-base64%%%",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"auth_typ": "aad"}').decode(),
        base64.b64encode(b'{"claims": [{"typ": "roles"}]}').decode(),
        base64.b64encode(b'{"claims": ["roles"]}').decode(),
    ],
)
def test_an_unreadable_principal_is_an_error(header: str) -> None:
    with pytest.raises(ValueError):
        parse_client_principal(header)


def test_principal_parsing_tolerates_missing_padding_and_urlsafe_alphabet() -> None:
    raw = json.dumps({"auth_typ": "aad", "claims": [{"typ": "roles", "val": ROLE}], "x": "??>>"}).encode()
    unpadded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert ROLE in parse_client_principal(unpadded).roles
