"""The README's "The troubleshooting guide on the local cloud", run exactly as printed with the
unmodified Azure CLI (marker ``az``; `make az-test` installs azure-cli into .venv-az and runs it).

The block starts its own local cloud (`python -m emulator serve`), registers it with
`az cloud register`, signs in and runs the guide's diagnostic and resolution commands; every
`# ERROR:` and `# prints:` line of the block is checked. Afterwards the cloud's request log, read
from the same process before it stops, must hold no 5xx.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.az.harness import az_bin, az_cli, checking_script, clean_environment, readme_block, run_script, steps


def test_the_block_is_what_the_readme_says() -> None:
    """The parts of the guide the issue names are all in it, each with what it must show (no az
    needed: this runs in `make test`)."""
    parsed = list(steps(readme_block()))
    commands = [s.command for s in parsed]
    for needle in (
        "az cloud register",
        "az login --service-principal",
        "az ad app show",
        "az ad sp show",
        "az ad app credential list",
        "az ad app owner list",
        "az ad app credential reset",
        "az login --identity",
    ):
        assert any(needle in c for c in commands), needle
    codes = {s.error.split(":")[0] for s in parsed if s.error}
    assert codes == {"AADSTS7000215", "AADSTS700016", "AADSTS7000222"}


@pytest.mark.az
@pytest.mark.skipif(az_cli() is None, reason="set ROTATION_AZ_CLI to an az executable (make az-test does)")
@pytest.mark.skipif(shutil.which("curl") is None, reason="the guide seeds the cloud with curl")
def test_the_troubleshooting_guide_runs_as_printed(tmp_path: Path) -> None:
    az = az_cli()
    assert az is not None
    block = readme_block()
    # Before the block stops the cloud, keep its request log: no answer of the cloud may be a 5xx.
    ending = 'kill "$CLOUD_PID"'
    assert block.rstrip().endswith(ending)
    audit = 'curl -sf --cacert "$REQUESTS_CA_BUNDLE" "$ADMIN/requests?since=0" > .troubleshoot/requests.json'
    block = block.rstrip()[: -len(ending)] + audit + "\n" + ending + "\n"
    result = run_script(checking_script(block), tmp_path, clean_environment(az_bin(tmp_path, az)), timeout=600)
    assert result.returncode == 0, result.stdout[-6000:]

    log = json.loads((tmp_path / ".troubleshoot" / "requests.json").read_text())["requests"]
    services = {r["service"] for r in log}
    assert {"entra", "graph", "keyvault", "arm", "identity"} <= services
    assert [r for r in log if r["status"] >= 500] == []
