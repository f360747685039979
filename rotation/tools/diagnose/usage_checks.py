"""Which credential the app's consumers really sign in with (issue 13): the rotated-but-not-updated cause.

The evidence is Graph's credential sign-in report (``Directory.credential_sign_ins``): per keyId,
the day of the last sign-in. It is day-granular and at least a day late (the rotator's retirement
rule takes it as 48 h late, ``evidence.REPORT_DELAY``), so it tells which credential consumers
*used*, not which they use this minute; the check says so. When the stored value's credential is not the one consumers
sign in with, they hold a value from somewhere else (a copy made before a rotation, a pipeline
variable, the portal), or the vault holds a value nobody uses: either way the two disagree.

Without the report (no ``AuditLog.Read.All``, a tenant without Entra ID P1/P2) the check is
skipped with one line: it never fails a diagnosis.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from rotation.domain.model import Tag, format_utc
from rotation.tools.diagnose.certificate_checks import matched_key_credential
from rotation.tools.diagnose.certificate_value import StoredCertificate
from rotation.tools.diagnose.credentials import matched_credential
from rotation.tools.diagnose.facts import Observed
from rotation.tools.diagnose.results import Check, Status
from rotation.tools.diagnose.wording import skip

TITLE: Final = "Consumers sign in with the stored credential (sign-in report)"
CHECK_ID: Final = "usage.consumers"
#: How the report's age is said, every time it is quoted.
REPORT_AGE: Final = "the report is day-granular and at least a day late"
#: The least the report lags (Microsoft: "not real time"; seen a day late). The retirement rule
#: assumes twice that (``evidence.REPORT_DELAY``) to be safe; here it only dates what is shown.
REPORT_LAG: Final = timedelta(days=1)


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "never (not in the report)"


def _stored_key_id(seen: Observed, certificate: StoredCertificate | None) -> str | None:
    """The keyId of the credential whose value is stored: for a certificate the app's certificate
    with its thumbprint; for a secret the CredentialId tag, else the one credential whose hint matches."""
    if certificate is not None:
        key = matched_key_credential(seen, certificate)
        return key.key_id.lower() if key else None
    tagged = seen.tags.get(Tag.CredentialId, "").strip()
    if tagged:
        return tagged.lower()
    credential = matched_credential(seen)
    return credential.key_id.lower() if credential else None


def _label(seen: Observed, key_id: str) -> str:
    credential = seen.app.credential(key_id) if seen.app else None
    if credential is not None:
        name = f" '{credential.display_name}'" if credential.display_name else ""
        return f"{credential.key_id}{name} (hint {credential.hint or '?'})"
    keys = seen.app.key_credentials if seen.app else ()
    key = next((k for k in keys if k.key_id.lower() == key_id.lower()), None)
    if key is not None:
        name = f" '{key.display_name}'" if key.display_name else ""
        return f"{key.key_id}{name} (certificate {key.thumbprint or '?'})"
    return f"{key_id} (no longer on the app)"


def check_consumer_credential(seen: Observed, certificate: StoredCertificate | None = None) -> Check:
    """Compare the stored credential's last sign-in with the app's other credentials' (secrets and
    certificates alike: the report lists both by keyId)."""
    if seen.app is None:
        return skip(CHECK_ID, TITLE, "the app was not read")
    if seen.sign_ins_problem is not None:
        return skip(CHECK_ID, TITLE, f"the sign-in report could not be read: {seen.sign_ins_problem}")
    report = seen.sign_ins
    if report is None:
        return skip(
            CHECK_ID,
            TITLE,
            "the sign-in report is not readable by the rotator (it needs AuditLog.Read.All and an Entra ID "
            "P1/P2 tenant), so which credential consumers use is unknown; not a failure",
            "Grant the rotator's identity the Graph permission AuditLog.Read.All to see it here (azd up with "
            "ROTATION_GRANT_AUDIT_LOG=true; docs/deploy.md, Retirement on evidence).",
        )
    covered = f"{REPORT_AGE}: it shows nothing after about {format_utc(seen.now - REPORT_LAG)}"
    stored = _stored_key_id(seen, certificate)
    used = {key: last for key, last in report.items() if last is not None}
    if stored is None:
        if not used:
            return skip(CHECK_ID, TITLE, f"no credential of the app has a sign-in in the report ({covered})")
        latest = max(used, key=lambda key: used[key] or datetime.min)
        return skip(
            CHECK_ID,
            TITLE,
            f"the stored value matches no credential of the app; consumers sign in with credential "
            f"{_label(seen, latest)} (last sign-in {_day(used[latest])}; {covered})",
        )
    stored_last = used.get(stored)
    others = {key: last for key, last in used.items() if key != stored}
    newer = {key: last for key, last in others.items() if stored_last is None or _later_day(last, stored_last)}
    if not newer:
        same_day = sorted(key for key, last in others.items() if stored_last and _same_day(last, stored_last))
        also = (
            f"; credential(s) {', '.join(_label(seen, k) for k in same_day)} signed in that day too" if same_day else ""
        )
        if stored_last is None:
            return Check(
                CHECK_ID,
                TITLE,
                Status.PASS,
                f"no credential of the app has a sign-in in the report ({covered})",
            )
        return Check(
            CHECK_ID,
            TITLE,
            Status.PASS,
            f"credential {_label(seen, stored)} last signed in on {_day(stored_last)}{also} ({covered})",
        )
    latest = max(newer, key=lambda key: newer[key] or datetime.min)
    return Check(
        CHECK_ID,
        TITLE,
        Status.WARN,
        f"the stored value is credential {_label(seen, stored)}, last sign-in {_day(stored_last)}; consumers sign "
        f"in with credential {_label(seen, latest)}, last sign-in {_day(newer[latest])} ({covered})",
        "Rotated but not updated: the credential consumers sign in with is not the one this secret holds, so they "
        "read their value from somewhere else (a copy made before a rotation, a pipeline variable, an app "
        "setting), or this secret was written with a value nobody has rolled out. When one of the two "
        "credentials is removed or expires, those consumers fail with AADSTS7000215 / 7000222.",
        f"Find the consumers of app {seen.app.app_id} that sign in with credential {latest} (Entra sign-in "
        "logs: service principal sign-ins, by credential key id) and point them at this secret (its "
        "versionless URI); or, if that credential's value is the right one, store it here.",
    )


def _later_day(moment: datetime, than: datetime) -> bool:
    """Later by at least one report day: within a day the report cannot order two sign-ins."""
    return moment - than >= timedelta(days=1)


def _same_day(moment: datetime, other: datetime) -> bool:
    return abs(moment - other) < timedelta(days=1)
