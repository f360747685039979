"""A stand-in for `az`, `azd` and `sleep` that the hook tests put first on PATH.

The hooks in infra/hooks are shell scripts around the Azure CLI; they cannot reach Azure here, so
each test writes the answers it wants as rules (`rules.json` in the fake's folder) and reads back
every call (`calls.jsonl`). A rule answers the first call whose command line contains all of its
`when` substrings, at most `times` times (unlimited without it); a call no rule matches succeeds
with no output. A `--body @file` argument is logged with the file's content, as the service would
receive it. `sleep` returns at once, so retry loops run in milliseconds.

Run as ``python fake_cli.py <program> <args...>`` from the launchers that :func:`install` writes.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRAMS = ("az", "azd", "sleep")


@dataclass
class Rule:
    """One answer: stdout, stderr and exit status for calls containing every `when` substring."""

    when: list[str]
    stdout: str = ""
    stderr: str = ""
    exit: int = 0
    times: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"when": self.when, "stdout": self.stdout, "stderr": self.stderr, "exit": self.exit, "times": self.times}


@dataclass
class FakeCli:
    """The folder holding the launchers, the rules and the call log."""

    folder: Path
    rules: list[Rule] = field(default_factory=list)

    def answer(self, *when: str, stdout: str = "", stderr: str = "", exit: int = 0, times: int | None = None) -> None:
        self.rules.append(Rule(list(when), stdout, stderr, exit, times))
        (self.folder / "rules.json").write_text(json.dumps([rule.to_json() for rule in self.rules]))

    def calls(self, program: str | None = None) -> list[dict[str, Any]]:
        log = self.folder / "calls.jsonl"
        if not log.is_file():
            return []
        found = [json.loads(line) for line in log.read_text().splitlines()]
        return [c for c in found if program is None or c["program"] == program]

    def commands(self, program: str) -> list[str]:
        return [" ".join(c["args"]) for c in self.calls(program)]


def install(folder: Path) -> FakeCli:
    """Write the launchers for `az`, `azd` and `sleep` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for program in PROGRAMS:
        launcher = folder / program
        script = Path(__file__).resolve()
        launcher.write_text(
            f'#!/bin/sh\nexport FAKE_CLI_DIR="{folder}"\nexec "{sys.executable}" "{script}" {program} "$@"\n'
        )
        launcher.chmod(0o755)
    (folder / "rules.json").write_text("[]")
    return FakeCli(folder)


def _body(args: list[str]) -> str | None:
    for flag, value in itertools.pairwise(args):
        if flag == "--body":
            return Path(value[1:]).read_text() if value.startswith("@") else value
    return None


def main(argv: list[str]) -> int:
    program, args = argv[0], argv[1:]
    folder = Path(os.environ["FAKE_CLI_DIR"])
    with (folder / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"program": program, "args": args, "body": _body(args)}) + "\n")
    if program == "sleep":
        return 0
    rules_file = folder / "rules.json"
    rules: list[dict[str, Any]] = json.loads(rules_file.read_text())
    line = " ".join([program, *args])
    for rule in rules:
        if all(part in line for part in rule["when"]) and (rule["times"] is None or rule["times"] > 0):
            if rule["times"] is not None:
                rule["times"] -= 1
                rules_file.write_text(json.dumps(rules))
            sys.stdout.write(rule["stdout"])
            sys.stderr.write(rule["stderr"])
            return int(rule["exit"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
