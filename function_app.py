"""The Azure Function app (Python v2 programming model): one Blueprint per trigger family.

    timer "sweep" ────────────┐                                   functions/sweep.py
    timer "expiry_notices" (daily): CredentialExpiryNotice logs    functions/expiry.py
    Event Grid (Key Vault) ───┼──► queue "rotation-requests"      functions/events.py
    POST /api/secrets/…/rotate┘        │                          functions/http.py (+ status, list, inventory)
                                       └──► rotate_worker: blob lease ──► reconcile   functions/worker.py

Nothing here does network I/O at import time: settings are read, and clients opened, once per
invocation, so a bad setting fails one invocation with a clear message instead of the whole app.
"""

import logging

import azure.functions as func

from functions import events, expiry, http, sweep, worker
from functions.config import EdgeConfig
from rotation import redact

# azure-core logs every request's URL and headers at INFO: noise (and ingestion cost) next to the
# rotator's own decision logs. Only that logger is quietened; identity and SDK warnings still flow.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
# The host's handler is on the root logger when this module is imported: scrub secret values there.
redact.install()


def create_app(config: EdgeConfig | None = None) -> func.FunctionApp:
    """The app with every trigger family; tests pass their own :class:`EdgeConfig`."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for family in (sweep, expiry, events, worker, http):
        app.register_functions(family.blueprint(config or EdgeConfig()))
    return app


app = create_app()
