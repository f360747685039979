"""`diagnose`, `explain` and `inventory`: the read-only commands.

None of them writes to Graph or Key Vault. `diagnose --probe` makes one sign-in with the stored
value; `explain` makes no call at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rotation.cli.output import Progress, emit_json, fail
from rotation.domain import aadsts
from rotation.domain.errors import OutputError
from rotation.tools.diagnose import Diagnosis, diagnose, diagnosis_json, render_text, stream_is_utf8
from rotation.tools.explain import NO_CODE, explanation_json, explanation_text, no_code_json
from rotation.tools.inventory import FORMATS, MAX_DAYS, collect, render
from rotation.tools.inventory.collect import source_count

# --------------------------------------------------------------------------------------------------
# diagnose


def _diagnose(args: argparse.Namespace) -> int:
    from rotation.runtime import open_runtime

    async def run() -> Diagnosis:
        async with open_runtime() as runtime:
            return await diagnose(
                runtime, args.vault, args.secret, app_id=args.app, tenant_id=args.tenant, probe=args.probe
            )

    result = asyncio.run(run())
    if args.json:
        emit_json(diagnosis_json(result))
    else:
        print(render_text(result, unicode=stream_is_utf8(sys.stdout)))
    return 1 if result.failed else 0


# --------------------------------------------------------------------------------------------------
# explain


def _explain(args: argparse.Namespace) -> int:
    text = " ".join(args.text).strip()
    if text in ("", "-"):
        text = sys.stdin.read()
    explanation = aadsts.explain(text)
    if explanation is None:
        if args.json:
            print(json.dumps(no_code_json()))
        else:
            print(NO_CODE)
        return 1
    if args.json:
        emit_json(explanation_json(explanation))
    else:
        print(explanation_text(explanation))
    return 0 if explanation.entry is not None else 1


# --------------------------------------------------------------------------------------------------
# inventory


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days from 0 to {MAX_DAYS}") from None
    if not 0 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"expected a whole number of days from 0 to {MAX_DAYS}")
    return value


def _inventory(args: argparse.Namespace) -> int:
    from rotation.runtime import open_runtime

    fmt = "json" if args.json else args.format
    args.json = fmt == "json"  # errors come out as JSON too, so stdout stays parseable

    async def run() -> str:
        async with open_runtime() as runtime:
            sources = source_count(
                len(runtime.vaults), details=True, certificate_vaults=len(runtime.certificate_vaults)
            )
            progress = Progress(sources, "Reading")
            try:
                inventory = await collect(runtime, days=args.days, step=progress.step)
            finally:
                progress.finish()
            return render(inventory, fmt)

    output = asyncio.run(run())
    if args.output:
        path = Path(args.output)
        try:
            path.write_text(output if output.endswith("\n") else output + "\n", encoding="utf-8")
        except OSError as exc:
            return fail(OutputError(f"Cannot write {path}: {exc.strerror}.", "Choose another --output path."))
        print(f"wrote {fmt} inventory to {path}", file=sys.stderr)
    else:
        print(output)
    return 0


# --------------------------------------------------------------------------------------------------
# registration


def register(subparsers: Any) -> None:
    diagnose_parser = subparsers.add_parser(
        "diagnose",
        help="read-only checks of one secret: why does sign-in with it fail?",
        description=(
            "Check a Key Vault secret that holds a client secret value: the secret, its value's shape, the "
            "tenant, the app and its credentials, and the rotation state. Never writes anything; --probe "
            "adds one sign-in with the stored value. Exit status 1 when a check fails."
        ),
    )
    diagnose_parser.add_argument("vault", help="vault name (one of ROTATION_VAULTS)")
    diagnose_parser.add_argument("secret", help="secret name")
    diagnose_parser.add_argument(
        "--app", metavar="APPID", help="Application (client) ID (default: ProviderAddress tag)"
    )
    diagnose_parser.add_argument(
        "--tenant", metavar="TENANT", help="tenant id or domain (default: TenantId tag, then ROTATION_TENANT_ID)"
    )
    diagnose_parser.add_argument(
        "--probe", action="store_true", help="also request one client-credentials token with the stored value"
    )
    diagnose_parser.add_argument("--json", action="store_true", help="machine-readable output")
    diagnose_parser.set_defaults(handler=_diagnose)

    explain_parser = subparsers.add_parser(
        "explain",
        help="explain an AADSTS error code or message",
        description="Paste an error message (or just its code) to get the cause, whether waiting helps, "
        "and the remedy. Reads stdin when no text (or '-') is given. Exit status 1 when not explained.",
    )
    explain_parser.add_argument("text", nargs="*", metavar="CODE_OR_MESSAGE")
    explain_parser.add_argument("--json", action="store_true", help="machine-readable output")
    explain_parser.set_defaults(handler=_explain)

    inventory_parser = subparsers.add_parser(
        "inventory",
        help="every app credential the rotator can see, with expiry and who manages it",
        description=(
            "List every password and certificate credential of every application the rotator can read, "
            "with days to expiry and its standing: managed (a vault secret's CredentialId names it), "
            "retiring, orphaned, unmanaged; plus dangling vault secrets whose credential is gone. Reads only."
        ),
    )
    inventory_parser.add_argument("--days", type=_days, metavar="N", help="only what expires within N days")
    inventory_parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    inventory_parser.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    inventory_parser.add_argument("--json", action="store_true", help="same as --format json")
    inventory_parser.set_defaults(handler=_inventory)
