"""The command line: `rotation {rotate,sweep,status,adopt,diagnose,explain,inventory,demo} …`.

Each command module registers its own subcommands with `register(subparsers)`; shared output
helpers live in `rotation.cli.output`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rotation import redact
from rotation.cli import demo, diagnose, manage
from rotation.cli.output import fail
from rotation.domain.errors import RotationError

COMMAND_MODULES = (manage, diagnose, demo)


def _program_name() -> str:
    """`python -m rotation` when run as a module, else the installed command's own name."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m rotation" if invoked in ("", "__main__.py", "-c", "-m") or invoked.endswith(".py") else invoked


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description="Rotate Microsoft Entra ID client secrets kept in Azure Key Vault, and diagnose broken ones.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every decision to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact.install()  # defence in depth: scrub any value the process holds from every log line
    # Library chatter (HTTP lines, SDK retries) stays out unless asked for.
    for noisy in ("azure", "httpx", "msal", "kiota_http"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    # The rotator's own decision log is for `-v` and for the function app's telemetry; the commands
    # print what happened themselves.
    rotation_log = logging.getLogger("rotation")
    previous_level = rotation_log.level
    rotation_log.setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    try:
        return int(args.handler(args))
    except RotationError as error:
        return fail(error, as_json=getattr(args, "json", False))
    except KeyboardInterrupt:
        return 130
    finally:
        rotation_log.setLevel(previous_level)  # `main` is also called in-process (tests, the demo)
