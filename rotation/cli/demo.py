"""`demo`: run `make demo`'s story (in a fresh process: the local CA must be exported before any
HTTP library is imported, and this process has imported them already)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

from rotation.cli.output import fail


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="the rotator end to end on the local cloud (needs the dev tools)")
    demo.add_argument("--propagation-seconds", type=float, default=4.0, help="Entra propagation window (0-30)")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("demo") is None or importlib.util.find_spec("emulator") is None:
        return fail("The demo needs the repository checkout (demo/ and emulator/); run `make demo` there.")
    command = [sys.executable, "-m", "demo", "--propagation-seconds", str(args.propagation_seconds)]
    return subprocess.run(command, check=False).returncode  # noqa: S603 - our own module, fixed arguments
