"""`rotate`, `sweep`, `status` and `adopt`: the rotator on demand, from an operator's shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from rotation.cli.output import Progress, emit_json, fail, table
from rotation.domain.errors import CertificatesDisabledError, LockHeld, bind_command
from rotation.domain.model import (
    REASON_MAX,
    Action,
    Mode,
    Outcome,
    format_utc,
)
from rotation.runtime import Runtime, open_runtime
from rotation.service.adoption import AdoptionRequest, adopt_certificate, adopt_secret
from rotation.service.binding import bindings_of, not_bound_note
from rotation.service.certificate_sweep import certificate_work_requests, scan_certificates
from rotation.service.intake import admit_rotation
from rotation.service.ports import HeldLock, InProcessLock, Lock
from rotation.service.sweep import SecretStatus, needs_attention, reconcile_all, scan, work_requests
from rotation.settings import GRACE_HOURS, VALIDITY_DAYS, Settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = commands.add_parser("rotate", help="reconcile one secret now (rotate it if due or forced)")
    rotate.add_argument("vault", help="vault name, as listed in ROTATION_VAULTS")
    rotate.add_argument("secret", help="secret name")
    urgency = rotate.add_mutually_exclusive_group()
    urgency.add_argument("--force", action="store_true", help="rotate now even if not due; keep the grace period")
    urgency.add_argument(
        "--emergency", action="store_true", help="rotate now and retire the old credential at once (a leak)"
    )
    rotate.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    rotate.add_argument("--reason", default="requested from the command line", help="recorded in the logs")
    rotate.add_argument("--json", action="store_true", help="machine-readable output")
    rotate.set_defaults(handler=_rotate)

    sweep = commands.add_parser("sweep", help="reconcile every managed secret that needs work")
    sweep.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    sweep.add_argument("--concurrency", type=int, default=None, help="secrets at once (ROTATION_SWEEP_CONCURRENCY)")
    sweep.add_argument("--json", action="store_true", help="machine-readable output")
    sweep.set_defaults(handler=_sweep)

    status = commands.add_parser("status", help="state, expiry and pending retirement of managed secrets")
    status.add_argument("vault", nargs="?", help="only this vault")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    adopt = commands.add_parser("adopt", help="start managing an existing secret (writes its tags)")
    adopt.add_argument("vault")
    adopt.add_argument("secret")
    adopt.add_argument("--app", required=True, help="Application (client) ID of the app registration")
    adopt.add_argument("--tenant", help="tenant of the app (default: ROTATION_TENANT_ID)")
    adopt.add_argument("--validity-days", type=int, help="lifetime of new credentials")
    adopt.add_argument("--grace-hours", type=int, help="keep the old credential this long after a rotation")
    adopt.add_argument(
        "--service-principal",
        action="store_true",
        help="the password lives on the app's service principal (writes CredentialObject=servicePrincipal and "
        "the binding on the service principal, as you: an owner of the service principal or an admin)",
    )
    adopt.add_argument("--json", action="store_true", help="machine-readable output")
    adopt.set_defaults(handler=_adopt)


# --- rotate ---------------------------------------------------------------------------------------
def _rotate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    mode: Mode = "emergency" if args.emergency else "forced" if args.force else "normal"
    outcome = asyncio.run(
        _reconcile_one(settings, args.vault, args.secret, args.reason[:REASON_MAX], mode, args.dry_run)
    )
    if outcome.error is not None and outcome.error.user_fault and outcome.action is Action.NONE:
        # Nothing happened and the cause is the input or the setup: one line, like any usage error.
        return fail(outcome.error, as_json=args.json)
    if args.json:
        emit_json(outcome.to_dict())
    else:
        print(_describe(outcome, dry_run=args.dry_run))
    return 0 if outcome.ok else 1


async def _reconcile_one(
    settings: Settings, vault: str, secret: str, reason: str, mode: Mode, dry_run: bool
) -> Outcome:
    async with open_runtime(settings) as runtime:
        # The same checks as the HTTP API's before it queues: a refusal (unknown vault, bad name, a
        # secret that is missing or not managed) is raised, and printed as one line by `main`.
        request = await admit_rotation(settings, runtime.vaults, vault, secret, reason, mode, datetime.now(UTC))
        async with (
            _writers_lock(runtime, dry_run=dry_run) as lock,
            _holding(lock, request.vault, request.secret) as held,
        ):
            return await runtime.reconciler.reconcile(request, dry_run=dry_run, held=held)


# --- the lock every writer takes --------------------------------------------------------------------
NO_STORAGE_NOTE = "note: no storage configured: not excluded from the function app's workers"


@asynccontextmanager
async def _writers_lock(runtime: Runtime, *, dry_run: bool = False) -> AsyncIterator[Lock]:
    """The function app's workers' per-secret blob lease when this shell can reach their storage
    (`AzureWebJobsStorage` or its identity form), so a shell and a worker never write one secret at
    once. Without storage, or for a dry run (which writes nothing and must not make a worker defer),
    the in-process lock; a writing run without storage says so once."""
    if dry_run or not runtime.storage_configured:
        if not dry_run:
            print(NO_STORAGE_NOTE, file=sys.stderr)
        yield InProcessLock()
        return
    lease = runtime.open_lock()
    try:
        yield lease
    finally:
        await lease.close()


class SecretBusyError(LockHeld):
    """`LockHeld` as the command line says it: nothing was done, and when to try again."""

    def __init__(self, vault: str, secret: str) -> None:
        super().__init__(f"{vault}/{secret.lower()}")
        self.problem, self.remedy = f"another worker is reconciling {vault}/{secret}; try again in a minute", None


@asynccontextmanager
async def _holding(lock: Lock, vault: str, secret: str) -> AsyncIterator[HeldLock]:
    """Hold the secret's lock (the key the workers use); a held lock refuses the command at once."""
    async with AsyncExitStack() as stack:
        try:
            held = await stack.enter_async_context(lock.hold(f"{vault.lower()}/{secret.lower()}"))
        except LockHeld:
            raise SecretBusyError(vault, secret) from None
        yield held


def _describe(outcome: Outcome, *, dry_run: bool = False) -> str:
    title = f"{outcome.vault}/{outcome.secret}: {outcome.action.value}{' (dry run)' if dry_run else ''}"
    lines = [title]
    facts = [
        ("new credential", outcome.created_key_id),
        ("Key Vault version", outcome.vault_version),
        ("retired", ", ".join(outcome.retired_key_ids) or None),
        ("orphans removed", ", ".join(outcome.removed_orphans) or None),
        ("sign-in attempts", str(outcome.validation_attempts) if outcome.validation_attempts else None),
        ("state", outcome.state.value if outcome.state else None),
    ]
    lines.extend(f"  {label:<18} {value}" for label, value in facts if value)
    lines.extend(f"  note: {warning}" for warning in outcome.warnings)
    if not outcome.ok:
        lines.append(f"  error: {outcome.error_code}: {outcome.error_message}")
    return "\n".join(lines)


# --- sweep -----------------------------------------------------------------------------------------
def _sweep(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    concurrency = args.concurrency if args.concurrency is not None else settings.sweep_concurrency
    if not 1 <= concurrency <= 64:
        return fail("--concurrency must be between 1 and 64.", as_json=args.json)
    outcomes = asyncio.run(_sweep_all(settings, concurrency, args.dry_run))
    if args.json:
        emit_json({"ok": all(o.ok for o in outcomes), "outcomes": [o.to_dict() for o in outcomes]})
    elif not outcomes:
        print("Nothing to do: every managed secret is up to date.")
    else:
        rows = [
            [f"{o.vault}/{o.secret}", o.action.value, o.state.value if o.state else "-", o.error_code or "ok"]
            for o in outcomes
        ]
        print(table(rows, ["secret", "action", "state", "result"]))
        for outcome in outcomes:
            if not outcome.ok:
                print(f"{outcome.vault}/{outcome.secret}: {outcome.error_message}")
    return 0 if all(o.ok for o in outcomes) else 1


async def _sweep_all(settings: Settings, concurrency: int, dry_run: bool) -> list[Outcome]:
    async with open_runtime(settings) as runtime:
        now = datetime.now(UTC)
        keep = needs_attention(settings, now)
        statuses = await scan(settings, runtime.vaults, now, catalog=runtime.directory, keep=keep)
        requests = work_requests(statuses, now, source="sweep (command line)")
        certificates = await scan_certificates(settings, runtime.certificate_vaults, now, keep=keep)
        requests += certificate_work_requests(certificates, now, source="sweep (command line)")
        progress = Progress(len(requests), "reconciling")

        def done(outcome: Outcome) -> None:
            progress.step(f"{outcome.secret}: {outcome.action.value}")

        try:
            if not requests:
                return []
            async with _writers_lock(runtime, dry_run=dry_run) as lock:
                return await reconcile_all(
                    runtime.reconciler, requests, concurrency=concurrency, dry_run=dry_run, on_done=done, lock=lock
                )
        finally:
            progress.finish()


# --- status ----------------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.vault:
        settings.vault_url(args.vault)
    statuses, bound = asyncio.run(_scan(settings, args.vault))
    now = datetime.now(UTC)
    if args.json:
        emit_json({"secrets": [_status_json(s, now, bound.get((s.vault, s.name))) for s in statuses]})
        return 0
    if not statuses:
        print("No managed secrets (a secret is managed when its latest version has a ProviderAddress tag).")
        return 0
    print(
        table(
            [[*_status_row(s, now), _bound_cell(s, bound.get((s.vault, s.name)))] for s in statuses],
            ["secret", "app", "state", "expires", "last rotated", "pending retirement", "needs", "bound"],
        )
    )
    return 0


async def _scan(settings: Settings, vault: str | None) -> tuple[list[SecretStatus], dict[tuple[str, str], bool | None]]:
    async with open_runtime(settings) as runtime:
        now = datetime.now(UTC)
        statuses = await scan(settings, runtime.vaults, now, only=vault, catalog=runtime.directory)
        # Managed certificates too, when the rotator manages them (ROTATION_CERTIFICATES).
        statuses += await scan_certificates(settings, runtime.certificate_vaults, now, only=vault)
        return statuses, await bindings_of(settings, runtime.directory, statuses)


def _status_json(status: SecretStatus, now: datetime, bound: bool | None) -> dict[str, Any]:
    data = status.to_dict(now)
    data["bound"] = bound
    on_sp = status.credential_object == "servicePrincipal"
    data["bindCommand"] = (
        bind_command(status.vault, status.name, status.app_id or "APPID", service_principal=on_sp)
        if bound is False
        else None
    )
    return data


def _bound_cell(status: SecretStatus, bound: bool | None) -> str:
    return "yes" if bound else "?" if bound is None else not_bound_note(status)


def _status_row(status: SecretStatus, now: datetime) -> list[str]:
    days = status.days_to_expiry(now)
    expires = "never" if status.expires is None else f"{format_utc(status.expires)[:10]} ({days:.0f} d)"
    retiring = "-"
    if status.retire_credential_id:
        after = format_utc(status.retire_after)[:16] if status.retire_after else "now"
        retiring = f"{status.retire_credential_id[:8]}… after {after}"
    rotated = format_utc(status.updated)[:10] if status.updated and status.rotation_id else "-"
    # Where the credential lives, when not on the app registration.
    on_sp = " (service principal)" if status.credential_object == "servicePrincipal" else ""
    certificate = " (certificate)" if status.kind == "certificate" else ""
    return [
        f"{status.vault}/{status.name}{certificate}",
        (status.app_id or "?") + on_sp,
        status.state or ("tags?" if status.problem else "-"),
        expires,
        rotated,
        retiring,
        # What is due, else what only a person can fix (unusable tags, a rotation the back-off stopped).
        status.needs_work or status.problem or "-",
    ]


# --- adopt -----------------------------------------------------------------------------------------
def _adopt(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings.vault_url(args.vault)
    if args.validity_days is not None and not VALIDITY_DAYS.low <= args.validity_days <= VALIDITY_DAYS.high:
        return fail(f"--validity-days must be {VALIDITY_DAYS.describe()}.", as_json=args.json)
    if args.grace_hours is not None and not GRACE_HOURS.low <= args.grace_hours <= GRACE_HOURS.high:
        return fail(f"--grace-hours must be {GRACE_HOURS.describe()}.", as_json=args.json)
    result = asyncio.run(_adopt_secret(settings, args))
    if args.json:
        emit_json(result)
    else:
        on_sp = " (its service principal's password)" if result["credentialObject"] == "servicePrincipal" else ""
        print(f"{args.vault}/{args.secret}: now managed for app {result['appId']}{on_sp}")
        if result["credentialId"]:
            print(f"  its value belongs to credential {result['credentialId']} (retired after the next rotation)")
        for warning in result["warnings"]:
            print(f"  note: {warning}")
    return 0


async def _adopt_secret(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with open_runtime(settings) as runtime:
        request = AdoptionRequest(
            args.vault,
            args.secret,
            args.app,
            args.tenant,
            args.validity_days,
            args.grace_hours,
            service_principal=args.service_principal,
        )
        vault = args.vault.lower()
        read = await runtime.vaults[vault].get_properties(args.secret)
        async with _writers_lock(runtime) as lock, _holding(lock, args.vault, args.secret):
            if read is not None and read.backs_certificate:
                # The name is a Key Vault certificate's: its tags go on the certificate, not on the
                # secret behind it (Key Vault refuses writes to that one).
                if vault not in runtime.certificate_vaults:
                    raise CertificatesDisabledError(vault, args.secret)
                adoption = await adopt_certificate(
                    settings, runtime.directory, runtime.certificate_vaults[vault], request
                )
            else:
                adoption = await adopt_secret(settings, runtime.directory, runtime.vaults[vault], request)
        return adoption.to_dict()
