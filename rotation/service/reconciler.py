"""The rotation state machine: one idempotent step at a time, from observed state.

`Reconciler.reconcile(request)` reads the secret's latest version and the app's credentials, then, in
order: removes this secret's orphaned rotator credentials, finishes a pending validation (or rolls it
back), retires an old credential whose time has come, and rotates when due or forced (the steps are
in :mod:`rotation.service.steps`, rollback in :mod:`rotation.service.rollback`). Every step first
checks whether its work is done already, so a crash at any point, a duplicate request or a second
worker converges to the same end state. The working secret is never lost: the old credential stays
valid until the new value has been proven, and a definitive failure restores the last working value.

Like a Kubernetes controller's ``Result``, the outcome says when to look again
(``Outcome.requeue_after``, from the state the run leaves recorded: see
:func:`rotation.domain.policy.requeue_after`) and, on an error, whether a retry can help
(``Outcome.retryable``, from the error class; ``requeue_after`` is then ``None``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from rotation.domain import policy
from rotation.domain.errors import CertificatesDisabledError, RotationError, UnknownVaultError
from rotation.domain.model import Action, Outcome, ReconcileRequest
from rotation.observability import event
from rotation.service import steps
from rotation.service.certificates import CertificateReconciler
from rotation.service.ports import Clock, Directory, HeldLock, TokenProbe, Vault
from rotation.service.run import Observed, Run
from rotation.service.steps import CONTENT_TYPE
from rotation.settings import Settings

__all__ = ["CONTENT_TYPE", "Reconciler"]


@dataclass
class Reconciler:
    settings: Settings
    directory: Directory
    vaults: Mapping[str, Vault]
    probe: TokenProbe
    clock: Clock
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: Seconds on a monotonic clock: validation deadlines and timings (a fake in unit tests).
    timer: Callable[[], float] = time.monotonic
    #: Managed certificates' flow (``ROTATION_CERTIFICATES``); ``None``: certificate requests are refused.
    certificates: CertificateReconciler | None = None

    async def reconcile(
        self, request: ReconcileRequest, *, dry_run: bool = False, held: HeldLock | None = None
    ) -> Outcome:
        """Bring one secret (or, for a request of kind ``certificate``, one managed certificate) to its
        desired state. Never raises for a `RotationError`: the outcome carries it (code and message),
        and the caller decides whether to retry."""
        if request.kind == "certificate":
            if self.certificates is None:
                disabled = CertificatesDisabledError(request.vault, request.secret)
                return Outcome(request.operation_id, request.vault, request.secret, Action.SKIPPED).with_error(disabled)
            return await self.certificates.reconcile(request, dry_run=dry_run, held=held)
        vault = self.vaults.get(request.vault.lower())
        if vault is None:
            error = UnknownVaultError(request.vault, self.vaults)
            return Outcome(request.operation_id, request.vault, request.secret, Action.SKIPPED).with_error(error)
        run = Run(
            request=request,
            vault=vault,
            directory=self.directory,
            probe=self.probe,
            settings=self.settings,
            clock=self.clock,
            sleep=self.sleep,
            timer=self.timer,
            dry_run=dry_run,
            held=held,
        )
        started = self.timer()
        event("ReconcileStarted", reason=request.reason or None, dryRun=dry_run, **run.dims())
        try:
            seen = await self._steps(run)
        except RotationError as error:
            run.report.timings["total"] = self.timer() - started
            outcome = run.report.outcome(request, error=error)
            event("ReconcileFailed", errorCode=error.code, error=error.message, **run.dims(), level=logging.ERROR)
            return outcome
        run.report.timings["total"] = self.timer() - started
        outcome = run.report.outcome(request, requeue_after=self._requeue_after(seen))
        event(
            "ReconcileCompleted" if outcome.action is Action.NONE else "RotationCompleted",
            action=outcome.action.value,
            state=outcome.state.value if outcome.state else None,
            createdKeyId=outcome.created_key_id,
            vaultVersion=outcome.vault_version,
            retiredKeyIds=",".join(outcome.retired_key_ids) or None,
            removedOrphans=",".join(outcome.removed_orphans) or None,
            validationAttempts=outcome.validation_attempts or None,
            requeueAfterSeconds=outcome.requeue_after.total_seconds() if outcome.requeue_after is not None else None,
            seconds=round(run.report.timings["total"], 3),
            **run.dims(),
        )
        return outcome

    @staticmethod
    async def _steps(run: Run) -> Observed:
        """Reconcile, in order, each step safe to repeat (see :mod:`rotation.service.steps`)."""
        seen = await steps.observe(run)
        seen = await steps.remove_orphans(run, seen)
        seen = await steps.finish_interrupted_rollback(run, seen)
        seen, settled = await steps.finish_validation(run, seen)
        seen = await steps.retire(run, seen)
        return await steps.rotate(run, seen, settled)

    def _requeue_after(self, seen: Observed) -> timedelta:
        return policy.requeue_after(
            seen.state,
            seen.latest,
            seen.policy.rotate_before_days,
            self.clock.now(),
            validation_deadline=timedelta(seconds=self.settings.validation_deadline_seconds),
        )
