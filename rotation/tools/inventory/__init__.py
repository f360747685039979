"""An expiry inventory of every app credential the rotator can see, and who looks after each.

Reads only, and cheaply (see :mod:`.collect`). Each credential is then (see :mod:`.classify`):

- ``managed``: a vault secret's ``CredentialId`` tag names it;
- ``retiring``: a ``RetireCredentialId`` tag names it (replaced, waiting for its grace period);
- ``orphaned``: the rotator created it (``rotator:{vault}/{secret}:*``) but no tag names it;
- ``unmanaged``: everything else, including every certificate.

A vault secret whose ``CredentialId`` names a credential that no app has any more is ``dangling``:
its value no longer signs in (rotated or deleted in Entra but not in the vault).

The package is split by role: :mod:`.collect` (the reads) → :mod:`.classify` (pure) → one
:class:`.model.Inventory` → :mod:`.render` (table, JSON, CSV) and :mod:`.html`, each output
rendered once from that model. :func:`inventory_response` (:mod:`.http`) serves the same report
over HTTP for the function app.
"""

from __future__ import annotations

from rotation.tools.inventory.classify import classify, within_days
from rotation.tools.inventory.collect import ProgressStep, collect
from rotation.tools.inventory.http import HTML_TYPE, JSON_TYPE, inventory_response, parse_days
from rotation.tools.inventory.model import (
    CRITICAL_DAYS,
    FORMATS,
    HTTP_FORMATS,
    MAX_DAYS,
    SOON_DAYS,
    Inventory,
    InventoryRow,
    Kind,
    Standing,
    Urgency,
    urgency_of,
)
from rotation.tools.inventory.render import (
    inventory_fields,
    render,
    render_csv,
    render_json,
    render_table,
    row_fields,
    summary_line,
)

__all__ = [
    "CRITICAL_DAYS",
    "FORMATS",
    "HTML_TYPE",
    "HTTP_FORMATS",
    "JSON_TYPE",
    "MAX_DAYS",
    "SOON_DAYS",
    "Inventory",
    "InventoryRow",
    "Kind",
    "ProgressStep",
    "Standing",
    "Urgency",
    "classify",
    "collect",
    "inventory_fields",
    "inventory_response",
    "parse_days",
    "render",
    "render_csv",
    "render_json",
    "render_table",
    "row_fields",
    "summary_line",
    "urgency_of",
    "within_days",
]
