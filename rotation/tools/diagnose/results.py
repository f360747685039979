"""What a diagnosis concludes: one `Check` per question, in the order a sign-in depends on them.

Plain values only; :mod:`.render` turns them into text or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rotation.domain.model import ProbeResult
from rotation.tools.diagnose.certificate_value import StoredCertificate


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # could not run: a prerequisite is missing (no app id, the secret was not read, ...)


@dataclass(frozen=True)
class Check:
    """One check: what was expected (``title``), what was seen (``evidence``), why it matters and what to do."""

    id: str
    title: str
    status: Status
    evidence: str
    cause: str = ""
    remedy: str = ""


@dataclass(frozen=True)
class ValueShape:
    """Facts about a stored value that reveal nothing beyond what Graph already shows (the hint)."""

    length: int
    hint: str
    empty: bool
    guid: bool
    surrounding_whitespace: bool
    leading_whitespace: bool
    trailing_whitespace: bool
    trailing_newline: bool
    inner_whitespace_or_control: bool
    current_format: bool  # Entra's secrets since 2021: 40 characters with '8Q~' at positions 4-6
    shell_characters: tuple[str, ...]
    form_characters: tuple[str, ...]


@dataclass(frozen=True)
class Diagnosis:
    vault: str
    secret: str
    app_id: str | None
    app_source: str | None
    tenant_id: str | None
    tenant_source: str | None
    checks: tuple[Check, ...]
    shape: ValueShape | None = None
    probe: ProbeResult | None = None
    #: The certificate the stored value holds (public facts only), when it is one.
    certificate: StoredCertificate | None = None

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    @property
    def most_likely(self) -> Check | None:
        """The first failing check. Checks run in the order a sign-in depends on them (the secret,
        the tenant, the app, the value, its credential, ...), so the first failure is the root cause
        and later ones are usually its consequences; the probe comes last because it only confirms."""
        return next((c for c in self.checks if c.status is Status.FAIL), None)

    def counts(self) -> dict[str, int]:
        return {status.value: sum(1 for c in self.checks if c.status is status) for status in Status}
