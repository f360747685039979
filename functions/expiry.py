"""The daily timer: an expiry notice for every credential the rotator can read that crosses one of
``ROTATION_EXPIRY_WINDOWS_DAYS`` today, managed or not, naming its app's owners.

Stateless by design (``rotation.domain.expiry``): the window rule measures days from the start of
the UTC day, so one run a day tells each credential once per window; a second run on the same day
repeats the same notices (same ``noticeId``), and a day without a run loses that day's crossings.
The schedule, ``%ROTATION_EXPIRY_SCHEDULE%``, must therefore fire once per UTC day.

Annotations are evaluated at import (no ``from __future__ import annotations``): the Python worker
inspects them to pick converters.
"""

import logging
import time

import azure.functions as func

from functions.config import EdgeConfig
from functions.host import invocation_settings, new_blueprint
from rotation.domain.errors import RotationError
from rotation.domain.model import new_operation_id
from rotation.observability import event as log_event


def blueprint(config: EdgeConfig) -> func.Blueprint:
    bp = new_blueprint()

    @bp.timer_trigger(arg_name="timer", schedule="%ROTATION_EXPIRY_SCHEDULE%", run_on_startup=False, use_monitor=True)
    async def expiry_notices(timer: func.TimerRequest) -> None:
        """Log ``CredentialExpiryNotice`` for each credential crossing an expiry window today.

        A past-due run (the app was down at 06:00) does the same work: the rule depends on the day,
        not the hour, so a late run on the same UTC day says exactly what the on-time run would have.
        """
        await send_expiry_notices(config, past_due=timer.past_due)

    return bp


async def send_expiry_notices(config: EdgeConfig, *, past_due: bool) -> int:
    """Find today's notices, log them and the run; the number of notices."""
    operation_id = new_operation_id()
    started = time.monotonic()
    now = config.clock()
    settings = invocation_settings("expiry_notices", operation_id)
    # The tools load with the first run, not at cold start (like the inventory route).
    from rotation.tools.expiry_notices import find_notices, log_notices

    try:
        async with config.runtime(settings) as runtime:
            run = await find_notices(runtime, now)
    except RotationError as error:
        log_event(
            "ExpiryNoticesFailed",
            level=logging.ERROR,
            operationId=operation_id,
            errorCode=error.code,
            error=error.message,
        )
        raise
    log_notices(run)
    log_event(
        "ExpiryNoticesCompleted",
        operationId=operation_id,
        pastDue=past_due,
        day=f"{now:%Y-%m-%d}",
        windows=",".join(map(str, settings.expiry_windows_days)),
        applications=run.applications,
        credentials=run.credentials,
        notices=len(run.notices),
        ownerReads=run.owner_reads,
        incomplete=len(run.warnings) or None,
        seconds=round(time.monotonic() - started, 3),
    )
    return len(run.notices)
