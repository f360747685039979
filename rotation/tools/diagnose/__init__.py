"""Read-only diagnosis of one client secret kept in Key Vault: why does signing in with it fail?

Typical incident: a service logs ``AADSTS7000215`` at 3 a.m. and nobody knows whether the vault holds
the Secret ID instead of the value, a value rotated away in Entra, a truncated paste or a secret for
another app. :func:`diagnose` answers from what it can *read*, so it is safe to run against
production and works for secrets the rotator does not manage (``--app``/``--tenant`` supply what
the tags would).

The causes checked cover Microsoft's list for AADSTS7000215 (Secret ID instead of value, expired,
special characters mangled or not URL-encoded, stale value after a rotation in Entra, value of another
app or tenant, truncation and whitespace, replication delay, consumers pinned to an old Key Vault
version) and the neighbouring codes 7000222, 700016, 900023 and 90002.

The package is split by role, so that every judgement is unit-testable and the I/O is one list:

- :mod:`.gather`: the reads (the only I/O), filling :class:`.facts.Observed`;
- :mod:`.checks`: pure functions from those facts to :class:`.results.Check` results (``judge``);
- :mod:`.render`: text for a terminal and the ``--json`` document.

No output ever contains the value: only its length, its first three characters (which Graph shows
as the credential's ``hint`` anyway) and shape facts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rotation.tools.diagnose.checks import judge, value_shape
from rotation.tools.diagnose.facts import AppLookup, Observed, TenantLookup
from rotation.tools.diagnose.gather import gather, lookup_tenant
from rotation.tools.diagnose.render import diagnosis_json, render_text, stream_is_utf8
from rotation.tools.diagnose.results import Check, Diagnosis, Status, ValueShape

if TYPE_CHECKING:
    from rotation.runtime import Runtime

__all__ = [
    "AppLookup",
    "Check",
    "Diagnosis",
    "Observed",
    "Status",
    "TenantLookup",
    "ValueShape",
    "diagnose",
    "diagnosis_json",
    "gather",
    "judge",
    "lookup_tenant",
    "render_text",
    "stream_is_utf8",
    "value_shape",
]


async def diagnose(
    runtime: Runtime,
    vault: str,
    secret: str,
    *,
    app_id: str | None = None,
    tenant_id: str | None = None,
    probe: bool = False,
    now: datetime | None = None,
) -> Diagnosis:
    """Diagnose ``secret`` in ``vault`` (a name from ROTATION_VAULTS). Never writes anything."""
    seen = await gather(runtime, vault, secret, app_id=app_id, tenant_id=tenant_id, probe=probe, now=now)
    return judge(seen)
