"""Shared plumbing of the command line: error lines, JSON output, a progress display on terminals.

Each command lives in `rotation/cli/<name>.py` with a `register(subparsers)` that adds its parser
and sets `handler` to a function `(args) -> int` (exit status).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from rotation.domain.errors import RotationError
from rotation.redact import registry
from rotation.tools.common import table

__all__ = ["Handler", "Progress", "emit_json", "fail", "table"]

Handler = Callable[[argparse.Namespace], int]


def fail(error: RotationError | str, *, as_json: bool = False) -> int:
    """One line saying what is wrong and what to do; exit status 2 for usage, 1 otherwise."""
    if isinstance(error, RotationError):
        code, message = error.code, error.message
    else:
        code, message = "Error", error
    message = registry.scrub(message)
    if as_json:
        print(json.dumps({"ok": False, "error": {"code": code, "message": message}}))
    else:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def emit_json(data: Any) -> None:
    print(registry.scrub(json.dumps(data, indent=2, default=str)))


class Progress:
    """`done/total` on one rewritten line, only when stderr is a terminal (never in logs or pipes)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and total > 0

    def step(self, note: str = "") -> None:
        self.done += 1
        if self.enabled:
            self.stream.write(f"\r{self.label} {self.done}/{self.total} {note[:50]:<50}")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.label) + 60) + "\r")
            self.stream.flush()
