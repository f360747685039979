"""A diagnosis as text for a terminal, or as the JSON the command line prints with ``--json``.

Evidence quotes names and tags that anyone may have chosen, so text output is made terminal-safe;
nothing here ever sees the secret value (only :class:`.results.ValueShape`, and for a certificate
the public facts of :class:`.certificate_value.StoredCertificate`).
"""

from __future__ import annotations

import sys
from typing import Any, Final

from rotation.domain.model import format_utc
from rotation.tools.common import terminal_safe
from rotation.tools.diagnose.certificate_value import StoredCertificate
from rotation.tools.diagnose.results import Check, Diagnosis, Status, ValueShape

_SYMBOLS: Final = {Status.PASS: "✔", Status.WARN: "!", Status.FAIL: "✘", Status.SKIP: "·"}
_ASCII: Final = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}


def stream_is_utf8(stream: Any = None) -> bool:
    encoding = getattr(stream or sys.stdout, "encoding", None) or ""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def render_text(diagnosis: Diagnosis, *, unicode: bool = True) -> str:
    symbols = _SYMBOLS if unicode else _ASCII
    lines = [f"Diagnosis of secret '{diagnosis.secret}' in vault '{diagnosis.vault}'"]
    app = f"{diagnosis.app_id} (from {diagnosis.app_source})" if diagnosis.app_id else "unknown"
    tenant = f"{diagnosis.tenant_id} (from {diagnosis.tenant_source})" if diagnosis.tenant_id else "unknown"
    lines.append(f"  app: {app}")
    lines.append(f"  tenant: {tenant}")
    if diagnosis.certificate is not None:
        lines.append(f"  stored value: {_certificate_line(diagnosis.certificate)}")
    lines.append("")
    for check in diagnosis.checks:
        lines.append(f"{symbols[check.status]} {check.title}: {check.evidence}")
        if check.status in (Status.WARN, Status.FAIL):
            if check.cause:
                lines.append(f"    why: {check.cause}")
            if check.remedy:
                lines.append(f"    fix: {check.remedy}")
        elif check.status is Status.SKIP and check.remedy:
            lines.append(f"    hint: {check.remedy}")
    lines.append("")
    likely = diagnosis.most_likely
    if likely is not None:
        lines.append(f"Most likely cause: {likely.evidence} [{likely.id}]")
        if likely.cause:
            lines.append(f"  {likely.cause}")
        lines.append(f"What to do: {likely.remedy}")
    elif any(c.status is Status.WARN for c in diagnosis.checks):
        lines.append("Most likely cause: no check failed; the warnings above are worth fixing.")
        lines.append("What to do: see each warning's fix." + _probe_advice(diagnosis))
    else:
        lines.append("Most likely cause: none found; every check passed.")
        lines.append("What to do: nothing here." + _probe_advice(diagnosis))
    counts = diagnosis.counts()
    lines.append(
        f"Result: {counts['fail']} failed, {counts['warn']} warning(s), {counts['pass']} passed, "
        f"{counts['skip']} skipped"
    )
    return "\n".join(terminal_safe(line) for line in lines)


def _certificate_line(certificate: StoredCertificate) -> str:
    key = "with its private key" if certificate.has_private_key else "without a private key"
    return (
        f"a {certificate.format} certificate {key}, thumbprint {certificate.thumbprint}, {certificate.subject}, "
        f"valid {format_utc(certificate.not_before)} to {format_utc(certificate.not_after)}"
    )


def _probe_advice(diagnosis: Diagnosis) -> str:
    return "" if diagnosis.probe is not None else " Run with --probe to test a sign-in with the stored value."


# --------------------------------------------------------------------------------------------------
# JSON (camelCase keys, like every --json output of the command line)


def check_json(check: Check) -> dict[str, str]:
    return {
        "id": check.id,
        "title": check.title,
        "status": check.status.value,
        "evidence": check.evidence,
        "cause": check.cause,
        "remedy": check.remedy,
    }


def shape_json(shape: ValueShape) -> dict[str, Any]:
    return {
        "length": shape.length,
        "hint": shape.hint,
        "guid": shape.guid,
        "surroundingWhitespace": shape.surrounding_whitespace,
        "leadingWhitespace": shape.leading_whitespace,
        "trailingWhitespace": shape.trailing_whitespace,
        "trailingNewline": shape.trailing_newline,
        "innerWhitespaceOrControl": shape.inner_whitespace_or_control,
        "currentFormat": shape.current_format,
        "shellCharacters": list(shape.shell_characters),
        "formEncodingCharacters": list(shape.form_characters),
    }


def certificate_json(certificate: StoredCertificate) -> dict[str, Any]:
    return {
        "format": certificate.format,
        "thumbprint": certificate.thumbprint,
        "thumbprintSha256": certificate.thumbprint_sha256,
        "subject": certificate.subject,
        "notBefore": format_utc(certificate.not_before),
        "notAfter": format_utc(certificate.not_after),
        "hasPrivateKey": certificate.has_private_key,
    }


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    likely = diagnosis.most_likely
    probe = diagnosis.probe
    return {
        "ok": not diagnosis.failed,
        "vault": diagnosis.vault,
        "secret": diagnosis.secret,
        "appId": diagnosis.app_id,
        "appIdSource": diagnosis.app_source,
        "tenantId": diagnosis.tenant_id,
        "tenantIdSource": diagnosis.tenant_source,
        "value": shape_json(diagnosis.shape) if diagnosis.shape else None,
        "certificate": certificate_json(diagnosis.certificate) if diagnosis.certificate else None,
        "checks": [check_json(c) for c in diagnosis.checks],
        "counts": diagnosis.counts(),
        "mostLikelyCause": check_json(likely) if likely else None,
        "whatToDo": likely.remedy if likely else None,
        "probe": None if probe is None else {"ok": probe.ok, "code": probe.code, "message": probe.message},
    }
