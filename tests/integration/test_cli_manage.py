"""`python -m rotation rotate|sweep|status|adopt` in-process against the local cloud.

Every error a user can cause prints one line saying what is wrong and what to do, exits non-zero and
changes nothing (checked from the local cloud's request log); no output holds a secret value.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.cli import main
from tests.integration.seed import create_owned_app, seed_managed_secret, unique, write_secret

FAST = {"ROTATION_VALIDATION_SUCCESSES": "1", "ROTATION_GRACE_HOURS": "0"}


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
    return [r for r in log if r["service"] in ("graph", "keyvault") and r["method"] not in ("GET",)]


def mark(cloud: RotatorCloud) -> int:
    return int(cloud.admin("GET", "/requests?since=0")["next"])


def assert_no_secrets(cloud: RotatorCloud, *texts: str) -> None:
    for value in cloud.admin("GET", "/issued-secrets")["secrets"]:
        for text in texts:
            assert value not in text


def test_rotate_json_rotates_a_due_secret_and_status_shows_it(cloud: RotatorCloud, capsys: Any) -> None:
    seeded = seed_managed_secret(cloud, expires_in_days=5)
    status, out, err = run(capsys, "rotate", seeded.vault, seeded.name, "--json")
    assert status == 0, err
    outcome = json.loads(out)
    assert outcome["action"] == "rotated" and outcome["ok"] and outcome["state"] == "active"
    assert outcome["retiredKeyIds"] == [seeded.key_id]

    status, out, err = run(capsys, "status", seeded.vault, "--json")
    assert status == 0, err
    mine = next(s for s in json.loads(out)["secrets"] if s["secret"] == seeded.name)
    assert mine["state"] == "active" and mine["credentialId"] == outcome["createdKeyId"]
    assert mine["needsWork"] is None and mine["daysToExpiry"] > 80
    assert_no_secrets(cloud, out, err)


def test_rotate_human_output_and_dry_run_changes_nothing(cloud: RotatorCloud, capsys: Any) -> None:
    seeded = seed_managed_secret(cloud, expires_in_days=5)
    before = mark(cloud)
    status, out, _ = run(capsys, "rotate", seeded.vault, seeded.name, "--dry-run")
    assert status == 0
    assert "(dry run)" in out and "would rotate" in out
    assert writes_since(cloud, before) == []
    status, out, _ = run(capsys, "rotate", seeded.vault, seeded.name)
    assert status == 0 and f"{seeded.vault}/{seeded.name}: rotated" in out and "new credential" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("rotate", "kv-nowhere", "some-secret"), "is not one of the vaults this rotator manages"),
        (("rotate", "kv-local", "no-such-secret"), "was not found in vault 'kv-local'"),
        (("rotate", "kv-local", "bad_name!"), "is not a Key Vault secret name"),
        (("status", "kv-nowhere"), "is not one of the vaults"),
        (("sweep", "--concurrency", "0"), "--concurrency must be between 1 and 64"),
    ],
)
def test_user_errors_are_one_line_non_zero_and_change_nothing(
    cloud: RotatorCloud, capsys: Any, argv: tuple[str, ...], fragment: str
) -> None:
    before = mark(cloud)
    status, out, err = run(capsys, *argv)
    assert status != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert writes_since(cloud, before) == []


def test_an_unmanaged_secret_is_refused_in_one_line(cloud: RotatorCloud, capsys: Any) -> None:
    name = unique("plain")
    asyncio.run(write_secret(cloud, "kv-local", name, "x" * 40))
    before = mark(cloud)
    status, out, err = run(capsys, "rotate", "kv-local", name)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "not managed by the rotator" in err and "ProviderAddress" in err
    assert writes_since(cloud, before) == []


def test_bad_settings_are_one_line_naming_the_variable(
    cloud: RotatorCloud, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_GRACE_HOURS", "a day")
    status, out, err = run(capsys, "status")
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "ROTATION_GRACE_HOURS" in err


def test_missing_permission_names_it_and_changes_nothing(cloud: RotatorCloud, capsys: Any) -> None:
    seeded = seed_managed_secret(cloud, expires_in_days=5)
    # The rotator no longer owns the app: Graph refuses the write (it still reads every app), and the
    # message says what to grant.
    cloud.admin("DELETE", f"/applications/{seeded.object_id}/owners/{cloud.rotator.sp_object_id}")
    before = mark(cloud)
    passwords = [p.key_id for p in cloud.passwords(seeded.object_id)]
    status, out, err = run(capsys, "rotate", seeded.vault, seeded.name)
    assert status == 1 and out == ""
    assert "Application.ReadWrite.OwnedBy" in err and "owner" in err
    assert [(w["service"], w["status"]) for w in writes_since(cloud, before)] == [("graph", 403)]  # refused
    assert [p.key_id for p in cloud.passwords(seeded.object_id)] == passwords


def test_sweep_rotates_what_is_due_and_reports_nothing_to_do_after(cloud: RotatorCloud, capsys: Any) -> None:
    seeded = seed_managed_secret(cloud, vault="kv-second", expires_in_days=3)
    # The shared cloud holds other tests' secrets too (some deliberately broken), so the overall exit
    # status is theirs as much as ours: look at this secret's outcome.
    _, out, _ = run(capsys, "sweep", "--json")
    outcomes = {(o["vault"], o["secret"]): o for o in json.loads(out)["outcomes"]}
    mine = outcomes[(seeded.vault, seeded.name)]
    assert mine["action"] == "rotated", mine
    _, out, _ = run(capsys, "sweep", "--json")
    assert (seeded.vault, seeded.name) not in {(o["vault"], o["secret"]) for o in json.loads(out)["outcomes"]}
    assert_no_secrets(cloud, out)


def test_adopt_identifies_the_credential_by_hint_and_expiry(cloud: RotatorCloud, capsys: Any) -> None:
    seeded = seed_managed_secret(cloud, tag_credential=False, tags={"ProviderAddress": "x"})
    # Re-write as an unmanaged secret holding the human's value (adopt writes the tags).
    name = unique("legacy")
    asyncio.run(write_secret(cloud, "kv-local", name, seeded.value, expires=_end_of(cloud, seeded)))
    status, out, err = run(capsys, "adopt", "kv-local", name, "--app", seeded.app_id, "--json", "--grace-hours", "2")
    assert status == 0, err
    adopted = json.loads(out)
    assert adopted["credentialId"] == seeded.key_id and adopted["warnings"] == []
    status, out, _ = run(capsys, "status", "kv-local", "--json")
    mine = next(s for s in json.loads(out)["secrets"] if s["secret"] == name)
    assert mine["state"] == "active" and mine["credentialId"] == seeded.key_id
    assert_no_secrets(cloud, out)


def test_adopt_without_a_unique_match_leaves_credential_unset_and_says_so(cloud: RotatorCloud, capsys: Any) -> None:
    app = create_owned_app(cloud, unique("svc"))
    value = cloud.admin("POST", f"/applications/{app['id']}/passwords", {})["secretText"]
    name = unique("legacy")
    # No expiry on the secret and a value whose hint matches nothing: zero candidates.
    asyncio.run(write_secret(cloud, "kv-local", name, "zzz" + value[3:]))
    status, out, err = run(capsys, "adopt", "kv-local", name, "--app", app["appId"], "--json")
    assert status == 0, err
    adopted = json.loads(out)
    assert adopted["credentialId"] is None and "0 credentials match" in adopted["warnings"][0]


def test_adopt_refuses_a_secret_managed_for_another_app_and_changes_nothing(cloud: RotatorCloud, capsys: Any) -> None:
    seeded = seed_managed_secret(cloud)
    other = create_owned_app(cloud, unique("other"))
    before = mark(cloud)
    status, out, err = run(capsys, "adopt", seeded.vault, seeded.name, "--app", other["appId"])
    assert status == 1 and out == ""
    assert "already managed for app" in err
    assert writes_since(cloud, before) == []


def _end_of(cloud: RotatorCloud, seeded: Any) -> datetime:
    for tenant in cloud.admin("GET", "/state")["tenants"]:
        for app in tenant["applications"]:
            for password in app["passwordCredentials"]:
                if password["keyId"] == seeded.key_id:
                    return datetime.fromisoformat(password["endDateTime"].replace("Z", "+00:00"))
    raise AssertionError("credential not found")


def test_json_errors_are_json(cloud: RotatorCloud, capsys: Any) -> None:
    status, out, err = run(capsys, "rotate", "kv-local", "no-such-secret", "--json")
    assert status == 1 and err == ""
    assert json.loads(out)["error"]["code"] == "SecretNotFound"
    assert os.environ.get("ROTATION_VAULTS")


def test_force_rotates_a_healthy_secret_keeping_the_grace_period_and_then_waits(
    cloud: RotatorCloud, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATION_GRACE_HOURS", "24")
    seeded = seed_managed_secret(cloud, expires_in_days=200)
    status, out, _ = run(capsys, "rotate", seeded.vault, seeded.name, "--force", "--json")
    first = json.loads(out)
    assert status == 0 and first["action"] == "rotated" and first["retiredKeyIds"] == []
    status, out, _ = run(capsys, "status", seeded.vault, "--json")
    mine = next(s for s in json.loads(out)["secrets"] if s["secret"] == seeded.name)
    assert mine["pendingRetirement"]["credentialId"] == seeded.key_id  # the old one stays for the grace period
    # A second planned roll inside the grace period waits (the tags hold one retirement at a time)...
    before = mark(cloud)
    status, out, _ = run(capsys, "rotate", seeded.vault, seeded.name, "--force", "--json")
    second = json.loads(out)
    assert second["action"] == "none" and "waits until credential" in second["warnings"][0]
    assert writes_since(cloud, before) == []
    # ...while an emergency retires the pending credential first, then rotates.
    status, out, _ = run(capsys, "rotate", seeded.vault, seeded.name, "--emergency", "--json")
    third = json.loads(out)
    assert third["action"] == "rotated" and seeded.key_id in third["retiredKeyIds"]
    assert first["createdKeyId"] in third["retiredKeyIds"]
