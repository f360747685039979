"""HTTP functions against the local cloud: rotate (202/400/404/409/500), status and list, called
as the operator (the harness's default bearer token); the 401s and 403s are in test_operator_auth.py."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import azure.functions as func
import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator.rotator_profile import RotatorCloud
from functions.config import EdgeConfig
from tests.functions.conftest import ApiCallers
from tests.functions.harness import (
    Collector,
    app_handlers,
    body_of,
    events_named,
    http_request,
    request_mark,
    requests_since,
)
from tests.integration.seed import SeededSecret, seed_managed_secret, unique, write_secret


async def seeded(cloud: RotatorCloud, **kwargs: Any) -> SeededSecret:
    return await asyncio.to_thread(seed_managed_secret, cloud, **kwargs)


async def rotate(
    handlers: dict[str, Any],
    vault: str,
    name: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[func.HttpResponse, Collector[str]]:
    out: Collector[str] = Collector()
    req = http_request(
        "POST",
        f"/api/secrets/{vault}/{name}/rotate",
        route_params={"vault": vault, "name": name},
        body=body,
        headers=headers,
    )
    response = await handlers["rotate_secret"](req, out)
    return response, out


def secret_reads(cloud: RotatorCloud, mark: int, name: str) -> list[dict[str, Any]]:
    """Successful reads of one secret: the value-free version list, and never a value read."""
    calls = [
        r
        for r in requests_since(cloud, mark, "keyvault")
        if r["method"] == "GET" and r["path"].startswith(f"/secrets/{name}") and r["status"] == 200
    ]
    assert all(r["path"].split("?")[0] == f"/secrets/{name}/versions" for r in calls), calls
    return calls


def assert_error(response: func.HttpResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_body()
    body = body_of(response)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.get_body().decode()
    return body


# ------------------------------------------------------------------------------------------- rotate


async def test_rotate_enqueues_one_request_and_answers_202(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    secret = await seeded(cloud)
    mark = request_mark(cloud)
    response, out = await rotate(handlers, "kv-local", secret.name, {"reason": "suspected leak in a build log"})

    assert response.status_code == 202, response.get_body()
    body = body_of(response)
    assert set(body) == {"operationId", "statusUrl"}
    assert body["statusUrl"].endswith(f"/api/secrets/kv-local/{secret.name}")
    assert response.headers["Location"] == body["statusUrl"]
    (request,) = out.requests()
    assert out.calls == 1
    assert (request.vault, request.secret, request.mode) == ("kv-local", secret.name, "forced")
    assert request.reason == "suspected leak in a build log"
    assert request.operation_id == body["operationId"] == response.headers["x-ms-operation-id"]
    # One Key Vault read proves the secret is managed; nothing is written, Graph is not asked.
    assert len(secret_reads(cloud, mark, secret.name)) == 1
    vault_calls = requests_since(cloud, mark, "keyvault")
    assert all(r["method"] == "GET" for r in vault_calls), vault_calls
    assert requests_since(cloud, mark, "graph") == []


async def test_an_emergency_rotation_is_queued_as_emergency(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, api_callers: ApiCallers
) -> None:
    secret = await seeded(cloud)
    response, out = await rotate(handlers, "KV-Local", secret.name, {"reason": "leaked", "emergency": True})
    assert response.status_code == 202
    (request,) = out.requests()
    assert request.mode == "emergency" and request.vault == "kv-local"
    (enqueued,) = events_named(logs.records, "RotationEnqueued")
    assert enqueued["source"] == "http"
    # Who asked: the operator's token's claims (its service principal and app).
    assert enqueued["callerObjectId"] == api_callers.operator.object_id
    assert enqueued["callerAppId"] == api_callers.operator.app_id
    assert enqueued["operationId"] == request.operation_id


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        {},
        {"reason": ""},
        {"reason": "x" * 501},
        {"reason": 42},
        {"reason": "ok", "emergency": "true"},
        {"reason": "ok", "secret": "someone-else"},
        ["reason"],
    ],
)
async def test_a_bad_body_is_a_400_before_any_io(cloud: RotatorCloud, handlers: dict[str, Any], body: Any) -> None:
    mark = request_mark(cloud)
    response, out = await rotate(handlers, "kv-local", "any-secret", body)
    assert_error(response, 400, "BadRequest")
    assert out.calls == 0
    assert requests_since(cloud, mark) == []


async def test_an_invalid_secret_name_is_a_400(handlers: dict[str, Any], cloud: RotatorCloud) -> None:
    response, out = await rotate(handlers, "kv-local", "not_a_secret_name", {"reason": "x"})
    assert_error(response, 400, "BadRequest")
    assert out.calls == 0


async def test_a_vault_that_is_not_managed_is_a_404(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    mark = request_mark(cloud)
    response, out = await rotate(handlers, "kv-elsewhere", "app-secret", {"reason": "x"})
    body = assert_error(response, 404, "UnknownVault")
    assert "kv-local" not in body["error"]["message"]
    assert out.calls == 0 and requests_since(cloud, mark) == []


async def test_a_missing_secret_is_a_404(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    response, out = await rotate(handlers, "kv-local", unique("missing"), {"reason": "x"})
    assert_error(response, 404, "SecretNotFound")
    assert out.calls == 0


async def test_a_secret_without_provider_address_is_a_404(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    name = unique("unmanaged")
    await write_secret(cloud, "kv-local", name, "a-value-nobody-manages-1234", tags={"owner": "team-a"})
    mark = request_mark(cloud)
    response, out = await rotate(handlers, "kv-local", name, {"reason": "x"})
    assert_error(response, 404, "NotManaged")
    assert out.calls == 0
    assert len(secret_reads(cloud, mark, name)) == 1


async def test_a_managed_secret_with_unusable_tags_is_a_409(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    secret = await seeded(cloud, tags={"ProviderAddress": "not-a-guid"})
    response, out = await rotate(handlers, "kv-local", secret.name, {"reason": "x"})
    body = assert_error(response, 409, "BadTags")
    assert "ProviderAddress" in body["error"]["message"]
    assert out.calls == 0


# ------------------------------------------------------------------------------------ 500s as JSON


async def test_bad_settings_are_a_500_that_points_at_the_log(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ROTATION_VALIDITY_DAYS", "ninety")
    response, out = await rotate(handlers, "kv-local", "app-secret", {"reason": "x"})
    body = assert_error(response, 500, "InternalError")
    assert "ninety" not in body["error"]["message"]
    assert response.headers["x-ms-operation-id"] in body["error"]["message"]
    assert out.calls == 0
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert invalid["function"] == "rotate_secret"
    assert invalid["operationId"] == response.headers["x-ms-operation-id"]
    assert any("ROTATION_VALIDITY_DAYS" in p for p in invalid["problems"])


def explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("internal detail: connection pool exhausted at 0xdeadbeef")


async def test_an_unexpected_failure_is_a_500_without_details(
    cloud: RotatorCloud, logs: pytest.LogCaptureFixture
) -> None:
    handlers = app_handlers(EdgeConfig(runtime=explode))
    response, out = await rotate(handlers, "kv-local", "app-secret", {"reason": "x"})
    body = assert_error(response, 500, "InternalError")
    operation_id = response.headers["x-ms-operation-id"]
    assert operation_id in body["error"]["message"]
    assert "0xdeadbeef" not in response.get_body().decode()
    assert out.calls == 0
    logged = [r for r in logs.records if r.levelno >= logging.ERROR and operation_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None


# ------------------------------------------------------------------------------------------ status


async def test_status_of_a_managed_secret(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    secret = await seeded(cloud, expires_in_days=10)
    mark = request_mark(cloud)
    req = http_request(
        "GET", f"/api/secrets/kv-local/{secret.name}", route_params={"vault": "kv-local", "name": secret.name}
    )
    response = await handlers["secret_status"](req)
    assert response.status_code == 200
    status = body_of(response)
    assert status["vault"] == "kv-local" and status["secret"] == secret.name
    assert status["appId"] == secret.app_id and status["credentialId"] == secret.key_id
    assert 9 < status["daysToExpiry"] <= 10
    assert status["needsWork"] and "rotation due" in status["needsWork"]
    assert status["pendingRetirement"] is None
    assert secret.value not in response.get_body().decode()
    assert len(secret_reads(cloud, mark, secret.name)) == 1
    assert requests_since(cloud, mark, "graph") == []


@pytest.mark.parametrize(("vault", "code"), [("kv-local", "SecretNotFound"), ("kv-nowhere", "UnknownVault")])
async def test_status_404s(cloud: RotatorCloud, handlers: dict[str, Any], vault: str, code: str) -> None:
    name = unique("missing")
    req = http_request("GET", f"/api/secrets/{vault}/{name}", route_params={"vault": vault, "name": name})
    assert_error(await handlers["secret_status"](req), 404, code)


async def test_list_shows_managed_secrets_from_list_calls_only(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    due = await seeded(cloud, expires_in_days=5)
    fresh = await seeded(cloud, vault="kv-second", expires_in_days=80)
    unmanaged = unique("plain")
    await write_secret(cloud, "kv-local", unmanaged, "not-managed-value-123456")
    mark = request_mark(cloud)
    response = await handlers["list_secrets"](http_request("GET", "/api/secrets"))
    assert response.status_code == 200
    body = body_of(response)
    by_name = {s["secret"]: s for s in body["secrets"]}
    assert body["count"] == len(body["secrets"])
    assert by_name[due.name]["needsWork"] and by_name[due.name]["vault"] == "kv-local"
    assert by_name[fresh.name]["needsWork"] is None and by_name[fresh.name]["vault"] == "kv-second"
    assert unmanaged not in by_name
    # Only list calls: no per-secret read, so no value ever crosses the wire for a listing.
    for call in requests_since(cloud, mark, "keyvault"):
        assert call["method"] == "GET" and call["path"].split("?")[0] == "/secrets", call


async def test_list_one_vault(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    response = await handlers["list_secrets"](http_request("GET", "/api/secrets", params={"vault": "kv-second"}))
    assert response.status_code == 200
    assert {s["vault"] for s in body_of(response)["secrets"]} <= {"kv-second"}
    response = await handlers["list_secrets"](http_request("GET", "/api/secrets", params={"vault": "kv-nope"}))
    assert_error(response, 404, "UnknownVault")


async def disable_latest(cloud: RotatorCloud, secret: SeededSecret) -> None:
    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(cloud.vault_url(secret.vault), credential, verify_challenge_resource=False) as client,
    ):
        await client.update_secret_properties(secret.name, secret.version, enabled=False)


async def test_a_disabled_latest_version_cannot_be_rotated_but_shows_its_status(
    cloud: RotatorCloud, handlers: dict[str, Any]
) -> None:
    secret = await seeded(cloud)
    await disable_latest(cloud, secret)
    response, out = await rotate(handlers, "kv-local", secret.name, {"reason": "x"})
    assert_error(response, 409, "SecretDisabled")
    assert out.calls == 0
    req = http_request(
        "GET", f"/api/secrets/kv-local/{secret.name}", route_params={"vault": "kv-local", "name": secret.name}
    )
    response = await handlers["secret_status"](req)
    assert response.status_code == 200
    status = body_of(response)
    assert status["enabled"] is False and status["needsWork"] is None
