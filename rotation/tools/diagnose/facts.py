"""What the gathering observed, as plain facts for the pure checks to judge.

:mod:`.gather` fills an :class:`Observed` (the only I/O), :mod:`.checks` reads it and never does I/O,
so every judgement is unit-testable with a hand-made ``Observed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from rotation.domain.listing import DeletedSecretInfo
from rotation.domain.model import (
    APPLICATION,
    Application,
    CredentialObject,
    ProbeResult,
    SecretVersion,
    Sensitive,
    is_valid_tenant_id,
)

if TYPE_CHECKING:
    from rotation.settings import Settings

#: Aliases that name no tenant: app-only (client credentials) tokens need a specific one (AADSTS50059).
APP_ONLY_FORBIDDEN_TENANTS: Final = frozenset({"common", "organizations", "consumers"})


class AppLookup(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    OBJECT_ID = "object_id"  # the id given is the app's object id, not its appId
    DENIED = "denied"
    OTHER_TENANT = "other_tenant"
    ERROR = "error"
    NOT_TRIED = "not_tried"


@dataclass(frozen=True)
class TenantLookup:
    """What the tenant's OpenID configuration document said: ``exists`` is None when it could not tell."""

    exists: bool | None
    tenant_id: str | None = None
    code: int | None = None
    detail: str = ""
    #: Entra's clock (the answer's ``Date`` header): what a client assertion's nbf/exp are judged by.
    server_time: datetime | None = None
    #: This machine's clock when that answer arrived.
    local_time: datetime | None = None


@dataclass
class Observed:
    settings: Settings
    vault: str
    secret: str
    now: datetime
    version: SecretVersion | None = None
    value: Sensitive | None = None
    read_problem: str | None = None
    deleted: DeletedSecretInfo | None = None
    deleted_problem: str | None = None
    versions: list[SecretVersion] = field(default_factory=list)
    app_id: str | None = None
    app_source: str | None = None
    tenant_id: str | None = None
    tenant_source: str | None = None
    tenant: TenantLookup | None = None
    app_lookup: AppLookup = AppLookup.NOT_TRIED
    app: Application | None = None
    app_problem: str | None = None
    # Graph's credential sign-in report for the app (issue 13): keyId -> last sign-in (day-granular,
    # at least a day late); ``None`` with ``sign_ins_read`` when Graph will not show it.
    sign_ins_read: bool = False
    sign_ins: dict[str, datetime | None] | None = None
    sign_ins_problem: str | None = None
    probe_requested: bool = False
    probe: ProbeResult | None = None
    #: Where the secret's password lives (its ``CredentialObject`` tag): with ``servicePrincipal``,
    #: ``app`` is the app's service principal as read, its passwords and tags (its binding) included.
    credential_object: CredentialObject = APPLICATION
    #: The secret names no object (no ``CredentialObject`` tag) and no password of the app has its
    #: value's hint, but one of the app's service principal has: ``app`` is that service principal.
    found_on_service_principal: bool = False

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.version.tags) if self.version else {}

    @property
    def tenant_usable(self) -> bool:
        """Whether the tenant id is one Entra can be asked about (and sign a client in to)."""
        tenant = self.tenant_id
        return bool(tenant and is_valid_tenant_id(tenant) and tenant.lower() not in APP_ONLY_FORBIDDEN_TENANTS)
