"""Checks of the app's client secrets: which one the stored value is, whether it is valid now, and
whether the app has any valid secret at all (7000222), or only certificates (7000215).

Pure functions of :class:`.facts.Observed`, like every check module (moved out of :mod:`.checks`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from rotation.domain import aadsts
from rotation.domain.model import PasswordCredential, Tag, format_utc
from rotation.tools.diagnose.facts import Observed
from rotation.tools.diagnose.results import Check, Status, ValueShape
from rotation.tools.diagnose.wording import credential_label, days_between, in_days, skip, stripped

#: A credential this young may not have reached every Entra replica: 4-18 s observed, up to 2 minutes
#: reported by users; the margin keeps a diagnosis run right after a rotation from blaming the value.
PROPAGATION_WINDOW: Final = timedelta(minutes=5)


def matched_credential(seen: Observed) -> PasswordCredential | None:
    """The credential the stored value belongs to: the one CredentialId names, else the only one
    whose hint matches the value's first three characters."""
    if seen.app is None or seen.value is None:
        return None
    key_id = seen.tags.get(Tag.CredentialId, "").strip()
    if key_id:
        return seen.app.credential(key_id)
    hint = stripped(seen.value)[:3]
    candidates = [c for c in seen.app.password_credentials if c.hint == hint]
    return candidates[0] if len(candidates) == 1 else None


def check_credential_match(seen: Observed, shape: ValueShape | None) -> Check:
    title = "Value belongs to a current credential of the app"
    if seen.app is None:
        return skip("credential.match", title, "the app was not read")
    if seen.value is None or shape is None or shape.empty or shape.guid:
        return skip("credential.match", title, "no secret-shaped value to match")
    app = seen.app
    hint = stripped(seen.value)[:3]
    key_id = seen.tags.get(Tag.CredentialId, "").strip()
    if key_id:
        credential = app.credential(key_id)
        if credential is None:
            return Check(
                "credential.match",
                title,
                Status.FAIL,
                f"the CredentialId tag names {key_id}, which is no longer a credential of the app",
                "The secret was rotated or deleted in Entra but not in the vault: the stored value belongs to "
                "a credential that no longer exists (AADSTS7000215).",
                "Store the value of a current credential (add a new secret if no value is at hand) and update "
                "CredentialId, or, for a managed secret, run an emergency rotation.",
            )
        if credential.hint and credential.hint != hint:
            return Check(
                "credential.match",
                title,
                Status.FAIL,
                f"CredentialId names {credential_label(credential)}, but the stored value starts "
                f"differently (hint '{hint}')",
                "Someone wrote another value into the secret without updating its tags, or the tag is stale: "
                "the value is not that credential's.",
                "Find out which value is right: store the tagged credential's value, or correct CredentialId.",
            )
        return Check("credential.match", title, Status.PASS, f"{credential_label(credential)} (by CredentialId tag)")
    candidates = [c for c in app.password_credentials if c.hint == hint]
    if len(candidates) == 1:
        return Check("credential.match", title, Status.PASS, f"{credential_label(candidates[0])} (by hint)")
    if len(candidates) > 1:
        labels = "; ".join(credential_label(c) for c in candidates)
        return Check(
            "credential.match",
            title,
            Status.WARN,
            f"{len(candidates)} credentials have hint '{hint}': {labels}",
            "The hint alone cannot tell which credential the value belongs to.",
            "Tag the secret with CredentialId=<keyId> so that checks, the inventory and rotation know.",
        )
    return Check(
        "credential.match",
        title,
        Status.FAIL,
        f"no credential of app {app.app_id} has hint '{hint}' ({len(app.password_credentials)} credential(s) checked)",
        "The value belongs to no current secret of this app: it was rotated or deleted in Entra but not in the "
        "vault, or it is another app's secret (AADSTS7000215).",
        "Store the value of one of the app's current secrets (add a new secret if none is at hand), and check "
        "that the consumer's client id is this app.",
    )


def check_credential_validity(seen: Observed, rotate_before_days: int) -> Check:
    title = "That credential is valid now"
    credential = matched_credential(seen)
    if credential is None:
        return skip("credential.validity", title, "no matching credential")
    now = seen.now
    label = credential_label(credential)
    if credential.is_expired(now):
        entry = aadsts.lookup(7000222)
        return Check(
            "credential.validity",
            title,
            Status.FAIL,
            f"{label} {in_days(credential.end, now)}",
            "The stored value's credential has expired (AADSTS7000222).",
            entry.remedy if entry else "Rotate now.",
        )
    if credential.start is not None and credential.start > now:
        return Check(
            "credential.validity",
            title,
            Status.FAIL,
            f"{label} starts only at {format_utc(credential.start)}",
            "The credential is not valid yet, so Entra rejects the value until then (AADSTS7000215).",
            "Wait for the start date, or add a secret that starts now.",
        )
    if credential.start is not None and now - credential.start < PROPAGATION_WINDOW:
        age = int((now - credential.start).total_seconds())
        return Check(
            "credential.validity",
            title,
            Status.WARN,
            f"{label} was created {age} s ago",
            "A new secret reaches Entra's replicas over seconds to about two minutes; until then some sign-ins "
            "get AADSTS7000215.",
            "Wait a few minutes and try again before changing anything.",
        )
    days = days_between(credential.end, now) if credential.end else None
    if days is not None and days <= rotate_before_days:
        return Check(
            "credential.validity",
            title,
            Status.WARN,
            f"{label} {in_days(credential.end, now)}",
            "The credential is inside its rotation window.",
            "Rotate soon; a managed secret is rotated by the next sweep.",
        )
    return Check("credential.validity", title, Status.PASS, f"{label} {in_days(credential.end, now)}")


def check_app_credentials(seen: Observed) -> Check:
    title = "The app has client secrets, and not all are expired"
    app = seen.app
    if app is None:
        return skip("app.credentials", title, "the app was not read")
    now = seen.now
    passwords = sorted(app.password_credentials, key=lambda c: c.end or datetime.max.replace(tzinfo=UTC))
    certificates = app.key_credentials_count
    listing = "; ".join(f"{credential_label(c)} {in_days(c.end, now)}" for c in passwords)
    certs_note = f"; plus {certificates} certificate(s)" if certificates else ""
    if not passwords:
        if certificates:
            return Check(
                "app.credentials",
                title,
                Status.FAIL,
                f"no client secrets, {certificates} certificate(s)",
                "The app signs in with certificates (keyCredentials), not secrets: Entra answers AADSTS7000215 "
                "to every client secret sent for it, so no stored value can work.",
                "Configure the consumer to sign in with one of the app's certificates (a client assertion, e.g. "
                "azure-identity's CertificateCredential with the certificate from Key Vault) and store that "
                f"certificate here; or, if a secret is really intended, add one (az ad app credential reset --id "
                f"{app.app_id} --append) and store its value.",
            )
        return Check(
            "app.credentials",
            title,
            Status.FAIL,
            "the app has no client secrets and no certificates",
            "Every secret of the app was removed, so no stored value can sign in (AADSTS7000215).",
            "Add a new client secret to the app and store its value (or run a rotation).",
        )
    active = [c for c in passwords if not c.is_expired(now)]
    if not active:
        entry = aadsts.lookup(7000222)
        return Check(
            "app.credentials",
            title,
            Status.FAIL,
            f"all {len(passwords)} secret(s) expired: {listing}{certs_note}",
            "Every client secret of the app has expired (AADSTS7000222).",
            entry.remedy if entry else "Rotate now.",
        )
    return Check("app.credentials", title, Status.PASS, f"{len(passwords)} secret(s): {listing}{certs_note}")
