"""What a cold start loads: the Functions host imports function_app.py on every cold start to index
it, and an Event Grid event must then be served without the clients only the worker, the sweep or
the inventory use (msgraph-sdk, the storage and Key Vault SDKs, PyJWT, the inventory renderer).

Each check runs in a fresh interpreter (this test process has imported everything already) and
counts modules, never time: the time and memory figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Module prefixes a cold start must not load: what only the worker, the sweep, the HTTP routes'
#: token checks or the inventory need, each loaded on first use instead.
HEAVY = (
    "msgraph",
    "kiota_",
    "azure.storage",
    "azure.keyvault",
    "azure.identity",
    "jwt",
    "aiohttp",
    "cryptography",
    "rotation.adapters",
    "rotation.runtime",
    "rotation.tools",
)

EVENT = {
    "id": "e-1",
    "eventType": "Microsoft.KeyVault.SecretNearExpiry",
    "subject": "db",
    "eventTime": "2026-12-01T00:00:00Z",
    "dataVersion": "1",
    "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.KeyVault/vaults/kv-prod",
    "data": {
        "Id": "https://kv-prod.vault.azure.net/secrets/db/0123456789abcdef0123456789abcdef",
        "VaultName": "kv-prod",
        "ObjectType": "Secret",
        "ObjectName": "db",
        "Version": "0123456789abcdef0123456789abcdef",
        "NBF": None,
        "EXP": 1767225600,
    },
}

PROGRAM = """
import asyncio, json, os, sys
os.environ.update({"ROTATION_VAULTS": "kv-prod", "ROTATION_TENANT_ID": "11111111-1111-1111-1111-111111111111"})
import function_app
import azure.functions as func

loaded_at_import = sorted(sys.modules)
if sys.argv[1] == "event":
    handlers = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
    from datetime import datetime
    fields = json.loads(sys.argv[2])
    fields["event_time"] = datetime.fromisoformat(fields["event_time"])
    event = func.EventGridEvent(**fields)
    sent = []

    class Out:
        def set(self, value):
            sent.append(value)

    asyncio.run(handlers["on_key_vault_event"](event, Out()))
    assert len(sent) == 1, sent
print(json.dumps({"import": loaded_at_import, "after": sorted(sys.modules)}))
"""


def loaded(what: str) -> dict[str, list[str]]:
    args = [sys.executable, "-c", PROGRAM, what, json.dumps(_event_args())]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _event_args() -> dict[str, object]:
    return {
        "id": EVENT["id"],
        "data": EVENT["data"],
        "topic": EVENT["topic"],
        "subject": EVENT["subject"],
        "event_type": EVENT["eventType"],
        "event_time": "2026-12-01T00:00:00+00:00",
        "data_version": EVENT["dataVersion"],
    }


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(HEAVY)]


def test_importing_the_app_loads_none_of_the_clients() -> None:
    modules = loaded("import")["import"]
    assert heavy(modules) == []
    assert "function_app" in modules and "functions.worker" in modules  # every function is indexed


def test_an_event_grid_event_is_served_without_the_clients() -> None:
    modules = loaded("event")["after"]
    assert heavy(modules) == []
