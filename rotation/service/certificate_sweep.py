"""Find the managed certificates that need work, from list calls only (the sweep's certificate half).

A managed certificate is a Key Vault certificate whose latest version is tagged ``ProviderAddress``.
Its status is the secret rule (:func:`rotation.domain.policy.assess` over the version's attributes
and tags) plus one fact of its own: a version the rotator created (``RotationId``) whose key is not
recorded yet (no ``CredentialId``) is a rotation under way, work now. The requests carry
``kind="certificate"``, so the worker runs the certificate flow. Only with ``ROTATION_CERTIFICATES``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime

from rotation.domain import policy
from rotation.domain.errors import RotationError
from rotation.domain.model import ReconcileRequest, Tag
from rotation.domain.state import SecretStatus
from rotation.service.certificate_ports import CertificateVault
from rotation.service.sweep import ScanTally, scan_each_vault, work_requests
from rotation.settings import Settings

__all__ = ["certificate_work_requests", "scan_certificates", "status_of_certificate"]


def status_of_certificate(tags: Mapping[str, str], status: SecretStatus) -> SecretStatus:
    """``status`` (the secret rule's verdict) marked as a certificate's, with a rotation under way made
    work now."""
    status = dataclasses.replace(status, kind="certificate")
    if status.problem or not status.enabled:
        return status
    if tags.get(Tag.RotationId) and not tags.get(Tag.CredentialId):
        reason = f"rotation {tags[Tag.RotationId]} created a new version whose key is not on the app yet"
        return dataclasses.replace(status, needs_work=reason)
    return status


async def scan_certificates(
    settings: Settings,
    vaults: Mapping[str, CertificateVault],
    now: datetime,
    *,
    only: str | None = None,
    failures: dict[str, RotationError] | None = None,
    keep: Callable[[SecretStatus], bool] | None = None,
    tally: ScanTally | None = None,
) -> list[SecretStatus]:
    """Every managed certificate of every configured vault (or of ``only``), page by page, with what
    it needs; the same failure and ``keep`` rules as :func:`rotation.service.sweep.scan`."""
    chosen = [(name, v) for name, v in vaults.items() if only is None or name == only.lower()]
    counts = tally if tally is not None else ScanTally()
    found: list[SecretStatus] = []

    async def one(vault: CertificateVault) -> None:
        async for page in vault.certificate_pages():
            for version in page:
                if not version.managed:
                    continue
                status = status_of_certificate(version.tags, policy.assess(version.properties, now, settings))
                counts.count(status, keep, found)

    await scan_each_vault(chosen, one, failures, objects="certificates")
    return sorted(found, key=lambda s: (s.vault, s.name.lower()))


def certificate_work_requests(statuses: list[SecretStatus], now: datetime, *, source: str) -> list[ReconcileRequest]:
    """One certificate request per certificate that needs work."""
    return [dataclasses.replace(r, kind="certificate") for r in work_requests(statuses, now, source=source)]
