"""The inventory's output formats, each rendered once from the in-memory :class:`.model.Inventory`.

Table, JSON and CSV share one set of fields per row (:func:`row_fields`, the JSON keys); HTML has its
own renderer (:mod:`.html`). Every format is scrubbed once more for registered secret values as
defence in depth: the model holds none.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any, Final

from rotation.domain.model import format_utc
from rotation.domain.sign_in_report import REPORT_AGE
from rotation.redact import registry
from rotation.tools.common import table, terminal_safe
from rotation.tools.inventory.html import render_inventory_html
from rotation.tools.inventory.model import CRITICAL_DAYS, SOON_DAYS, Inventory, InventoryRow, Standing, urgency_of


def row_fields(row: InventoryRow, now: datetime) -> dict[str, Any]:
    """One row's fields under their JSON keys: the JSON document's ``credentials`` items, the CSV
    columns and the table's cells, so the three formats cannot drift apart."""
    days = row.days_left(now)
    return {
        "standing": row.standing.value,
        "kind": row.kind,
        "appId": row.app_id,
        "appName": row.app_name,
        "keyId": row.key_id,
        "credentialName": row.credential_name,
        "hint": row.hint,
        "start": format_utc(row.start) if row.start else None,
        "end": format_utc(row.end) if row.end else None,
        "daysLeft": round(days, 1) if days is not None else None,
        "urgency": urgency_of(days),
        "vault": row.vault,
        "secret": row.secret,
        "note": row.note,
        "credentialObject": row.credential_object,
        "thumbprint": row.thumbprint,
        "issuer": row.issuer,
        "subject": row.subject,
        "lastSignIn": row.last_sign_in_text,
        "signInStatus": row.sign_in_status,
        "noPasswordLeft": row.no_password_left,
    }


def inventory_fields(inventory: Inventory) -> dict[str, Any]:
    """The JSON document (``--format json`` and ``GET /api/inventory``)."""
    return {
        "generatedAt": format_utc(inventory.generated),
        "days": inventory.days,
        "applications": inventory.applications,
        "vaultSecrets": inventory.vault_secrets,
        "counts": inventory.counts(),
        "warnings": list(inventory.warnings),
        "servicePrincipals": inventory.service_principals,
        "vaultCertificates": inventory.vault_certificates,
        "signInReport": {
            "readable": inventory.sign_ins_unavailable is None,
            "unavailable": inventory.sign_ins_unavailable,
            "age": REPORT_AGE,
        },
        "appsWithoutPassword": [{"appId": a, "appName": n} for a, n in inventory.apps_without_password],
        "credentials": [row_fields(row, inventory.generated) for row in inventory.rows],
    }


_COLUMNS: Final = (
    ("daysLeft", "Days"),
    ("end", "Expires"),
    ("standing", "Standing"),
    ("kind", "Kind"),
    ("appName", "App"),
    ("appId", "App id"),
    ("credentialName", "Credential"),
    ("keyId", "Key id"),
    ("hint", "Hint"),
    ("vault", "Vault"),
    ("secret", "Secret"),
    ("note", "Note"),
    ("credentialObject", "On"),
    ("thumbprint", "Thumbprint"),
    ("issuer", "Issuer"),
    ("subject", "Subject"),
    ("lastSignIn", "Last sign-in"),
    ("signInStatus", "Sign-in status"),
    ("noPasswordLeft", "No password left"),
)
#: The table's short word for where a credential lives.
_OBJECT_WORD: Final = {"application": "app", "servicePrincipal": "sp"}


def render_table(inventory: Inventory) -> str:

    now = inventory.generated
    shown = (
        "daysLeft",
        "end",
        "standing",
        "kind",
        "credentialObject",
        "appName",
        "credentialName",
        "keyId",
        "lastSignIn",
        "vault",
        "secret",
    )
    labels = dict(_COLUMNS)
    headers = [labels[key] for key in shown]  # in the order of the cells, not of the CSV columns
    rows = []
    for row in inventory.rows:
        data = row_fields(row, now)
        data["appName"] = data["appName"] or data["appId"]  # a deleted app has no name, only its id
        data["credentialObject"] = _OBJECT_WORD[row.credential_object]
        if row.kind == "federated":
            data["end"] = "never"  # federated credentials do not expire
        cells = []
        for key in shown:
            value = data[key]
            text = "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
            cells.append(terminal_safe(_clip(text, 40)))
        rows.append(cells)
    lines = [table(rows, headers), "", summary_line(inventory), inventory.sign_in_line()]
    if inventory.apps_without_password:
        names = ", ".join(f"{name or '(no name)'} ({app_id})" for app_id, name in inventory.apps_without_password)
        lines.append(terminal_safe(f"no password left: {names}"))
    lines.extend(f"warning: {terminal_safe(w)}" for w in inventory.warnings)
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_line(inventory: Inventory) -> str:
    counts = inventory.counts()
    standings = ", ".join(f"{counts[s.value]} {s.value}" for s in Standing)
    scope = f" expiring within {inventory.days} days" if inventory.days is not None else ""
    certificates = inventory.vault_certificates
    vault_objects = f"{inventory.vault_secrets} vault secret(s)"
    if certificates is not None:
        vault_objects += f" and {certificates} vault certificate(s)"
    return (
        f"{counts['total']} credential(s){scope} across {inventory.applications} application(s) and "
        f"{vault_objects}: {standings}; {counts['expired']} expired, "
        f"{counts['critical']} within {CRITICAL_DAYS} days, {counts['soon']} within {SOON_DAYS} days"
    )


def render_json(inventory: Inventory) -> str:
    return registry.scrub(json.dumps(inventory_fields(inventory), indent=2))


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    # A display name such as '=HYPERLINK(...)' would run as a formula in a spreadsheet.
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(inventory: Inventory) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key for key, _ in _COLUMNS] + ["urgency"])
    for row in inventory.rows:
        data = row_fields(row, inventory.generated)
        writer.writerow([_csv_cell(data[key]) for key, _ in _COLUMNS] + [data["urgency"]])
    return registry.scrub(out.getvalue())


def render(inventory: Inventory, fmt: str) -> str:
    if fmt == "json":
        return render_json(inventory)
    if fmt == "csv":
        return render_csv(inventory)
    if fmt == "html":
        return registry.scrub(render_inventory_html(inventory))
    return registry.scrub(render_table(inventory))  # the table too: every format is scrubbed
