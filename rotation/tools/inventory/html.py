"""The inventory as one self-contained HTML page: a sortable table and a timeline of expiries.

Self-contained means no request leaves the page: inline CSS and JavaScript, system fonts, no images,
and a Content-Security-Policy (``default-src 'none'``, the script allowed by its hash) that would block
anything else. Every string from outside, above all app display names, which anyone who can create
an app registration chooses, goes through :func:`html.escape`; the script reads only the DOM, so no
data is ever embedded in JavaScript. Accessible: a semantic ``<table>`` with a caption, column headers
that are buttons and carry ``aria-sort``, a polite live region announcing the order, and a timeline
whose marks have text for screen readers.
"""

from __future__ import annotations

import base64
import hashlib
import html
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from rotation.domain.model import format_utc
from rotation.tools.inventory.model import Inventory, InventoryRow


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


_URGENCY_LABEL: Final = {
    "expired": "Expired",
    "critical": "< 7 days",
    "soon": "< 30 days",
    "later": "Later",
    "none": "No end date",
}

# --------------------------------------------------------------------------------------------------
# Timeline geometry: piecewise linear, so the next days get room and two years still fit.

_DOMAIN_DAYS: Final = (-30.0, 0.0, 7.0, 30.0, 90.0, 365.0, 730.0)
_POSITIONS: Final = (0.0, 12.0, 30.0, 50.0, 68.0, 88.0, 100.0)
_TICKS: Final = (
    (-30.0, "30 d ago"),
    (0.0, "today"),
    (7.0, "7 d"),
    (30.0, "30 d"),
    (90.0, "90 d"),
    (365.0, "1 y"),
    (730.0, "2 y"),
)
_LANE_GAP_PERCENT: Final = 1.6
_MAX_LANES: Final = 8
_LANE_HEIGHT_PX: Final = 16


def timeline_position(days_left: float) -> float:
    """Where on the timeline (0-100 %) a credential expiring in ``days_left`` days sits (clamped)."""
    if days_left <= _DOMAIN_DAYS[0]:
        return _POSITIONS[0]
    if days_left >= _DOMAIN_DAYS[-1]:
        return _POSITIONS[-1]
    i = bisect_right(_DOMAIN_DAYS, days_left) - 1
    d0, d1 = _DOMAIN_DAYS[i], _DOMAIN_DAYS[i + 1]
    p0, p1 = _POSITIONS[i], _POSITIONS[i + 1]
    return p0 + (days_left - d0) / (d1 - d0) * (p1 - p0)


def _lanes(positions: Sequence[float]) -> list[int]:
    """A lane per mark so that close marks stack instead of hiding each other (greedy, in order)."""
    last_in_lane: list[float] = []
    lanes: list[int] = []
    for position in positions:
        for lane, last in enumerate(last_in_lane):
            if position - last >= _LANE_GAP_PERCENT:
                last_in_lane[lane] = position
                lanes.append(lane)
                break
        else:
            if len(last_in_lane) < _MAX_LANES:
                last_in_lane.append(position)
                lanes.append(len(last_in_lane) - 1)
            else:
                lanes.append(len(last_in_lane) - 1)  # crowded: overlap in the last lane
    return lanes


def _mark_label(row: InventoryRow, now: datetime) -> str:
    days = row.days_left(now)
    when = "expired" if days is not None and days <= 0 else "expires"
    end = format_utc(row.end) if row.end else "?"
    name = row.app_name or row.app_id or "unknown app"
    credential = row.credential_name or row.key_id
    return f"{name}: {row.kind} {credential} {when} {end} ({days:.0f} days, {row.standing.value})"


def _timeline(inventory: Inventory) -> str:
    now = inventory.generated
    dated = [(row, row.days_left(now)) for row in inventory.rows]
    points = sorted(
        ((timeline_position(days), row) for row, days in dated if days is not None),
        key=lambda item: item[0],
    )
    if not points:
        return '<p class="empty">No credential with an end date to show.</p>'
    lanes = _lanes([position for position, _ in points])
    height = (max(lanes) + 1) * _LANE_HEIGHT_PX + 12
    zones = "".join(
        f'<div class="zone z-{name}" style="left:{left:.2f}%;width:{right - left:.2f}%"></div>'
        for name, left, right in (
            ("expired", 0.0, _POSITIONS[1]),
            ("critical", _POSITIONS[1], _POSITIONS[2]),
            ("soon", _POSITIONS[2], _POSITIONS[3]),
            ("later", _POSITIONS[3], 100.0),
        )
    )
    ticks = "".join(
        f'<li class="tick" style="left:{timeline_position(day):.2f}%">{_e(label)}</li>' for day, label in _TICKS
    )
    marks = "".join(
        f'<li class="mark u-{row.urgency(now)} k-{row.kind}" '
        f'style="left:{position:.2f}%;top:{6 + lane * _LANE_HEIGHT_PX}px" title="{_e(_mark_label(row, now))}">'
        f'<span class="sr-only">{_e(_mark_label(row, now))}</span></li>'
        for (position, row), lane in zip(points, lanes, strict=True)
    )
    return (
        f'<div class="timeline"><div class="track" style="height:{height}px">{zones}'
        f'<ol class="marks" aria-label="Expiries by date, soonest first">{marks}</ol></div>'
        f'<ol class="ticks" aria-hidden="true">{ticks}</ol></div>'
    )


# --------------------------------------------------------------------------------------------------
# Table

_HEADERS: Final = (
    ("days", "Days left", "number"),
    ("end", "Expires", "text"),
    ("urgency", "Urgency", "number"),
    ("standing", "Standing", "text"),
    ("kind", "Kind", "text"),
    ("app", "Application", "text"),
    ("credential", "Credential", "text"),
    ("signin", "Last sign-in", "text"),
    ("location", "Vault / secret", "text"),
    ("note", "Note", "text"),
)
_URGENCY_ORDER: Final = {"expired": 0, "critical": 1, "soon": 2, "later": 3, "none": 4}


def _header_row() -> str:
    cells = []
    for key, label, kind in _HEADERS:
        sort = "ascending" if key == "days" else "none"
        cells.append(
            f'<th scope="col" data-key="{key}" data-type="{kind}" aria-sort="{sort}">'
            f'<button type="button">{_e(label)}<span class="arrow" aria-hidden="true"></span></button></th>'
        )
    return "<tr>" + "".join(cells) + "</tr>"


def _row(row: InventoryRow, now: datetime) -> str:
    days = row.days_left(now)
    urgency = row.urgency(now)
    days_text = "" if days is None else f"{days:.1f}"
    end_full = format_utc(row.end) if row.end else ""
    app_name = row.app_name or "(no name)"
    no_password = '<span class="badge nopw">no password left</span>' if row.no_password_left else ""
    app = (
        f'<span class="primary">{_e(app_name)}</span>{no_password}<span class="secondary">{_e(row.app_id or "")}</span>'
    )
    credential_name = row.credential_name or "(no description)"
    credential = (
        f'<span class="primary">{_e(credential_name)}</span>'
        f'<span class="secondary">{"".join(_e(part) for part in _credential_details(row))}</span>'
    )
    kind = row.kind if row.credential_object == "application" else f"{row.kind} on the service principal"
    sign_in = row.last_sign_in_text
    location = (
        f'<span class="primary">{_e(row.secret)}</span><span class="secondary">{_e(row.vault)}</span>'
        if row.vault and row.secret
        else ""
    )
    cells = (
        f'<td class="num" data-sort="{_e(days_text)}">{_e(f"{days:.0f}" if days is not None else "")}</td>',
        f'<td class="date" data-sort="{_e(end_full)}"><time datetime="{_e(end_full)}" title="{_e(end_full)}">'
        f"{_e(end_full[:10])}</time></td>",
        f'<td data-sort="{_URGENCY_ORDER[urgency]}">'
        f'<span class="badge u-{urgency}">{_e(_URGENCY_LABEL[urgency])}</span></td>',
        f'<td><span class="badge s-{row.standing.value}">{_e(row.standing.value)}</span></td>',
        f"<td>{_e(kind)}</td>",
        f'<td data-sort="{_e(app_name.lower())}">{app}</td>',
        f'<td data-sort="{_e(credential_name.lower())}">{credential}</td>',
        f'<td class="date signin s-{_e(row.sign_in_status)}" data-sort="{_e(sign_in)}">{_e(sign_in)}</td>',
        f'<td data-sort="{_e(f"{row.vault}/{row.secret}" if row.vault and row.secret else "")}">{location}</td>',
        f'<td class="note">{_e(row.note)}</td>',
    )
    return f'<tr class="u-{urgency}">' + "".join(cells) + "</tr>"


def _credential_details(row: InventoryRow) -> list[str]:
    """The small print under a credential's name: its id, and what identifies it by kind (the
    hint Graph shows of a password, a certificate's thumbprint, a federated credential's trust)."""
    details = [row.key_id]
    if row.hint:
        details.append(f" · hint {row.hint}")
    if row.thumbprint:
        details.append(f" · thumbprint {row.thumbprint}")
    if row.issuer:
        details.append(f" · issuer {row.issuer}")
    if row.subject:
        details.append(f" · subject {row.subject}")
    return details


def _about(inventory: Inventory) -> str:
    """Said once per page: what the last sign-in column is worth, and the apps left without a password."""
    items = [f"<li>{_e(inventory.sign_in_line())}</li>"]
    if inventory.apps_without_password:
        names = ", ".join(f"{name or '(no name)'} ({app_id})" for app_id, name in inventory.apps_without_password)
        items.append(f'<li class="nopw-list">No password left (secrets cannot sign in): {_e(names)}</li>')
    return f'<ul class="about">{"".join(items)}</ul>'


def _summary(inventory: Inventory) -> str:
    counts = inventory.counts()
    urgent = "".join(
        f'<li class="card u-{key}"><span class="count">{counts[key]}</span>'
        f'<span class="label">{_e(_URGENCY_LABEL[key])}</span></li>'
        for key in ("expired", "critical", "soon", "later")
    )
    standings = "".join(
        f'<li><span class="badge s-{key}">{_e(key)}</span> {counts[key]}</li>'
        for key in ("managed", "retiring", "orphaned", "unmanaged", "dangling")
    )
    return (
        f'<ul class="cards">{urgent}</ul><ul class="standings" aria-label="By standing">{standings}</ul>'
        f"{_about(inventory)}"
    )


# --------------------------------------------------------------------------------------------------
# The page

_STYLE: Final = """
:root{--expired:#b3261e;--critical:#c2410c;--soon:#a16207;--later:#15803d;--none:#6b7280;
--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--ink);background:#fff}
header,main{max-width:1440px;margin:0 auto;padding:0 24px}
header{padding-top:20px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:24px 0 8px}
.meta{color:var(--muted);margin:0}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);
  white-space:nowrap;border:0}
.cards{display:flex;gap:12px;list-style:none;padding:0;margin:16px 0 8px;flex-wrap:wrap}
.card{border:1px solid var(--line);border-left:6px solid var(--none);border-radius:8px;padding:8px 14px;
  min-width:120px;background:#fff}
.card .count{display:block;font-size:24px;font-weight:700}
.card .label{color:var(--muted)}
.card.u-expired{border-left-color:var(--expired)}.card.u-critical{border-left-color:var(--critical)}
.card.u-soon{border-left-color:var(--soon)}.card.u-later{border-left-color:var(--later)}
.standings{display:flex;gap:16px;list-style:none;padding:0;margin:0;flex-wrap:wrap;color:var(--muted)}
.warnings{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px}
.timeline{margin:8px 0 0}
.track{position:relative;border:1px solid var(--line);border-radius:6px;background:var(--bg);overflow:hidden}
.zone{position:absolute;top:0;bottom:0;opacity:.10}
.z-expired{background:var(--expired)}.z-critical{background:var(--critical)}.z-soon{background:var(--soon)}.z-later{background:var(--later)}
.marks,.ticks{list-style:none;margin:0;padding:0}
.mark{position:absolute;width:12px;height:12px;margin-left:-6px;border-radius:50%;border:2px solid #fff;
  box-shadow:0 0 0 1px rgba(0,0,0,.25);background:var(--none)}
.mark.k-certificate{border-radius:2px}
.ticks{position:relative;height:20px}
.tick{position:absolute;transform:translateX(-50%);font-size:12px;color:var(--muted);white-space:nowrap;
  padding-top:2px}
.tick:first-child{transform:none}.tick:last-child{transform:translateX(-100%)}
.u-expired .count,.mark.u-expired{color:var(--expired)}
.mark.u-expired{background:var(--expired)}.mark.u-critical{background:var(--critical)}
.mark.u-soon{background:var(--soon)}.mark.u-later{background:var(--later)}
.legend{display:flex;gap:16px;list-style:none;padding:0;margin:6px 0 0;color:var(--muted);font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;
  vertical-align:-1px}
table{border-collapse:collapse;width:100%;margin:8px 0 32px}
caption{text-align:left;color:var(--muted);padding:0 0 6px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:0;white-space:nowrap}
.scroll{overflow-x:auto}
th button{all:unset;cursor:pointer;font-weight:600;display:inline-flex;gap:4px;align-items:center}
th button:focus-visible{outline:2px solid #0969da;outline-offset:2px;border-radius:3px}
th[aria-sort=ascending] .arrow::after{content:"\\25B2";font-size:10px}
th[aria-sort=descending] .arrow::after{content:"\\25BC";font-size:10px}
td.num{text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
tr.u-expired td:first-child{box-shadow:inset 4px 0 var(--expired)}
tr.u-critical td:first-child{box-shadow:inset 4px 0 var(--critical)}
tr.u-soon td:first-child{box-shadow:inset 4px 0 var(--soon)}
tr.u-later td:first-child{box-shadow:inset 4px 0 var(--later)}
.primary{display:block}
.secondary{display:block;color:var(--muted);font-size:11px;overflow-wrap:anywhere;
  font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.note{color:var(--muted);max-width:240px;font-size:13px}
td.date{white-space:nowrap}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;
  background:var(--none);white-space:nowrap}
.badge.u-expired{background:var(--expired)}.badge.u-critical{background:var(--critical)}
.badge.u-soon{background:var(--soon)}.badge.u-later{background:var(--later)}
.badge.s-managed{background:#0969da}.badge.s-retiring{background:#8250df}.badge.s-orphaned{background:#bf3989}
.badge.s-unmanaged{background:#6e7781}.badge.s-dangling{background:#b3261e}
.empty{color:var(--muted)}
.badge.nopw{background:#9a3412;margin:2px 0}
.about{list-style:none;padding:0;margin:8px 0 0;color:var(--muted);font-size:13px}
td.signin.s-unknown,td.signin.s-notReported{color:var(--muted)}
"""

_SCRIPT: Final = """
"use strict";
(() => {
  const table = document.getElementById("inventory");
  if (!table || !table.tHead || !table.tBodies.length) return;
  const body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  const status = document.getElementById("sort-status");
  const keyOf = (row, index, numeric) => {
    const cell = row.cells[index];
    if (!cell) return null;
    const raw = (cell.dataset.sort ?? cell.textContent).trim();
    if (raw === "") return null;
    if (!numeric) return raw.toLowerCase();
    const number = Number.parseFloat(raw);
    return Number.isNaN(number) ? null : number;
  };
  const sortBy = (index, direction) => {
    const numeric = headers[index].dataset.type === "number";
    const factor = direction === "ascending" ? 1 : -1;
    const items = Array.from(body.rows, (row, position) => ({ row, position, key: keyOf(row, index, numeric) }));
    items.sort((a, b) => {
      if (a.key === null || b.key === null) {
        if (a.key !== b.key) return a.key === null ? 1 : -1; // no value: always last
        return a.position - b.position;
      }
      const order = numeric ? a.key - b.key : a.key.localeCompare(b.key);
      return order !== 0 ? order * factor : a.position - b.position;
    });
    for (const item of items) body.appendChild(item.row);
    headers.forEach((th, i) => th.setAttribute("aria-sort", i === index ? direction : "none"));
    if (status) status.textContent = `Sorted by ${headers[index].textContent.trim()}, ${direction}.`;
  };
  headers.forEach((th, index) => {
    const button = th.querySelector("button");
    if (!button) return;
    button.addEventListener("click", () => {
      sortBy(index, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
    });
  });
})();
"""


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src '{_script_hash(_SCRIPT)}'; img-src 'none'; base-uri 'none'; form-action 'none'"
)


def render_inventory_html(inventory: Inventory) -> str:
    now = inventory.generated
    counts = inventory.counts()
    scope = f", expiring within {inventory.days} days" if inventory.days is not None else ""
    generated = format_utc(now).replace("T", " ").rstrip("Z") + " UTC"
    meta = (
        f"Generated {generated} · {counts['total']} credential(s){scope} across {inventory.applications} "
        f"application(s) and {inventory.vault_secrets} vault secret(s) · no secret values are included"
    )
    warnings = ""
    if inventory.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in inventory.warnings)
        warnings = f'<section class="warnings" aria-label="Warnings"><ul>{items}</ul></section>'
    rows = "".join(_row(row, now) for row in inventory.rows)
    if not rows:
        rows = f'<tr><td colspan="{len(_HEADERS)}" class="empty">No credentials{_e(scope)}.</td></tr>'
    legend = "".join(
        f'<li><span style="background:var(--{key})"></span>{_e(_URGENCY_LABEL[key])}</li>'
        for key in ("expired", "critical", "soon", "later")
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">
<meta name="referrer" content="no-referrer">
<title>Entra credential inventory, {_e(generated)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>Entra credential inventory</h1>
<p class="meta">{_e(meta)}</p>
</header>
<main>
{warnings}
<section aria-labelledby="summary-title">
<h2 id="summary-title">Summary</h2>
{_summary(inventory)}
</section>
<section aria-labelledby="timeline-title">
<h2 id="timeline-title">Expiry timeline</h2>
{_timeline(inventory)}
<ul class="legend" aria-hidden="true">{legend}</ul>
</section>
<section aria-labelledby="table-title">
<h2 id="table-title">Credentials</h2>
<div class="scroll">
<table id="inventory">
<caption>Every client secret, certificate and federated credential, soonest expiry first.
Select a column header to sort by it.</caption>
<thead>{_header_row()}</thead>
<tbody>{rows}</tbody>
</table>
</div>
<p id="sort-status" class="sr-only" aria-live="polite"></p>
</section>
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""
