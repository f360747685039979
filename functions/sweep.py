"""The timer: find the managed secrets that need work (list calls only) and queue one request each.

Annotations are evaluated at import (no ``from __future__ import annotations``): the Python worker
inspects them to pick converters, and ``func.Out[typing.List[str]]`` is the output type its queue
converter accepts for several messages (``list[str]`` is not recognised as iterable there).
"""

import logging
import time
import typing
from dataclasses import dataclass

import azure.functions as func

from functions.config import EdgeConfig
from functions.host import REQUESTS_QUEUE, STORAGE_CONNECTION, invocation_settings, log_enqueued, new_blueprint
from rotation.domain.errors import RotationError
from rotation.domain.model import ReconcileRequest, new_operation_id
from rotation.hosting import publish_lifecycle
from rotation.observability import collecting_lifecycle
from rotation.observability import event as log_event
from rotation.service.certificate_sweep import certificate_work_requests, scan_certificates
from rotation.service.sweep import ScanTally, needs_attention, report_expiring, scan, work_requests
from rotation.settings import Settings


def blueprint(config: EdgeConfig) -> func.Blueprint:
    bp = new_blueprint()

    @bp.timer_trigger(arg_name="timer", schedule="%ROTATION_SCHEDULE%", run_on_startup=False, use_monitor=True)
    @bp.queue_output(arg_name="requests", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
    async def sweep(
        timer: func.TimerRequest,
        requests: func.Out[typing.List[str]],  # noqa: UP006 - the worker's queue converter needs typing.List
    ) -> None:
        """Enqueue one reconcile request per managed secret that needs work, found with list calls only.

        A past-due run (the app was down at the scheduled time) is logged and does the same work: the
        sweep is level-triggered, so running late is exactly as correct as running on time.
        """
        run = await sweep_vaults(config, past_due=timer.past_due)
        if run.work:
            requests.set([request.to_json() for request in run.work])
        run.raise_for_unreadable_vaults()

    return bp


@dataclass(frozen=True)
class SweepRun:
    """What one sweep found: the requests to enqueue, and the vaults it could not read."""

    work: list[ReconcileRequest]
    #: Vaults that could not be listed, with why.
    failures: dict[str, RotationError]
    settings: Settings

    def raise_for_unreadable_vaults(self) -> None:
        # Raised after the output is set: the other vaults' work goes out, and the failed run
        # makes the unreadable vault visible.
        if self.failures:
            raise next(iter(self.failures.values()))


async def sweep_vaults(config: EdgeConfig, *, past_due: bool) -> SweepRun:
    """Scan every configured vault (list calls only), decide what needs work, and log the run; the
    expiry warnings are published too when ``ROTATION_EVENTS_TOPIC`` names a topic."""
    with collecting_lifecycle() as collected:
        run = await _sweep(config, past_due=past_due)
        await publish_lifecycle(run.settings, collected)
        return run


async def _sweep(config: EdgeConfig, *, past_due: bool) -> SweepRun:
    operation_id = new_operation_id()
    started = time.monotonic()
    now = config.clock()
    if past_due:
        log_event("SweepPastDue", level=logging.WARNING, operationId=operation_id)
    settings = invocation_settings("sweep", operation_id)
    failures: dict[str, RotationError] = {}
    tally = ScanTally()
    try:
        async with config.runtime(settings) as runtime:
            # Page by page, keeping only what needs work or expires soon: flat memory in the fleet's size.
            statuses = await scan(
                settings,
                runtime.vaults,
                now,
                failures=failures,
                catalog=runtime.directory,
                keep=needs_attention(settings, now),
                tally=tally,
            )
            # Managed certificates (ROTATION_CERTIFICATES): the same rule, their own list calls.
            certificates = await scan_certificates(
                settings,
                runtime.certificate_vaults,
                now,
                failures=failures,
                keep=needs_attention(settings, now),
                tally=tally,
            )
    except RotationError as error:
        log_event(
            "SweepFailed", level=logging.ERROR, operationId=operation_id, errorCode=error.code, error=error.message
        )
        raise
    # The expiry alert counts these lines: logged here, by the timer only, never by a read of the list.
    report_expiring(statuses, settings, now)
    report_expiring(certificates, settings, now)
    work = work_requests(statuses, now, source="sweep") + certificate_work_requests(certificates, now, source="sweep")
    for request in work:
        log_enqueued(request, source="sweep", sweepId=operation_id)
    log_event(
        "SweepCompleted",
        operationId=operation_id,
        pastDue=past_due,
        managed=tally.managed,
        enqueued=len(work),
        problems=tally.problems,
        unreadableVaults=",".join(sorted(failures)) or None,
        seconds=round(time.monotonic() - started, 3),
    )
    return SweepRun(work, failures, settings)
