"""Running the README's shell blocks as printed, and the Azure CLI against the local cloud.

A block's commands run in one bash, in order, so that its variables and functions carry over. A
comment line right after a command states what it must show:

- ``# ERROR: <text>``: the command fails and its output contains ``<text>``;
- ``# prints: <text>``: the command succeeds and its output contains ``<text>``;

``$VARIABLES`` in ``<text>`` are the block's own, expanded by bash. Any other command must succeed.
The first command that does not do what the block says stops the run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
GUIDE_MARKER = "<!-- troubleshooting-guide: make az-test runs this block -->"
# What a clean shell of the reader's would not have: the test process's own cloud settings.
_INHERITED = re.compile(r"^(AZURE_|ROTATION_|IDENTITY_|MSI_|REQUESTS_CA_BUNDLE$|SSL_CERT_FILE$|CURL_CA_BUNDLE$)")


def az_cli() -> str | None:
    """The `az` to test (`ROTATION_AZ_CLI`, which `make az-test` sets), if it is there."""
    path = os.environ.get("ROTATION_AZ_CLI")
    return path if path and os.access(path, os.X_OK) else None


def readme_block(marker: str = GUIDE_MARKER) -> str:
    """The fenced `sh` block right after `marker` in the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index(marker)
    opening = text.index("```sh\n", start) + len("```sh\n")
    return text[opening : text.index("\n```", opening)] + "\n"


@dataclass
class Step:
    line: int  # in the block, 1-based
    command: str
    error: str | None = None
    prints: list[str] = field(default_factory=list)


def steps(block: str) -> Iterator[Step]:
    """The block's commands (continuation lines joined) with the expectations noted below each."""
    current: Step | None = None
    pending, start_line = "", 0
    for number, raw in enumerate(block.splitlines(), start=1):
        line = raw.rstrip()
        if pending:
            pending += "\n" + line
            if not line.endswith("\\"):
                current = Step(start_line, pending)
                pending = ""
            continue
        stripped = line.strip()
        if stripped.startswith("# ERROR:") and current is not None:
            current.error = stripped[len("# ERROR:") :].strip()
            continue
        if stripped.startswith("# prints:") and current is not None:
            current.prints.append(stripped[len("# prints:") :].strip())
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if current is not None:
            yield current
        if line.endswith("\\"):
            pending, start_line, current = line, number, None
            continue
        current = Step(number, line)
    if current is not None:
        yield current


def _quoted(text: str) -> str:
    """`text` inside double quotes: bash expands its `$VARIABLES`, nothing else."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


def checking_script(block: str) -> str:
    """The block as one bash script that checks each step and stops at the first that fails."""
    out = [
        "set -u",
        '__out="$(mktemp)"',
        '__fail() { echo; echo "STEP FAILED (block line $1, status $2): $3"; exit 97; }',
    ]
    for step in steps(block):
        out.append(f"echo {shlex.quote('>>> ' + step.command.splitlines()[0])}")
        if step.command.rstrip().endswith("&"):
            out.append(step.command)  # a background job: started as is, checked by what follows
            continue
        out += ["{", step.command, '} > "$__out" 2>&1', "__rc=$?", 'cat "$__out"']
        what = shlex.quote(step.command.splitlines()[0])
        if step.error is not None:
            out.append(f'[ "$__rc" -ne 0 ] || __fail {step.line} "$__rc" {what}')
            out.append(f'grep -qF -- {_quoted(step.error)} "$__out" || __fail {step.line} "$__rc" {what}')
        else:
            out.append(f'[ "$__rc" -eq 0 ] || __fail {step.line} "$__rc" {what}')
        for text in step.prints:
            out.append(f'grep -qF -- {_quoted(text)} "$__out" || __fail {step.line} "$__rc" {what}')
    out.append('rm -f "$__out"')
    return "\n".join(out) + "\n"


def clean_environment(bin_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A reader's shell: `az` (only) from `bin_dir`, this repository's `python` (the one running the
    tests) and nothing of the test process's own cloud settings."""
    env = {k: v for k, v in os.environ.items() if not _INHERITED.match(k)}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(REPO)
    env["AZURE_CORE_COLLECT_TELEMETRY"] = "false"
    env.update(extra or {})
    return env


def az_bin(tmp: Path, az: str) -> Path:
    """A folder whose only program is `az`: the CLI's own environment's `python` stays off PATH."""
    folder = tmp / "bin"
    folder.mkdir(exist_ok=True)
    link = folder / "az"
    if not link.exists():
        link.symlink_to(az)
    return folder


def run_script(script: str, cwd: Path, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `script` in bash, in a session of its own, and end that session afterwards (the block
    starts the local cloud in the background; a failed step must not leave it running)."""
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the group this test started, by its id
        process.wait(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, out, "")
