"""local.settings.sample.json lists every setting the app reads, with safe local values, and nothing else."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from rotation import settings as settings_module
from rotation.settings import KNOWN_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "local.settings.sample.json"

# A string constant that names an environment variable of the app, the host or the platform.
_ENV_NAME = re.compile(
    r"^(?:ROTATION_[A-Z0-9_]*[A-Z0-9]|AZURE_[A-Z0-9_]*[A-Z0-9]|IDENTITY_[A-Z]+|AzureWebJobs[A-Za-z0-9_]+"
    r"|APPLICATIONINSIGHTS_[A-Z_]+|FUNCTIONS_[A-Z_]+|PYTHON_[A-Z_]+)$"
)
# Read by the code but set by the platform, never by the operator (App Service managed identity).
PLATFORM_PROVIDED = frozenset({"IDENTITY_ENDPOINT", "IDENTITY_HEADER"})
# Read by the host or its extensions rather than by Python code.
HOST_SETTINGS = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "AzureWebJobsStorage",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    }
)


def sample() -> dict[str, Any]:
    data = json.loads(SAMPLE.read_text())
    assert isinstance(data, dict)
    return data


def referenced_variables() -> set[str]:
    """Every environment variable name written as a string constant in function_app.py, functions/ and rotation/."""
    files = [
        ROOT / "function_app.py",
        *sorted((ROOT / "functions").rglob("*.py")),
        *sorted((ROOT / "rotation").rglob("*.py")),
    ]
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.match(node.value):
                names.add(node.value)
    return names | set(KNOWN_VARIABLES)


def test_every_variable_the_code_reads_is_in_the_sample() -> None:
    values = set(sample()["Values"])
    wanted = {name for name in referenced_variables() - PLATFORM_PROVIDED if "__" not in name}
    assert wanted - values == set(), "add these to local.settings.sample.json"


def test_every_sample_setting_is_read_by_someone() -> None:
    values = set(sample()["Values"])
    assert values - referenced_variables() - HOST_SETTINGS == set(), "nobody reads these"


def test_identity_based_storage_forms_are_the_only_unlisted_alternatives() -> None:
    # AzureWebJobsStorage__accountName & co. replace the connection string in Azure (infra sets them);
    # locally the sample uses the connection string, so they are alternatives, not omissions.
    alternatives = {name for name in referenced_variables() if "__" in name}
    assert alternatives <= {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__blobServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
    }


def test_the_sample_is_what_func_start_accepts_and_safe_locally() -> None:
    data = sample()
    assert set(data) == {"IsEncrypted", "Values"}
    assert data["IsEncrypted"] is False
    values = data["Values"]
    assert all(isinstance(v, str) for v in values.values()), "func start wants strings only"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["APPLICATIONINSIGHTS_CONNECTION_STRING"] == ""
    # Local endpoints only: nothing in the sample can reach a real tenant or vault by accident.
    for name in ("AZURE_AUTHORITY_HOST", "ROTATION_GRAPH_URL"):
        assert values[name].startswith("https://127.0.0.1:"), name
    for entry in values["ROTATION_VAULTS"].split(","):
        assert entry.split("=", 1)[1].startswith("https://127.0.0.1:"), entry


def test_the_sample_values_are_valid_settings_with_the_documented_defaults() -> None:
    values = sample()["Values"]
    parsed = Settings.from_env(values)
    assert parsed.warnings == ()
    assert parsed.schedule == settings_module.DEFAULT_SCHEDULE == values["ROTATION_SCHEDULE"]
    assert parsed.operator_role == settings_module.DEFAULT_OPERATOR_ROLE
    for spec in (
        settings_module.VALIDITY_DAYS,
        settings_module.ROTATE_BEFORE_DAYS,
        settings_module.GRACE_HOURS,
        settings_module.VALIDATION_DEADLINE,
        settings_module.VALIDATION_SUCCESSES,
        settings_module.ORPHAN_MARGIN,
        settings_module.THROTTLE_RETRY,
        settings_module.SWEEP_CONCURRENCY,
        settings_module.EXPIRY_ALERT_DAYS,
    ):
        assert values[spec.env] == str(spec.default), spec.env
