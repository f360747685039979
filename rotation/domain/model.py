"""Plain data of the rotator: credentials, secret versions, tag names, requests, outcomes.

The rotation state parsed from tags (``ManagedSecret``) lives in :mod:`rotation.domain.state`, the
one module that reads and writes rotator tags; it is re-exported here under its old name.

Everything here is immutable and free of I/O. Datetimes are always timezone-aware UTC; a naive
datetime is a programming error and raises ``ValueError`` at construction. Secret values only ever
travel inside :class:`Sensitive`.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets as _secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, NoReturn, cast, final, get_args
from urllib.parse import urlsplit

from rotation import redact
from rotation.domain import strict_json
from rotation.domain.errors import BadRequestError, RotationError

if TYPE_CHECKING:
    # listing.py imports this module; only an annotation names it (a dataclass never resolves it).
    from rotation.domain.listing import CertificateCredential

# --------------------------------------------------------------------------------------------------
# Names and identifiers

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Azure's rule for vault names: 3-24 characters, letters, digits and hyphens, starting with a letter,
# ending with a letter or digit, no consecutive hyphens.
_VAULT_NAME_RE = re.compile(r"^(?!.*--)[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
_SECRET_NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_ROTATION_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_OPERATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

VAULT_NAME_RULE: Final = (
    "3-24 letters, digits and hyphens, starting with a letter, ending with a letter or digit, no consecutive hyphens"
)
SECRET_NAME_RULE: Final = "1-127 letters, digits and hyphens"
TENANT_RULE: Final = "a Directory (tenant) ID GUID or a verified domain such as contoso.onmicrosoft.com"


def is_guid(value: str) -> bool:
    return bool(_GUID_RE.fullmatch(value))


def is_valid_vault_name(name: str) -> bool:
    return bool(_VAULT_NAME_RE.fullmatch(name))


def is_valid_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME_RE.fullmatch(name))


def is_valid_operation_id(value: str) -> bool:
    return bool(_OPERATION_ID_RE.fullmatch(value))


def is_valid_tenant_id(value: str) -> bool:
    """A tenant GUID or a DNS domain; ``common``/``organizations`` cannot issue app-only tokens."""
    return is_guid(value) or bool(_DOMAIN_RE.fullmatch(value))


# --------------------------------------------------------------------------------------------------
# Time


def ensure_utc(value: datetime, what: str = "datetime") -> datetime:
    """Return ``value`` in UTC; reject naive datetimes, which would silently mean local time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+23:59, which a tag or a message can carry: before datetime.min in UTC.
        raise ValueError(f"{what} lies outside the years 1-9999 in UTC") from None


def _optional_utc(value: datetime | None, what: str) -> datetime | None:
    return None if value is None else ensure_utc(value, what)


def format_utc(value: datetime) -> str:
    """``2025-01-31T12:00:00Z``: the form used in tags and messages (whole seconds, like Key Vault)."""
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a zone (``Z`` or an offset) into UTC.

    Raises ``ValueError`` for anything else, including a timestamp without a zone.
    """
    parsed = datetime.fromisoformat(text.strip())
    return ensure_utc(parsed, f"timestamp {text!r}")


def from_epoch(seconds: float) -> datetime:
    """Key Vault's ``exp``/``nbf`` (seconds since 1970-01-01 UTC) as a UTC datetime; ``ValueError``
    for a number no datetime can hold."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"{seconds!r} epoch seconds is outside the range of dates") from exc


# --------------------------------------------------------------------------------------------------
# Tags: the rotation state kept on the Key Vault secret


class Tag:
    """Tag names on a managed secret's latest version.

    The first five and ``CredentialObject`` are set by the operator (``ProviderAddress``, ``CredentialId`` and
    ``ValidityPeriodDays`` match Microsoft's rotation sample); the rest are the rotator's state.
    Key Vault allows 15 tags per object, so the set is kept small: 14 at most (``Backoff``,
    ``Emergency`` and ``RetirementHeld`` only while a rotation keeps failing, an emergency is under way
    or the sign-in report holds a retirement, and never the last two together; ``CredentialObject``
    only for a service principal's password), leaving room for the owner's own tags. There is no
    "last rotated" tag: the version's ``created`` time says that.
    """

    ProviderAddress: Final = "ProviderAddress"
    TenantId: Final = "TenantId"
    ValidityPeriodDays: Final = "ValidityPeriodDays"
    RotateBeforeDays: Final = "RotateBeforeDays"
    GracePeriodHours: Final = "GracePeriodHours"
    CredentialId: Final = "CredentialId"
    RotationId: Final = "RotationId"
    RotationState: Final = "RotationState"
    RetireCredentialId: Final = "RetireCredentialId"
    RetireAfter: Final = "RetireAfter"
    FailureReason: Final = "FailureReason"
    #: ``<failures>/<next attempt UTC>`` or ``<failures>/stopped``: rotations that failed in a row.
    Backoff: Final = "Backoff"
    #: When an emergency roll was requested and not yet completed: it stays an emergency across crashes.
    Emergency: Final = "Emergency"
    #: Why the old credential stays after its grace period (the sign-in report shows it in use).
    RetirementHeld: Final = "RetirementHeld"
    #: Which object holds the password: ``application`` (absent: the app registration) or
    #: ``servicePrincipal`` (the app's service principal in the tenant). Set by the operator.
    CredentialObject: Final = "CredentialObject"

    OPERATOR: Final = (
        ProviderAddress,
        TenantId,
        ValidityPeriodDays,
        RotateBeforeDays,
        GracePeriodHours,
        CredentialObject,
    )
    ROTATOR: Final = (
        CredentialId,
        RotationId,
        RotationState,
        RetireCredentialId,
        RetireAfter,
        FailureReason,
        Backoff,
        Emergency,
        RetirementHeld,
    )
    #: Never on one version together: an emergency retires without waiting for evidence, so a hold
    #: means nothing during one (``ManagedSecret.to_tags`` drops ``RetirementHeld`` then). It keeps
    #: the most tags the rotator's scheme puts on a secret at once at ``MOST_AT_ONCE``.
    EXCLUSIVE: Final = (Emergency, RetirementHeld)
    MOST_AT_ONCE: Final = 14


#: Key Vault's limits on tags per object and on one tag value's length: "up to 15 tags, each of which
#: can have a 512-character name and a 512-character value" (About Azure Key Vault secrets; older copies
#: of that page said 256).
TAG_LIMIT: Final = 15
TAG_VALUE_MAX: Final = 512


class RotationState(StrEnum):
    """``validating`` -> ``active``, or ``failed`` after a rollback."""

    VALIDATING = "validating"
    ACTIVE = "active"
    FAILED = "failed"


# --------------------------------------------------------------------------------------------------
# Secret values


@final
class Sensitive:
    """A secret value that never shows itself by accident.

    ``repr``, ``str`` and ``format`` give ``<redacted>``; pickling is refused; only ``reveal()``
    returns the value, so every place that handles the value is greppable. Each instance registers
    itself (weakly) with :data:`rotation.redact.registry` so the logging filter can scrub it too.
    Equality is identity; compare values with :meth:`matches` (constant time).
    """

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Sensitive holds a str, not {type(value).__name__}")
        self._value = value
        redact.registry.register(self)

    def reveal(self) -> str:
        return self._value

    @property
    def hint(self) -> str:
        """The first three characters, which Graph also exposes as the credential's ``hint``."""
        return self._value[:3]

    def matches(self, other: Sensitive | str) -> bool:
        theirs = other.reveal() if isinstance(other, Sensitive) else other
        return hmac.compare_digest(self._value.encode(), theirs.encode())

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return redact.REDACTED

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return redact.REDACTED

    def __copy__(self) -> Sensitive:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Sensitive:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Sensitive value cannot be pickled; pass it explicitly with reveal()")


# --------------------------------------------------------------------------------------------------
# Entra side


ROTATOR_PREFIX: Final = "rotator:"
# The vault part is the vault's HOST (`kv-prod.vault.azure.net`, `127.0.0.1:8443` in the local cloud);
# credentials created before the host form name the configured alias (`kv-prod`), which has no dot and
# no colon (a vault name's rule), so the two forms never read as each other.
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?"
_OWNER_RE = re.compile(
    rf"^rotator:(?P<vault>{_HOST_PART}|[A-Za-z0-9-]{{3,24}})/(?P<secret>[0-9A-Za-z-]{{1,127}}):"
    r"(?P<rotation>[A-Za-z0-9-]{1,64})$",
)
_VAULT_HOST_RE = re.compile(rf"^{_HOST_PART}$")


def vault_host(url: str) -> str:
    """The host that names a vault everywhere the rotator records it (lower case; the port only when
    it is not 443): ``https://KV-Prod.vault.azure.net/`` -> ``kv-prod.vault.azure.net``,
    ``https://127.0.0.1:8443`` -> ``127.0.0.1:8443``. Never the configured alias: two deployments
    may give one alias to two vaults, but a host is one vault."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = (parts.hostname or "").lower()
    port = parts.port
    return host if port in (None, 443) else f"{host}:{port}"


def is_vault_host(text: str) -> bool:
    """A vault host as :func:`vault_host` writes it (it always has a dot or a port; an alias has neither)."""
    return bool(_VAULT_HOST_RE.fullmatch(text)) and ("." in text or ":" in text)


class RotatorOwner(NamedTuple):
    vault: str  # the vault host (or, for credentials created before the host form, the alias)
    secret: str
    rotation_id: str

    @property
    def names_host(self) -> bool:
        return is_vault_host(self.vault.lower())


def rotator_display_name(vault: str, secret: str, rotation_id: str) -> str:
    """The ``displayName`` the rotator gives each credential it creates: ``rotator:{vault host}/{secret}:{id}``.

    Recording the owner and rotation id in Entra *before* anything else happens is what lets a
    crashed rotation's credential be recognised and removed later, and a human's never touched.
    ``vault`` is the vault host (:func:`vault_host`); a bare alias is still accepted so that the old
    form can be written in tests of the migration.
    """
    vault = vault.lower()
    if not (is_vault_host(vault) or is_valid_vault_name(vault)):
        raise ValueError(f"vault {vault!r} is neither a vault host nor a vault name ({VAULT_NAME_RULE})")
    if not is_valid_secret_name(secret):
        raise ValueError(f"secret name {secret!r} is not valid: {SECRET_NAME_RULE}")
    if not _ROTATION_ID_RE.fullmatch(rotation_id):
        raise ValueError(f"rotation id {rotation_id!r} is not valid: 1-64 letters, digits and hyphens")
    return f"{ROTATOR_PREFIX}{vault}/{secret}:{rotation_id}"


# --------------------------------------------------------------------------------------------------
# The binding: which Key Vault secrets an app's owners allow to hold its credentials

#: One tag per binding on the object that holds the password: ``rotator-binding:{vault host}/{secret}``
#: on an app registration, ``rotator-sp-binding:{vault host}/{secret}`` on a service principal (lower
#: case), optionally ``#{keyId}`` naming the credential ``adopt`` identified (the one non-rotator
#: credential the rotator may later retire for that secret). Two prefixes, not one: Graph documents a
#: service principal's ``tags`` as the union of its own and its application's, so an app binding may
#: be read back on the service principal and must not authorise the service principal's passwords.
#: Longest: 19 + 48 (a 24-character vault name under the longest Azure suffix) + 1 + 127 + 1 + 36 =
#: 232 characters, inside the 256 assumed for one Graph tag.
BINDING_PREFIX: Final = "rotator-binding:"
SP_BINDING_PREFIX: Final = "rotator-sp-binding:"
BINDING_TAG_MAX: Final = 256
_BINDING_RE = re.compile(
    rf"^(?P<prefix>rotator-binding:|rotator-sp-binding:)(?P<host>{_HOST_PART})/(?P<secret>[0-9a-z-]{{1,127}})"
    r"(?:#(?P<key>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))?$"
)


def binding_prefix(on: CredentialObject = "application") -> str:
    """The prefix of the bindings that count on ``on`` (see :data:`SP_BINDING_PREFIX`)."""
    return SP_BINDING_PREFIX if on == "servicePrincipal" else BINDING_PREFIX


class Binding(NamedTuple):
    host: str
    secret: str
    adopted_key_id: str | None = None
    #: The object whose tags hold it, and whose passwords it authorises.
    on: CredentialObject = "application"

    @property
    def tag(self) -> str:
        return binding_tag(self.host, self.secret, self.adopted_key_id, on=self.on)


def binding_tag(
    host: str, secret: str, adopted_key_id: str | None = None, *, on: CredentialObject = "application"
) -> str:
    """The tag that binds ``secret`` of the vault at ``host`` to the app (``on`` its service principal)."""
    tag = f"{binding_prefix(on)}{host}/{secret}".lower()
    if adopted_key_id:
        tag += f"#{adopted_key_id.lower()}"
    if _BINDING_RE.fullmatch(tag) is None or len(tag) > BINDING_TAG_MAX:
        raise ValueError(f"{tag!r} cannot be a binding tag (host, secret name or keyId malformed, or too long)")
    return tag


def parse_binding(tag: str, *, on: CredentialObject = "application") -> Binding | None:
    """The binding a tag of an ``on`` object states, or ``None`` for any other tag (matched whole, lower
    case): a service principal's binding form on an app registration, or the app's form on a service
    principal, is no binding."""
    text = tag.strip().lower()
    match = _BINDING_RE.fullmatch(text) if text.startswith(binding_prefix(on)) else None
    if match is None:
        return None
    return Binding(match["host"], match["secret"], match["key"], on)


# --------------------------------------------------------------------------------------------------
# Which directory object holds a managed secret's password

#: ``application``: the app registration (its owners bind it in the application's ``tags``);
#: ``servicePrincipal``: the app's service principal in the tenant, whose owners (not the app's)
#: control its credentials, so its binding lives in the service principal's ``tags``.
CredentialObject = Literal["application", "servicePrincipal"]
CREDENTIAL_OBJECTS: Final[tuple[CredentialObject, ...]] = get_args(CredentialObject)
APPLICATION: Final[CredentialObject] = "application"
SERVICE_PRINCIPAL: Final[CredentialObject] = "servicePrincipal"


def parse_credential_object(text: str | None) -> CredentialObject | None:
    """The object a ``CredentialObject`` tag names (absent or empty: the application), ``None`` for
    any other value (case-insensitive: tags are typed by people)."""
    if text is None or not text.strip():
        return APPLICATION
    wanted = text.strip().lower()
    return next((kind for kind in CREDENTIAL_OBJECTS if kind.lower() == wanted), None)


def credential_object_label(kind: CredentialObject) -> str:
    """How messages name the object: "the app registration" or "the service principal"."""
    return "the service principal" if kind == SERVICE_PRINCIPAL else "the app registration"


def new_rotation_id(now: datetime) -> str:
    """A rotation id that sorts by time and is unique enough: ``20250131T120000Z-1a2b3c4d``."""
    return f"{ensure_utc(now):%Y%m%dT%H%M%SZ}-{_secrets.token_hex(4)}"


def new_operation_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PasswordCredential:
    """One client secret of an app registration, as Graph lists it (never with its value)."""

    key_id: str
    display_name: str | None = None
    hint: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _optional_utc(self.start, "start"))
        object.__setattr__(self, "end", _optional_utc(self.end, "end"))

    def is_expired(self, now: datetime) -> bool:
        return self.end is not None and self.end <= ensure_utc(now)

    def rotator_owner(self) -> RotatorOwner | None:
        """``(vault, secret, rotation_id)`` when the rotator created this credential, else ``None``."""
        if not self.display_name:
            return None
        match = _OWNER_RE.fullmatch(self.display_name)
        if match is None:
            return None
        return RotatorOwner(match["vault"], match["secret"], match["rotation"])

    def created_by_rotator_for(self, vault: str, secret: str, *, legacy_alias: str | None = None) -> bool:
        """True only for credentials this rotator created for exactly this vault host and secret.

        ``vault`` is the vault host. ``legacy_alias`` is the alias under which the old form
        (``rotator:{alias}/...``) may be recognised too; the caller passes it only when the alias
        provably names this host (:func:`legacy_alias_for`). Names are case-insensitive, so the
        comparison is too.
        """
        owner = self.rotator_owner()
        if owner is None or owner.secret.lower() != secret.lower():
            return False
        if owner.vault.lower() == vault.lower():
            return True
        return legacy_alias is not None and not owner.names_host and owner.vault.lower() == legacy_alias.lower()


def legacy_alias_for(alias: str, host: str) -> str | None:
    """The alias whose old-form records of intent (``rotator:{alias}/...``) may be taken as this
    vault's: only when the alias IS the vault's name under an Azure vault suffix
    (``kv-prod`` -> ``kv-prod.vault.azure.net``). Vault names are globally unique, so every
    deployment that wrote ``rotator:kv-prod/...`` for such an alias wrote it for this very vault; an
    alias pointing elsewhere (``kv-prod=https://other...``) could have been given to another vault by
    another deployment, so its old-form credentials are never removed."""
    first, _, suffix = host.lower().partition(".")
    if first == alias.lower() and f".{suffix}" in _VAULT_SUFFIXES:
        return alias.lower()
    return None


_VAULT_SUFFIXES: Final = (".vault.azure.net", ".vault.usgovcloudapi.net", ".vault.azure.cn")


# Audiences that include personal Microsoft accounts; such apps hold at most two passwords.
_PERSONAL_AUDIENCES: Final = frozenset({"AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"})


@dataclass(frozen=True)
class Application:
    """An app registration, with just what rotation needs; or, with ``credential_object`` set to
    ``servicePrincipal``, the app's service principal: then ``object_id``, ``display_name``, the
    password credentials and the tags (its bindings) are the service principal's own, ``app_id`` is
    still the app's, and ``addPassword``/``removePassword`` go to ``/servicePrincipals/{object_id}``.
    """

    object_id: str
    app_id: str
    display_name: str | None = None
    sign_in_audience: str | None = None
    password_credentials: tuple[PasswordCredential, ...] = ()
    key_credentials_count: int = 0
    #: Its certificates (thumbprint and dates, never key material), for the diagnosis to compare.
    key_credentials: tuple[CertificateCredential, ...] = ()
    #: The application's ``tags`` (only its owners and directory admins can write them).
    tags: tuple[str, ...] = ()
    #: The object these credentials and tags are read from (see the class docstring).
    credential_object: CredentialObject = "application"

    def __post_init__(self) -> None:
        object.__setattr__(self, "password_credentials", tuple(self.password_credentials))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "key_credentials", tuple(self.key_credentials))

    @property
    def bindings(self) -> tuple[Binding, ...]:
        """The Key Vault secrets the app's owners allow to hold its credentials (from its tags)."""
        return tuple(b for b in (parse_binding(t, on=self.credential_object) for t in self.tags) if b is not None)

    def binding_for(self, host: str, secret: str) -> Binding | None:
        """This secret's binding (the one naming an adopted keyId first), or ``None``: not bound."""
        found = [b for b in self.bindings if b.host == host.lower() and b.secret == secret.lower()]
        found.sort(key=lambda b: b.adopted_key_id is None)
        return found[0] if found else None

    def credential(self, key_id: str) -> PasswordCredential | None:
        wanted = key_id.lower()
        return next((c for c in self.password_credentials if c.key_id.lower() == wanted), None)

    @property
    def password_limit(self) -> int | None:
        """How many passwords the app may hold, when Entra limits it (2 with personal accounts)."""
        return 2 if self.sign_in_audience in _PERSONAL_AUDIENCES else None


class NewPassword(NamedTuple):
    """What ``addPassword`` returns: the credential and its value, seen exactly once."""

    credential: PasswordCredential
    secret: Sensitive


@dataclass(frozen=True)
class ProbeResult:
    """One attempt to get a client-credentials token with a secret (``TokenProbe.probe``).

    ``code`` is the AADSTS code when Entra refused; ``transient`` is the probe's own judgement that
    the failure was not about the secret (network, 5xx, throttling); ``message`` never holds a value.
    """

    ok: bool
    code: int | None = None
    transient: bool = False
    message: str = ""


class PasswordPolicy(NamedTuple):
    """The app management policy's effect on new passwords for one app."""

    blocked: bool  # passwordAddition is restricted: no new password can be added
    max_lifetime: timedelta | None  # passwordLifetime restriction, if any


# --------------------------------------------------------------------------------------------------
# Key Vault side


def _frozen_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(tags))


@dataclass(frozen=True)
class SecretVersion:
    """A Key Vault secret version's attributes and tags; never its value.

    ``version`` is ``None`` for items of the secrets list, which name no version but carry the
    latest version's attributes and tags (enough for the sweep to decide without reading values).
    """

    vault: str
    name: str
    version: str | None
    enabled: bool = True
    created: datetime | None = None
    updated: datetime | None = None
    not_before: datetime | None = None
    expires: datetime | None = None
    content_type: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Key Vault's ``managed`` flag: the secret of a Key Vault certificate (same name), which only
    #: changes with the certificate; the rotator rotates the certificate instead (issue 15).
    backs_certificate: bool = False

    def __post_init__(self) -> None:
        for name in ("created", "updated", "not_before", "expires"):
            object.__setattr__(self, name, _optional_utc(getattr(self, name), name))
        object.__setattr__(self, "tags", _frozen_tags(self.tags))

    @property
    def managed(self) -> bool:
        return Tag.ProviderAddress in self.tags

    @property
    def issued(self) -> datetime | None:
        """When this version's credential started: ``nbf`` if set, else when the version was created."""
        return self.not_before or self.created


class SecretValue(NamedTuple):
    """A version together with its value (unpacks as ``version, value``)."""

    version: SecretVersion
    value: Sensitive


# --------------------------------------------------------------------------------------------------
# Reconcile requests (queue messages)

# normal: do what is due. forced: rotate now, keep the grace period (an operator's planned roll).
# emergency: rotate now and retire the old credential as soon as the new one is proven (a leak).
Mode = Literal["normal", "forced", "emergency"]
MODES: Final[tuple[str, ...]] = get_args(Mode)
REASON_MAX: Final = 500
#: The queue message's fields, camelCase like every other JSON the rotator writes.
_REQUEST_FIELDS: Final = ("vault", "secret", "reason", "mode", "operationId", "requestedAt")
#: The snake_case names that messages written before the camelCase change carry (still in flight
#: on the queue, or in the poison queue to be replayed); read, never written.
_LEGACY_REQUEST_FIELDS: Final = {"operation_id": "operationId", "requested_at": "requestedAt"}
#: What a request names: a Key Vault secret (the default, and what a message without ``kind`` means,
#: so that messages of earlier versions still parse) or a managed Key Vault certificate (issue 15).
Kind = Literal["secret", "certificate"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)
_OPTIONAL_REQUEST_FIELDS: Final = ("kind",)


def _request_problems(vault: object, secret: object, reason: object, mode: object, operation_id: object) -> list[str]:
    problems: list[str] = []
    if not isinstance(vault, str):
        problems.append(f"'vault' must be a string, got {type(vault).__name__}")
    elif not is_valid_vault_name(vault):
        problems.append(f"'vault' {vault[:40]!r} is not a vault name ({VAULT_NAME_RULE})")
    if not isinstance(secret, str):
        problems.append(f"'secret' must be a string, got {type(secret).__name__}")
    elif not is_valid_secret_name(secret):
        problems.append(f"'secret' {secret[:40]!r} is not a secret name ({SECRET_NAME_RULE})")
    if not isinstance(reason, str):
        problems.append(f"'reason' must be a string, got {type(reason).__name__}")
    elif len(reason) > REASON_MAX:
        problems.append(f"'reason' is {len(reason)} characters; at most {REASON_MAX} are allowed")
    elif any(not ch.isprintable() for ch in reason):
        # Control characters in a reason would forge log lines.
        problems.append("'reason' must be printable text on one line")
    if not isinstance(mode, str):
        problems.append(f"'mode' must be a string, got {type(mode).__name__}")
    elif mode not in MODES:
        problems.append(f"'mode' {mode[:20]!r} must be one of {', '.join(MODES)}")
    if not isinstance(operation_id, str):
        problems.append(f"'operation_id' must be a string, got {type(operation_id).__name__}")
    elif not _OPERATION_ID_RE.fullmatch(operation_id):
        problems.append("'operation_id' must be 1-128 letters, digits and . _ : - (a GUID is typical)")
    return problems


@dataclass(frozen=True)
class ReconcileRequest:
    """ "Reconcile this secret": what every trigger puts on the queue.

    Construction validates (raising :class:`BadRequestError` listing every problem), so an invalid
    request cannot exist. The vault name is stored lower-case (vault names are case-insensitive).
    """

    vault: str
    secret: str
    reason: str
    mode: Mode
    operation_id: str
    requested_at: datetime
    kind: Kind = "secret"

    def __post_init__(self) -> None:
        problems = _request_problems(self.vault, self.secret, self.reason, self.mode, self.operation_id)
        if self.kind not in KINDS:
            problems.append(f"'kind' must be one of {', '.join(KINDS)}")
        if not isinstance(self.requested_at, datetime):
            problems.append("'requested_at' must be a datetime")
        elif self.requested_at.tzinfo is None or self.requested_at.utcoffset() is None:
            problems.append("'requested_at' must carry a time zone (UTC)")
        if problems:
            raise BadRequestError(problems)
        object.__setattr__(self, "vault", self.vault.lower())
        object.__setattr__(self, "requested_at", ensure_utc(self.requested_at))

    @classmethod
    def new(
        cls,
        vault: str,
        secret: str,
        *,
        now: datetime,
        reason: str = "",
        mode: Mode = "normal",
        operation_id: str | None = None,
        kind: Kind = "secret",
    ) -> ReconcileRequest:
        return cls(
            vault=vault,
            secret=secret,
            reason=reason,
            mode=mode,
            operation_id=operation_id or new_operation_id(),
            requested_at=now,
            kind=kind,
        )

    @property
    def emergency(self) -> bool:
        return self.mode == "emergency"

    @property
    def forced(self) -> bool:
        """A rotation was asked for now, whatever the expiry (forced or emergency)."""
        return self.mode in ("forced", "emergency")

    @property
    def lock_key(self) -> str:
        """``vault/secret``, lower-case: Key Vault names are case-insensitive, the lock must be too."""
        return f"{self.vault}/{self.secret.lower()}"

    def to_message(self) -> dict[str, str]:
        message = {
            "vault": self.vault,
            "secret": self.secret,
            "reason": self.reason,
            "mode": self.mode,
            "operationId": self.operation_id,
            "requestedAt": format_utc(self.requested_at),
        }
        if self.kind != "secret":
            message["kind"] = self.kind  # a secret's message stays what earlier versions wrote
        return message

    def to_json(self) -> str:
        return json.dumps(self.to_message(), separators=(",", ":"))

    @classmethod
    def from_message(cls, data: object) -> ReconcileRequest:
        """Strictly parse a queue message: every field present and a string, nothing else.

        The snake_case shape of earlier versions (``operation_id``, ``requested_at``) is accepted
        too, so that messages enqueued before an upgrade are still worked after it.
        """
        if not isinstance(data, Mapping):
            raise BadRequestError([f"the message must be a JSON object, got {type(data).__name__}"])
        problems: list[str] = []
        fields: dict[str, object] = {}
        for key, value in data.items():
            name = _LEGACY_REQUEST_FIELDS.get(str(key), str(key))
            if name in fields:
                problems.append(f"field {name!r} is given twice (camelCase and snake_case)")
            fields[name] = value
        unknown = sorted(str(k) for k in fields if k not in _REQUEST_FIELDS and k not in _OPTIONAL_REQUEST_FIELDS)
        if unknown:
            problems.append(f"unknown field(s) {', '.join(repr(k) for k in unknown)}")
        missing = [k for k in _REQUEST_FIELDS if k not in fields]
        if missing:
            problems.append(f"missing field(s) {', '.join(repr(k) for k in missing)}")
        if problems:
            raise BadRequestError(problems)
        problems = _request_problems(
            fields["vault"], fields["secret"], fields["reason"], fields["mode"], fields["operationId"]
        )
        raw_at = fields["requestedAt"]
        requested_at: datetime | None = None
        if not isinstance(raw_at, str):
            problems.append(f"'requestedAt' must be a string, got {type(raw_at).__name__}")
        else:
            try:
                requested_at = parse_utc(raw_at)
            except ValueError:
                problems.append("'requestedAt' must be an ISO 8601 time with a zone, like 2025-01-31T12:00:00Z")
        kind = fields.get("kind", "secret")
        if not isinstance(kind, str) or kind not in KINDS:
            problems.append(f"'kind' must be one of {', '.join(KINDS)}")
        if problems or requested_at is None:
            raise BadRequestError(problems)
        return cls(
            vault=cast(str, fields["vault"]),
            secret=cast(str, fields["secret"]),
            reason=cast(str, fields["reason"]),
            mode=cast(Mode, fields["mode"]),
            operation_id=cast(str, fields["operationId"]),
            requested_at=requested_at,
            kind=cast(Kind, kind),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ReconcileRequest:
        try:
            data = strict_json.loads(text)
        except strict_json.JsonRejected as rejected:
            raise BadRequestError([f"the message is not JSON the rotator accepts: {rejected}"]) from None
        return cls.from_message(data)


# --------------------------------------------------------------------------------------------------
# Outcome of one reconcile


class Action(StrEnum):
    """The most significant thing a reconcile did."""

    NONE = "none"
    ROTATED = "rotated"
    VALIDATED = "validated"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"
    ADOPTED = "adopted"
    CLEANED = "cleaned"  # only orphaned credentials were removed
    SKIPPED = "skipped"  # not managed, lock held elsewhere, unknown vault


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did, for logs, ``--json``, HTTP responses and tests. Holds no secret."""

    operation_id: str
    vault: str
    secret: str
    action: Action = Action.NONE
    state: RotationState | None = None
    created_key_id: str | None = None
    vault_version: str | None = None
    retired_key_ids: tuple[str, ...] = ()
    removed_orphans: tuple[str, ...] = ()
    validation_attempts: int = 0
    timings: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    error: RotationError | None = None
    #: When to look at this secret again if nothing else asks (a pending validation, a retirement
    #: whose grace period ends, the next rotation): like a Kubernetes controller's ``RequeueAfter``,
    #: computed from the state the run left recorded (`rotation.domain.policy.requeue_after`). ``None``
    #: with an error: then `retryable` says whether trying again (with the caller's back-off) can help.
    requeue_after: timedelta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "retired_key_ids", tuple(self.retired_key_ids))
        object.__setattr__(self, "removed_orphans", tuple(self.removed_orphans))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "timings", MappingProxyType(dict(self.timings)))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error else None

    @property
    def error_message(self) -> str | None:
        return self.error.message if self.error else None

    @property
    def retryable(self) -> bool:
        """Whether trying the same request again can help (``False`` on success: nothing to retry)."""
        return self.error is not None and self.error.retryable

    def with_error(self, error: RotationError) -> Outcome:
        return replace(self, error=error)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable. Free text is passed through the redaction registry once more."""
        scrub = redact.registry.scrub
        return {
            "operationId": self.operation_id,
            "vault": self.vault,
            "secret": self.secret,
            "action": self.action.value,
            "state": self.state.value if self.state else None,
            "ok": self.ok,
            "createdKeyId": self.created_key_id,
            "vaultVersion": self.vault_version,
            "retiredKeyIds": list(self.retired_key_ids),
            "removedOrphans": list(self.removed_orphans),
            "validationAttempts": self.validation_attempts,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "requeueAfterSeconds": None if self.requeue_after is None else round(self.requeue_after.total_seconds()),
            "warnings": [scrub(w) for w in self.warnings],
            "error": (
                None
                if self.error_code is None
                else {"code": self.error_code, "message": scrub(self.error_message or "")}
            ),
        }


# --------------------------------------------------------------------------------------------------
# Moved to rotation.domain.state (which imports this module): resolved lazily so that
# `from rotation.domain.model import ManagedSecret` keeps working without an import cycle.

_MOVED_TO_STATE: Final = frozenset({"ManagedSecret", "limit_tag_value"})

if TYPE_CHECKING:
    from rotation.domain.state import ManagedSecret as ManagedSecret
    from rotation.domain.state import limit_tag_value as limit_tag_value
else:

    def __getattr__(name: str) -> object:
        if name in _MOVED_TO_STATE:
            from rotation.domain import state

            return getattr(state, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
