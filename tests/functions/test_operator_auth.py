"""Operators prove who they are with Entra ID: attacks on the HTTP routes, through the real function
objects and real ``func.HttpRequest``s, against the local cloud's real tokens and signing keys.

The rule: every route needs a valid bearer token for the rotator's API (signature from the tenant's
OpenID keys, issuer, audience, lifetime); rolling a secret needs ``Rotation.Operator``, reading needs
``Rotation.Reader`` (or Operator). A missing or invalid token is a 401 before anything is read; a
valid token without the role a 403. ``X-MS-CLIENT-PRINCIPAL`` grants nothing, and who asked is logged
from the token's claims only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import azure.functions as func
import jwt
import pytest
from azure.identity import ClientSecretCredential
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.rotator_profile import ApiClient, RotatorCloud
from tests.functions.conftest import ApiCallers
from tests.functions.harness import (
    NO_TOKEN,
    Collector,
    body_of,
    client_principal,
    events_named,
    http_request,
    request_mark,
    requests_since,
)
from tests.integration.seed import SeededSecret, seed_managed_secret

GET_ROUTES = ("secret_status", "list_secrets", "inventory")
FORGED_NAME = "Mallory Forged-Principal"


async def seeded(cloud: RotatorCloud) -> SeededSecret:
    return await asyncio.to_thread(seed_managed_secret, cloud)


def forged_principal(*roles: str, object_id: str | None = None) -> str:
    """What an attacker sends as X-MS-CLIENT-PRINCIPAL when App Service authentication is off."""
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id or "0" * 8},
        {"typ": "name", "val": FORGED_NAME},
        *({"typ": "roles", "val": role} for role in roles),
    ]
    payload = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(payload).encode()).decode()


async def call(
    handlers: dict[str, Any],
    function: str,
    secret: str = "app-secret",
    *,
    bearer: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[func.HttpResponse, Collector[str]]:
    """Call one HTTP route as the host would; ``bearer`` None: the harness's operator token."""
    out: Collector[str] = Collector()
    route = {"vault": "kv-local", "name": secret}
    if function == "rotate_secret":
        req = http_request(
            "POST",
            f"/api/secrets/kv-local/{secret}/rotate",
            route_params=route,
            body={"reason": "auth test"},
            headers=headers,
            bearer=bearer,
        )
        return await handlers[function](req, out), out
    if function == "secret_status":
        req = http_request("GET", f"/api/secrets/kv-local/{secret}", route_params=route, headers=headers, bearer=bearer)
    elif function == "list_secrets":
        req = http_request("GET", "/api/secrets", headers=headers, bearer=bearer)
    else:
        req = http_request("GET", "/api/inventory", params={"format": "json"}, headers=headers, bearer=bearer)
    return await handlers[function](req), out


def backend_calls(cloud: RotatorCloud, mark: int) -> list[dict[str, Any]]:
    """Key Vault, Graph and managed-identity requests since ``mark``: what a refused caller must not cause."""
    return [r for r in requests_since(cloud, mark) if r["service"] in ("keyvault", "graph", "identity")]


def assert_refused(response: func.HttpResponse, status: int, code: str, *secrets_: str) -> str:
    assert response.status_code == status, response.get_body()
    body = body_of(response)
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    text = response.get_body().decode()
    for value in secrets_:
        assert value not in text and value not in json.dumps(dict(response.headers))
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    message: str = body["error"]["message"]
    return message


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def cloud_signed(cloud: RotatorCloud, claims: dict[str, Any]) -> str:
    """A token signed with the cloud's own key: what the cloud would have issued with these claims."""
    return cloud.edit(lambda world: world.signing_key.sign(claims))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def public_pem(cloud: RotatorCloud) -> bytes:
    key = cloud.edit(lambda world: world.signing_key.private_key.public_key())
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def kid_of(cloud: RotatorCloud) -> str:
    return cloud.edit(lambda world: world.signing_key.kid)


# ------------------------------------------------------------------------------------- 401s


@pytest.mark.parametrize("function", ["rotate_secret", *GET_ROUTES])
async def test_no_token_is_a_401_before_anything_is_read_or_enqueued(
    cloud: RotatorCloud, handlers: dict[str, Any], function: str
) -> None:
    secret = await seeded(cloud)
    mark = request_mark(cloud)
    response, out = await call(handlers, function, secret.name, bearer=NO_TOKEN)
    assert_refused(response, 401, "Unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rotation-api"'
    assert out.calls == 0
    assert backend_calls(cloud, mark) == []


@pytest.mark.parametrize("function", ["rotate_secret", *GET_ROUTES])
async def test_a_token_for_another_audience_is_a_401(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, function: str
) -> None:
    """The operator's own, perfectly valid Graph token (and the rotator's Key Vault token) are not
    tokens for the rotator's API."""
    operator = api_callers.operator
    graph_token = ClientSecretCredential(
        cloud.tenant_id,
        operator.app_id,
        operator.client_secret,
        authority=cloud.authority,
        disable_instance_discovery=True,
    ).get_token("https://graph.microsoft.com/.default")
    for token in (
        graph_token.token,
        cloud_signed(cloud, {**claims_of(api_callers.operator_token), "aud": "api://else"}),
    ):
        mark = request_mark(cloud)
        response, out = await call(handlers, function, bearer=token)
        message = assert_refused(response, 401, "Unauthorized", token)
        assert "audience" in message and 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert out.calls == 0 and backend_calls(cloud, mark) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": -3600, "iat": -7200, "nbf": -7200}, "expired"),
        ({"exp": -61, "iat": -3660, "nbf": -3660}, "expired"),  # just past the minute of clock skew
        ({"nbf": 600, "iat": 600, "exp": 4200}, "not valid yet"),
    ],
)
async def test_a_token_outside_its_lifetime_is_a_401(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    api_callers: ApiCallers,
    change: dict[str, int],
    reason: str,
) -> None:
    """Signed by the cloud's own key with the operator's claims, only the times moved."""
    now = int(time.time())
    claims = {**claims_of(api_callers.operator_token), **{k: now + v for k, v in change.items()}}
    token = cloud_signed(cloud, claims)
    for function in ("rotate_secret", "list_secrets"):
        response, out = await call(handlers, function, bearer=token)
        assert reason in assert_refused(response, 401, "Unauthorized", token)
        assert out.calls == 0


async def test_a_token_within_the_clock_skew_is_accepted(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers
) -> None:
    now = int(time.time())
    claims = {**claims_of(api_callers.operator_token), "exp": now - 20, "iat": now - 3620, "nbf": now - 3620}
    response, _ = await call(handlers, "list_secrets", bearer=cloud_signed(cloud, claims))
    assert response.status_code == 200


@pytest.mark.parametrize("kid", ["same", "other"])
async def test_a_token_signed_by_another_key_is_a_401(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, kid: str
) -> None:
    """A self-made RS256 JWT with exactly the operator's claims, signed with the attacker's key
    (naming the cloud's kid, or one of its own)."""
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {"kid": kid_of(cloud) if kid == "same" else "attacker-key", "typ": "JWT"}
    token = jwt.encode(claims_of(api_callers.operator_token), attacker, algorithm="RS256", headers=headers)
    secret = await seeded(cloud)
    mark = request_mark(cloud)
    response, out = await call(handlers, "rotate_secret", secret.name, bearer=token)
    assert_refused(response, 401, "Unauthorized", token)
    assert out.calls == 0 and backend_calls(cloud, mark) == []


async def test_alg_none_and_hs256_with_the_public_key_are_401s(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers
) -> None:
    claims = claims_of(api_callers.operator_token)
    pem = public_pem(cloud)
    tokens = [
        hand_made({"alg": "none", "typ": "JWT", "kid": kid_of(cloud)}, claims, lambda _: b""),
        hand_made({"alg": "none", "typ": "JWT"}, claims, lambda _: b"")[:-1] + ".",
        # The classic key-confusion attack: HMAC keyed with the (public) RSA key.
        hand_made(
            {"alg": "HS256", "typ": "JWT", "kid": kid_of(cloud)},
            claims,
            lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
        ),
        hand_made({"alg": "RS512", "typ": "JWT", "kid": kid_of(cloud)}, claims, lambda _: b"x" * 256),
    ]
    for token in tokens:
        for function in ("rotate_secret", "inventory"):
            mark = request_mark(cloud)
            response, out = await call(handlers, function, bearer=token)
            assert_refused(response, 401, "Unauthorized", token)
            assert out.calls == 0 and backend_calls(cloud, mark) == []


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://login.microsoftonline.com/{tid}/v2.0"},  # the right tenant at another authority
        {"iss": "{authority}/99999999-9999-9999-9999-999999999999/v2.0"},
        {"tid": "99999999-9999-9999-9999-999999999999"},
        {"tid": None},
        {"exp": None},
        {"aud": None},
    ],
)
async def test_a_token_from_another_issuer_or_without_its_claims_is_a_401(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, change: dict[str, str | None]
) -> None:
    claims = claims_of(api_callers.operator_token)
    for key, value in change.items():
        if value is None:
            claims.pop(key)
        else:
            claims[key] = value.format(tid=cloud.tenant_id, authority=cloud.authority)
    token = cloud_signed(cloud, claims)
    response, out = await call(handlers, "rotate_secret", bearer=token)
    assert_refused(response, 401, "Unauthorized", token)
    assert out.calls == 0


@pytest.mark.parametrize(
    "authorization", ["Basic b3BlcmF0b3I6cGFzc3dvcmQ=", "Bearer", "Bearer garbage", "x-functions-key"]
)
async def test_anything_but_a_bearer_token_is_a_401(
    cloud: RotatorCloud, handlers: dict[str, Any], authorization: str
) -> None:
    response, out = await call(handlers, "rotate_secret", bearer=NO_TOKEN, headers={"Authorization": authorization})
    assert_refused(response, 401, "Unauthorized", "b3BlcmF0b3I6cGFzc3dvcmQ=", "garbage")
    assert out.calls == 0


# ------------------------------------------------------------------- X-MS-CLIENT-PRINCIPAL


@pytest.mark.parametrize("bearer", [NO_TOKEN, "not.a.token"])
async def test_a_forged_client_principal_without_a_valid_token_is_a_401_and_never_logged(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, bearer: str
) -> None:
    secret = await seeded(cloud)
    headers = {"X-MS-CLIENT-PRINCIPAL": forged_principal("Rotation.Operator", "Rotation.Reader")}
    mark = request_mark(cloud)
    for function in ("rotate_secret", *GET_ROUTES):
        response, out = await call(handlers, function, secret.name, bearer=bearer, headers=headers)
        assert_refused(response, 401, "Unauthorized", FORGED_NAME)
        assert out.calls == 0
    assert backend_calls(cloud, mark) == []
    assert not events_named(logs.records, "RotationEnqueued")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in logs.records)
    assert FORGED_NAME not in logged


async def test_a_client_principal_grants_nothing_a_token_does_not(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, logs: pytest.LogCaptureFixture
) -> None:
    """A reader's valid token, with a principal header of the same object id claiming Operator: the
    token's roles decide (403). Naming another object id than the token's is a 401."""
    secret = await seeded(cloud)
    reader_oid = claims_of(api_callers.reader_token)["oid"]
    same = {"X-MS-CLIENT-PRINCIPAL": forged_principal("Rotation.Operator", object_id=reader_oid)}
    response, out = await call(handlers, "rotate_secret", secret.name, bearer=api_callers.reader_token, headers=same)
    assert_refused(response, 403, "Forbidden")
    assert out.calls == 0
    other = {"X-MS-CLIENT-PRINCIPAL": forged_principal("Rotation.Operator")}
    response, out = await call(handlers, "rotate_secret", secret.name, bearer=api_callers.operator_token, headers=other)
    assert_refused(response, 401, "Unauthorized", FORGED_NAME)
    assert out.calls == 0
    for bad in (client_principal("Rotation.Operator")[:-3] + "%%%", ""):
        response, _ = await call(handlers, "list_secrets", headers={"X-MS-CLIENT-PRINCIPAL": bad})
        assert_refused(response, 401, "Unauthorized")
    assert FORGED_NAME not in "\n".join(r.getMessage() for r in logs.records)


async def test_with_app_service_auth_the_platforms_principal_rides_along(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, logs: pytest.LogCaptureFixture
) -> None:
    """App Service authentication on: the platform's header for the same caller; the logged caller
    is still the token's, never the header's name."""
    secret = await seeded(cloud)
    oid = claims_of(api_callers.operator_token)["oid"]
    headers = {"X-MS-CLIENT-PRINCIPAL": forged_principal("Rotation.Operator", object_id=oid)}
    response, out = await call(handlers, "rotate_secret", secret.name, headers=headers)
    assert response.status_code == 202, response.get_body()
    assert len(out.messages()) == 1
    (enqueued,) = events_named(logs.records, "RotationEnqueued")
    assert enqueued["callerObjectId"] == oid == api_callers.operator.object_id
    assert enqueued["callerAppId"] == api_callers.operator.app_id
    assert FORGED_NAME not in json.dumps(enqueued)


# --------------------------------------------------------------------------------- roles: 403 / 2xx


async def test_a_valid_token_without_any_role_is_a_403_everywhere(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers
) -> None:
    secret = await seeded(cloud)
    for function in ("rotate_secret", *GET_ROUTES):
        mark = request_mark(cloud)
        response, out = await call(handlers, function, secret.name, bearer=api_callers.stranger_token)
        message = assert_refused(response, 403, "Forbidden", api_callers.stranger_token)
        assert "Rotation." in message
        assert out.calls == 0 and backend_calls(cloud, mark) == []


async def test_a_reader_may_read_but_not_rotate(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers
) -> None:
    secret = await seeded(cloud)
    mark = request_mark(cloud)
    response, out = await call(handlers, "rotate_secret", secret.name, bearer=api_callers.reader_token)
    assert "Rotation.Operator" in assert_refused(response, 403, "Forbidden")
    assert out.calls == 0 and backend_calls(cloud, mark) == []
    for function in GET_ROUTES:
        response, _ = await call(handlers, function, secret.name, bearer=api_callers.reader_token)
        assert response.status_code == 200, (function, response.get_body())


async def test_an_operator_may_rotate_and_read(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, logs: pytest.LogCaptureFixture
) -> None:
    secret = await seeded(cloud)
    response, out = await call(handlers, "rotate_secret", secret.name, bearer=api_callers.operator_token)
    assert response.status_code == 202, response.get_body()
    (request,) = out.requests()
    assert request.secret == secret.name
    (enqueued,) = events_named(logs.records, "RotationEnqueued")
    claims = claims_of(api_callers.operator_token)
    assert enqueued["caller"] == f"aad oid={claims['oid']} appid={claims['appid']}"
    for function in GET_ROUTES:
        response, _ = await call(handlers, function, secret.name, bearer=api_callers.operator_token)
        assert response.status_code == 200, (function, response.get_body())


async def test_a_v1_token_for_the_identifier_uri_is_accepted(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers
) -> None:
    """An API whose tokens are v1.0 (accessTokenAcceptedVersion null): iss sts.windows.net, aud the URI."""
    secret = await seeded(cloud)
    claims = {
        **claims_of(api_callers.operator_token),
        "iss": f"https://sts.windows.net/{cloud.tenant_id}/",
        "aud": cloud.api.identifier_uri,
        "ver": "1.0",
    }
    response, _ = await call(handlers, "rotate_secret", secret.name, bearer=cloud_signed(cloud, claims))
    assert response.status_code == 202, response.get_body()


async def test_the_roles_come_from_the_settings(
    cloud: RotatorCloud, handlers: dict[str, Any], api_callers: ApiCallers, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = await seeded(cloud)
    monkeypatch.setenv("ROTATION_OPERATOR_ROLE", "Secrets.Rotate")
    monkeypatch.setenv("ROTATION_READER_ROLE", "Secrets.Read")
    response, _ = await call(handlers, "rotate_secret", secret.name, bearer=api_callers.operator_token)
    assert "Secrets.Rotate" in assert_refused(response, 403, "Forbidden")
    response, _ = await call(handlers, "list_secrets", bearer=api_callers.reader_token)
    assert_refused(response, 403, "Forbidden")
    cloud.expose_api(
        cloud.api.app_id,
        identifier_uris=[cloud.api.identifier_uri],
        app_roles=["Rotation.Operator", "Rotation.Reader", "Secrets.Rotate"],
    )
    try:
        renamed: ApiClient = cloud.api_client("renamed-role operator", "Secrets.Rotate")
        token = await asyncio.to_thread(cloud.api_token, renamed)
        response, _ = await call(handlers, "rotate_secret", secret.name, bearer=token)
        assert response.status_code == 202
        response, _ = await call(handlers, "list_secrets", bearer=token)  # an operator may read
        assert response.status_code == 200
    finally:
        roles = ["Rotation.Operator", "Rotation.Reader"]
        cloud.expose_api(cloud.api.app_id, identifier_uris=[cloud.api.identifier_uri], app_roles=roles)


@pytest.mark.parametrize("audience", ["{app_id}", "{uri},{app_id}"])
async def test_the_audience_comes_from_the_setting(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    api_callers: ApiCallers,
    monkeypatch: pytest.MonkeyPatch,
    audience: str,
) -> None:
    monkeypatch.setenv("ROTATION_API_AUDIENCE", audience.format(app_id=cloud.api.app_id, uri=cloud.api.identifier_uri))
    response, _ = await call(handlers, "list_secrets")
    assert response.status_code == 200
    # A v2.0 token's aud is the client id: an audience setting naming only the URI refuses it.
    monkeypatch.setenv("ROTATION_API_AUDIENCE", cloud.api.identifier_uri)
    response, _ = await call(handlers, "list_secrets")
    assert_refused(response, 401, "Unauthorized")


# ------------------------------------------------------------------------------ fail closed


@pytest.mark.parametrize("function", ["rotate_secret", *GET_ROUTES])
async def test_without_an_api_audience_every_route_refuses_every_request(
    cloud: RotatorCloud,
    handlers: dict[str, Any],
    api_callers: ApiCallers,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
) -> None:
    monkeypatch.delenv("ROTATION_API_AUDIENCE")
    secret = await seeded(cloud)
    mark = request_mark(cloud)
    headers = {"X-MS-CLIENT-PRINCIPAL": forged_principal("Rotation.Operator")}
    response, out = await call(handlers, function, secret.name, bearer=api_callers.operator_token, headers=headers)
    message = assert_refused(response, 500, "AuthenticationNotConfigured")
    assert "ROTATION_API_AUDIENCE" in message
    assert out.calls == 0 and backend_calls(cloud, mark) == []


async def test_a_bad_api_audience_is_a_settings_error(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ROTATION_API_AUDIENCE", "rotator api")
    response, _ = await call(handlers, "list_secrets")
    assert_refused(response, 500, "InternalError")
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert any("ROTATION_API_AUDIENCE" in problem for problem in invalid["problems"])
