"""The function app as the host indexes it: triggers, bindings, routes, and what the worker accepts."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta

from functions.config import EdgeConfig
from functions.host import message_encoding
from rotation.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
QUEUE_OUT = {
    "direction": "OUT",
    "type": "queue",
    "name": "requests",
    "queueName": "rotation-requests",
    "connection": "AzureWebJobsStorage",
}


def bindings(functions: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    described = json.loads(functions[name].get_function_json())
    assert described["scriptFile"] == "function_app.py"
    return {b["name"]: b for b in described["bindings"]}


def test_the_app_has_exactly_these_functions(functions: dict[str, Any]) -> None:
    assert set(functions) == {
        "sweep",
        "expiry_notices",
        "on_key_vault_event",
        "rotate_worker",
        "rotation_poisoned",
        "rotate_secret",
        "secret_status",
        "list_secrets",
        "inventory",
    }
    for f in functions.values():
        assert inspect.iscoroutinefunction(f.get_user_function()), f.get_function_name()


def test_sweep_is_a_monitored_timer_on_the_schedule_setting(functions: dict[str, Any]) -> None:
    b = bindings(functions, "sweep")
    assert b["timer"] == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "%ROTATION_SCHEDULE%",
        "runOnStartup": False,
        "useMonitor": True,
    }
    assert b["requests"] == QUEUE_OUT


def test_expiry_notices_are_a_monitored_timer_on_their_own_schedule_setting_with_no_output(
    functions: dict[str, Any],
) -> None:
    assert bindings(functions, "expiry_notices") == {
        "timer": {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%ROTATION_EXPIRY_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": True,
        }
    }


def test_event_grid_trigger_enqueues_through_an_output_binding(functions: dict[str, Any]) -> None:
    b = bindings(functions, "on_key_vault_event")
    assert b["event"] == {"direction": "IN", "type": "eventGridTrigger", "name": "event"}
    assert b["requests"] == QUEUE_OUT


def test_queue_triggers(functions: dict[str, Any]) -> None:
    worker = bindings(functions, "rotate_worker")
    assert worker == {
        "msg": {
            "direction": "IN",
            "type": "queueTrigger",
            "name": "msg",
            "queueName": "rotation-requests",
            "connection": "AzureWebJobsStorage",
        }
    }
    poisoned = bindings(functions, "rotation_poisoned")
    assert poisoned["msg"]["type"] == "queueTrigger"
    assert poisoned["msg"]["queueName"] == "rotation-requests-poison"
    assert poisoned["msg"]["connection"] == "AzureWebJobsStorage"


@pytest.mark.parametrize(
    ("name", "route", "method", "enqueues"),
    [
        ("rotate_secret", "secrets/{vault}/{name}/rotate", "POST", True),
        ("secret_status", "secrets/{vault}/{name}", "GET", False),
        ("list_secrets", "secrets", "GET", False),
        ("inventory", "inventory", "GET", False),
    ],
)
def test_http_routes_need_a_function_key(
    functions: dict[str, Any], name: str, route: str, method: str, enqueues: bool
) -> None:
    b = bindings(functions, name)
    assert b["req"] == {
        "direction": "IN",
        "type": "httpTrigger",
        "name": "req",
        "methods": [method],
        "authLevel": "FUNCTION",
        "route": route,
    }
    assert b["$return"] == {"direction": "OUT", "type": "http", "name": "$return"}
    assert (b.get("requests") == QUEUE_OUT) is enqueues


def test_every_parameter_annotation_is_one_the_worker_can_convert(functions: dict[str, Any]) -> None:
    """What the Python worker checks when it loads the app: each binding parameter's annotation
    against the converter registered for the binding type (``func.Out[T]`` checks ``T``)."""
    registry = meta.get_binding_registry()  # type: ignore[no-untyped-call]  # azure.functions leaves it untyped
    for f in functions.values():
        handler = f.get_user_function()
        hints = typing.get_type_hints(handler)
        described = json.loads(f.get_function_json())
        for binding in described["bindings"]:
            converter = registry.get(binding["type"])
            assert converter is not None, binding["type"]
            if binding["name"] == "$return":
                assert converter.check_output_type_annotation(hints["return"])
                continue
            annotation = hints[binding["name"]]
            if binding["direction"] == "OUT":
                assert typing.get_origin(annotation) is func.Out, (f.get_function_name(), binding["name"])
                (inner,) = typing.get_args(annotation)
                assert converter.check_output_type_annotation(inner), (f.get_function_name(), inner)
            else:
                assert converter.check_input_type_annotation(annotation), (f.get_function_name(), annotation)


def test_a_builtin_list_would_not_be_accepted_by_the_queue_converter() -> None:
    # Why functions/sweep.py writes typing.List[str]: the converter does not see list[str] as iterable.
    registry = meta.get_binding_registry()  # type: ignore[no-untyped-call]  # azure.functions leaves it untyped
    converter = registry.get("queue")
    assert not converter.check_output_type_annotation(list[str])
    assert converter.check_output_type_annotation(typing.List[str])  # noqa: UP006


@pytest.mark.parametrize("family", ["sweep", "expiry", "events", "worker", "http"])
def test_trigger_modules_keep_their_annotations_evaluated(family: str) -> None:
    # The worker reads the annotations of the functions it indexes; postponed (string) annotations
    # would hide func.Out[typing.List[str]] from its converter check.
    tree = ast.parse((ROOT / "functions" / f"{family}.py").read_text())
    futures = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__"
        for alias in node.names
    ]
    assert "annotations" not in futures


def test_importing_the_app_does_no_network_io_and_needs_no_settings() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('network I/O at import time')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "import function_app\n"
        "assert len(function_app.app.get_functions()) == 9\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


# ---------------------------------------------------------------------------------------- host.json


def host_json() -> dict[str, Any]:
    data = json.loads((ROOT / "host.json").read_text())
    assert isinstance(data, dict)
    return data


def duration_seconds(text: str) -> int:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def test_host_json_bundle_queues_and_logging() -> None:
    host = host_json()
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] == 5
    assert 1 <= queues["batchSize"] <= 32
    assert queues["newBatchThreshold"] >= 0
    assert duration_seconds(queues["visibilityTimeout"]) > 0
    # The worker re-enqueues deferred messages itself and must encode them as the host decodes.
    assert queues["messageEncoding"] == "base64"
    assert EdgeConfig().host_json == ROOT / "host.json"
    assert message_encoding(EdgeConfig().host_json) == "base64"
    assert host["extensions"]["http"]["routePrefix"] == "api"
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert {"Request", "Exception"} <= set(sampling["excludedTypes"].split(";"))


def test_function_timeout_fits_consumption_and_the_default_reconcile_budget() -> None:
    timeout = duration_seconds(host_json()["functionTimeout"])
    assert timeout <= 600, "Consumption allows at most 10 minutes"
    defaults = Settings(vaults={"kv": "https://kv.vault.azure.net"})
    # Validation plus one throttling wait must fit with room for the Graph and Key Vault calls.
    assert defaults.validation_deadline_seconds + defaults.throttle_retry_seconds < timeout


def test_message_encoding_reads_host_json(tmp_path: Path) -> None:
    config = tmp_path / "host.json"
    config.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {"messageEncoding": "none"}}}))
    assert message_encoding(config) == "none"
    config.write_text(json.dumps({"version": "2.0"}))
    assert message_encoding(config) == "base64"  # the host's default
    assert message_encoding(tmp_path / "missing.json") == "base64"
