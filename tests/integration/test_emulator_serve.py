"""`python -m emulator serve` and the rotator's profile of the local cloud (emulator/rotator_profile.py).

The JSON line's keys, the `env` names and `GET /_emulator/state`'s `rotator` are interfaces: tests
outside the repository read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import requests

from emulator.rotator_profile import ROTATOR_DISPLAY_NAME, RotatorCloud


def test_serve_prints_one_json_line_with_the_environment(tmp_path: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--vault", "kv-a", "--vault", "kv-b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        described = json.loads(line)
        assert list(described) == [
            "authority",
            "graph",
            "tenantId",
            "managedIdentity",
            "rotator",
            "rotatorApi",
            "vaults",
            "caBundle",
            "admin",
            "env",
        ]
        assert set(described["vaults"]) == {"kv-a", "kv-b"}
        assert list(described["env"]) == [
            "AZURE_AUTHORITY_HOST",
            "ROTATION_GRAPH_URL",
            "ROTATION_VAULTS",
            "ROTATION_TENANT_ID",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "ROTATION_API_AUDIENCE",
        ]
        env = described["env"]
        assert env["ROTATION_VAULTS"] == ",".join(f"{k}={v}" for k, v in described["vaults"].items())
        assert env["ROTATION_TENANT_ID"] == described["tenantId"]
        assert env["ROTATION_GRAPH_URL"] == described["graph"]
        api = described["rotatorApi"]
        assert env["ROTATION_API_AUDIENCE"] == f"{api['appId']},{api['identifierUri']}"
        # A second process trusts it through the printed bundle alone; no id named: the rotator's token.
        identity = requests.get(
            described["managedIdentity"]["endpoint"],
            params={"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"},
            headers={"X-IDENTITY-HEADER": described["managedIdentity"]["header"]},
            verify=described["caBundle"],
            timeout=10,
        )
        assert identity.status_code == 200
        assert identity.json()["client_id"] == described["rotator"]["appId"]
        state = requests.get(f"{described['admin']}/state", verify=described["caBundle"], timeout=10).json()
        assert state["rotator"] == described["rotator"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_rotator_may_manage_every_vault_even_one_made_later(
    private_cloud: Callable[..., RotatorCloud],
) -> None:
    cloud = private_cloud()
    assert cloud.rotator is not None
    rotator = cloud.rotator.sp_object_id
    cloud.admin("POST", "/vaults", {"name": "kv-made-later"})
    state = cloud.admin("GET", "/state")
    assert state["rotator"] == {"objectId": rotator, "appId": cloud.rotator.app_id}
    [identity] = state["managedIdentities"]
    assert identity["displayName"] == ROTATOR_DISPLAY_NAME and identity["systemAssigned"]
    assert identity["graphAppRoles"] == ["Application.ReadWrite.OwnedBy"]
    for vault in state["vaults"]:
        assert vault["roleAssignments"][rotator] == ["Key Vault Secrets Officer"], vault["name"]
    assert "kv-made-later=" in cloud.env["ROTATION_VAULTS"]
