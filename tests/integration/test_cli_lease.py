"""The command line takes the queue worker's per-secret blob lease (finding 3 of the trust issue).

With `AzureWebJobsStorage` configured, `rotate`, `sweep` and `adopt` hold the same lease as the
function app's workers (`rotation-locks/{vault}/{secret}` in Azurite here), so an operator's shell
and a worker never write the same secret at once; a held lease refuses the command with nothing
done. Without storage the command line keeps its in-process lock and says so once on stderr.
Assertions count the local cloud's requests, never wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.cli import main
from tests.functions.harness import add_password_calls, foreign_lease, request_mark, rotator_credentials
from tests.integration.seed import SeededSecret, create_owned_app, seed_managed_secret, unique, write_secret

FAST = {"ROTATION_VALIDATION_SUCCESSES": "1", "ROTATION_GRACE_HOURS": "0"}
BUSY = "another worker is reconciling"
NO_STORAGE = "no storage configured: not excluded from the function app's workers"


@pytest.fixture(autouse=True)
def _fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def writes_since(cloud: RotatorCloud, mark: int) -> list[dict[str, Any]]:
    log = cloud.admin("GET", f"/requests?since={mark}")["requests"]
    return [r for r in log if r["service"] in ("graph", "keyvault") and r["method"] != "GET"]


def lock_key(secret: SeededSecret) -> str:
    return f"{secret.vault}/{secret.name.lower()}"


async def seeded(cloud: RotatorCloud, **kwargs: Any) -> SeededSecret:
    return await asyncio.to_thread(seed_managed_secret, cloud, **kwargs)


@pytest.mark.azurite
async def test_an_emergency_rotate_is_refused_while_a_worker_holds_the_lease(
    cloud: RotatorCloud, azurite: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = await seeded(cloud, expires_in_days=5)
    mark = request_mark(cloud)
    async with foreign_lease(lock_key(secret)):
        status, out, err = await asyncio.to_thread(run, capsys, "rotate", secret.vault, secret.name, "--emergency")
    assert status != 0 and out == ""
    assert f"{BUSY} {secret.vault}/{secret.name}; try again in a minute" in err
    assert err.count("\n") == 1
    assert writes_since(cloud, mark) == [], "nothing may be written while another worker holds the lease"
    assert rotator_credentials(cloud, secret.object_id) == []

    # Once the worker is done, the same command goes through (and releases the lease after itself).
    status, out, err = await asyncio.to_thread(run, capsys, "rotate", secret.vault, secret.name, "--emergency")
    assert status == 0, err
    assert NO_STORAGE not in err
    async with foreign_lease(lock_key(secret)):
        pass


@pytest.mark.azurite
async def test_two_concurrent_command_line_rotates_rotate_once(
    cloud: RotatorCloud, azurite: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation waits out a few seconds of propagation, so the two runs overlap.
    cloud.admin("PUT", "/config", {"propagationSeconds": 3})
    monkeypatch.setenv("ROTATION_VALIDATION_SUCCESSES", "2")
    secret = await seeded(cloud, expires_in_days=5)
    mark = request_mark(cloud)

    statuses = await asyncio.gather(
        *(asyncio.to_thread(main, ["rotate", secret.vault, secret.name, "--force"]) for _ in range(2))
    )
    err = capsys.readouterr().err

    assert sorted(statuses) == [0, 1], err
    assert len(add_password_calls(cloud, mark)) == 1
    assert len(rotator_credentials(cloud, secret.object_id)) == 1
    assert err.count(BUSY) == 1


@pytest.mark.azurite
async def test_sweep_leaves_a_secret_a_worker_holds_alone(
    cloud: RotatorCloud, azurite: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = await seeded(cloud, vault="kv-second", expires_in_days=3)
    async with foreign_lease(lock_key(secret)):
        _, out, _ = await asyncio.to_thread(run, capsys, "sweep", "--json")
    outcomes = {(o["vault"], o["secret"]): o for o in json.loads(out)["outcomes"]}
    mine = outcomes[(secret.vault, secret.name)]
    assert mine["action"] == "skipped" and mine["error"]["code"] == "LockHeld", mine
    assert rotator_credentials(cloud, secret.object_id) == []


@pytest.mark.azurite
async def test_adopt_is_refused_while_a_worker_holds_the_lease(
    cloud: RotatorCloud, azurite: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = await asyncio.to_thread(create_owned_app, cloud, unique("svc"))
    name = unique("legacy")
    await write_secret(cloud, "kv-local", name, "x" * 40)
    mark = request_mark(cloud)
    async with foreign_lease(f"kv-local/{name}"):
        status, _, err = await asyncio.to_thread(run, capsys, "adopt", "kv-local", name, "--app", app["appId"])
    assert status != 0
    assert f"{BUSY} kv-local/{name}; try again in a minute" in err
    assert writes_since(cloud, mark) == []


def test_without_storage_the_command_line_says_it_is_not_excluded_from_workers(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri"):
        monkeypatch.delenv(name, raising=False)
    secret = seed_managed_secret(cloud, expires_in_days=5)
    status, _, err = run(capsys, "rotate", secret.vault, secret.name)
    assert status == 0, err
    assert err.count(NO_STORAGE) == 1
