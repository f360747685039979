"""Hostile or absurd input through the real function objects (trust issue, findings 5, 12-15).

Each test is an attacker's or a careless writer's move: a Key Vault writer planting an absurd tag, a
caller sending JSON that parses differently than it reads, a queue message built to crash the worker
and then the poison handler. None of them may stop the sweep, crash a handler, leak a setting's
value, or be read as something it is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from emulator.rotator_profile import READER_ROLE, RotatorCloud
from rotation.cli import main as rotation_cli
from rotation.domain.model import ReconcileRequest
from tests.functions.harness import Collector, events_named, http_request, queue_message, request_mark, requests_since
from tests.integration.seed import seed_managed_secret

#: A RetireAfter a vault writer can store: valid ISO 8601, but one minute from year 1 with a +23:59
#: offset lies before datetime.min in UTC, so converting it overflows.
OVERFLOWING_TIME = "0001-01-01T00:00:00+23:59"


# ----------------------------------------------------------------------------- 5: one bad tag


@pytest.fixture
def own_cloud(private_cloud: Any, monkeypatch: pytest.MonkeyPatch) -> RotatorCloud:
    cloud: RotatorCloud = private_cloud(vaults=("kv-alpha",))
    for key, value in cloud.env.items():
        monkeypatch.setenv(key, value)
    return cloud


@pytest.mark.parametrize("retire_after", [OVERFLOWING_TIME, "9999-12-31T23:59:59Z"])
async def test_one_absurd_tag_never_stops_the_sweep_status_or_the_list_route(
    own_cloud: RotatorCloud,
    handlers: dict[str, Any],
    logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    retire_after: str,
) -> None:
    due = await asyncio.to_thread(seed_managed_secret, own_cloud, vault="kv-alpha", expires_in_days=5)
    planted = await asyncio.to_thread(
        seed_managed_secret,
        own_cloud,
        vault="kv-alpha",
        expires_in_days=80,
        tags={"RetireCredentialId": "00000000-0000-0000-0000-000000000001", "RetireAfter": retire_after},
    )

    out: Collector[list[str]] = Collector()
    await handlers["sweep"](func.timer.TimerRequest(past_due=False), out)

    enqueued = {r.secret for r in out.requests()}
    assert due.name in enqueued  # the others' work is still done
    expiring = [e for e in events_named(logs.records, "CredentialExpiring") if e["secret"] == due.name]
    assert len(expiring) == 1
    (completed,) = events_named(logs.records, "SweepCompleted")
    assert completed["managed"] == 2
    assert not events_named(logs.records, "SweepFailed")

    reader = await asyncio.to_thread(own_cloud.api_client, "dashboard", READER_ROLE)
    token = await asyncio.to_thread(own_cloud.api_token, reader)
    response = await handlers["list_secrets"](http_request("GET", "/api/secrets", bearer=token))
    assert response.status_code == 200, response.get_body()
    listed = {s["secret"]: s for s in json.loads(response.get_body())["secrets"]}
    assert set(listed) == {due.name, planted.name}

    capsys.readouterr()
    code = await asyncio.to_thread(rotation_cli, ["status", "--json"])
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err and code in (0, 1)
    names = {s["secret"] for s in json.loads(printed.out)["secrets"]}
    assert names == {due.name, planted.name}


# ------------------------------------------------------------- 12, 15: JSON that lies or explodes


NESTED = b'{"reason": "x", "emergency": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"reason": "leak", "emergency": false, "emergency": true}', "duplicate"),
        (b'{"reason": "leak", "reason": "another"}', "duplicate"),
        (NESTED[:8000], "JSON"),  # under the size limit, and still deeply nested
        (b'{"reason": "leak", "emergency": NaN}', "JSON"),
    ],
)
async def test_a_body_that_reads_two_ways_or_explodes_is_a_400(
    cloud: RotatorCloud, handlers: dict[str, Any], body: bytes, problem: str
) -> None:
    out: Collector[str] = Collector()
    request = http_request(
        "POST",
        "/api/secrets/kv-local/app-secret/rotate",
        route_params={"vault": "kv-local", "name": "app-secret"},
        body=body,
    )
    response = await handlers["rotate_secret"](request, out)
    assert response.status_code == 400, response.get_body()
    error = json.loads(response.get_body())["error"]
    assert error["code"] == "BadRequest" and problem in error["message"]
    assert out.calls == 0


def _message(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = json.loads(
        ReconcileRequest.new("kv-local", "app-secret", now=datetime.now(UTC), reason="t").to_json()
    )
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "JSON"),
        (json.dumps(_message(requestedAt=OVERFLOWING_TIME)).encode(), "requestedAt"),
        (json.dumps(_message(mode="normal"))[:-1].encode() + b', "mode": "emergency"}', "duplicate"),
    ],
)
@pytest.mark.usefixtures("fast_settings")
async def test_a_poison_pill_is_rejected_as_malformed_and_the_poison_handler_still_logs_it(
    cloud: RotatorCloud, handlers: dict[str, Any], logs: pytest.LogCaptureFixture, body: bytes, problem: str
) -> None:
    mark = request_mark(cloud)
    assert await handlers["rotate_worker"](queue_message(body)) is None
    (rejected,) = events_named(logs.records, "MessageRejected")
    assert any(problem in p for p in rejected["problems"]), rejected
    assert requests_since(cloud, mark) == []
    assert await handlers["rotation_poisoned"](queue_message(body)) is None
    records = [r for r in logs.records if r.getMessage().startswith("RotationPoisoned")]
    assert len(records) == 1 and records[0].levelno == logging.ERROR


# ---------------------------------------------------------------------- 13: names are whole names


@pytest.mark.parametrize(("vault", "name"), [("kv-local", "app-secret\n"), ("kv-local\n", "app-secret")])
async def test_a_trailing_newline_is_not_part_of_a_valid_name(
    cloud: RotatorCloud, handlers: dict[str, Any], vault: str, name: str
) -> None:
    out: Collector[str] = Collector()
    request = http_request(
        "POST", f"/api/secrets/{vault}/{name}/rotate", route_params={"vault": vault, "name": name}, body={"reason": "x"}
    )
    response = await handlers["rotate_secret"](request, out)
    assert response.status_code in (400, 404), response.get_body()
    assert out.calls == 0
    with pytest.raises(Exception, match="name"):
        ReconcileRequest.new(vault, name, now=datetime.now(UTC), reason="x")


# --------------------------------------------------------------- 14: a 500 says nothing of settings


async def test_bad_settings_are_a_500_that_names_no_setting_value(
    cloud: RotatorCloud, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    private_url = "https://kv-internal-payments.vault.azure.net"
    monkeypatch.setenv("ROTATION_VAULTS", f"kv-local={private_url},kv-local=https://dup.vault.azure.net")
    out: Collector[str] = Collector()
    request = http_request(
        "POST",
        "/api/secrets/kv-local/app-secret/rotate",
        route_params={"vault": "kv-local", "name": "app-secret"},
        body={"reason": "x"},
    )
    response = await handlers["rotate_secret"](request, out)
    assert response.status_code == 500
    text = response.get_body().decode()
    assert "kv-internal-payments" not in text and "ROTATION_VAULTS" not in text
    error = json.loads(text)["error"]
    assert error["code"] == "InternalError" and response.headers["x-ms-operation-id"] in error["message"]
    (invalid,) = events_named(logs.records, "SettingsInvalid")
    assert any("ROTATION_VAULTS" in p for p in invalid["problems"])  # the operator finds it in the log
