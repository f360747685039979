"""Environment (app settings) -> typed, validated :class:`Settings`.

Every bad value produces exactly one line that names the variable and says what is expected; all
lines are collected and raised together as one :class:`SettingsError`. A variable that is set but
empty counts as unset (Azure portals and ``local.settings.json`` often carry empty placeholders).

Per-secret overrides come from tags (:meth:`Settings.policy_for`). A bad *numeric* tag does not stop
rotation: it falls back to the setting and returns a warning, because refusing to rotate would let
the secret expire, which is worse than rotating with the default lifetime. A bad ``TenantId`` tag
does raise (:class:`TagError`): falling back to another tenant would probe the wrong directory.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeVar
from urllib.parse import urlsplit

from rotation.domain.errors import SettingsError, TagError, UnknownVaultError
from rotation.domain.evidence import EvidenceMode
from rotation.domain.expiry import DEFAULT_WINDOWS, parse_windows
from rotation.domain.model import (
    TENANT_RULE,
    VAULT_NAME_RULE,
    Tag,
    is_valid_tenant_id,
    is_valid_vault_name,
    legacy_alias_for,
    vault_host,
)

DEFAULT_GRAPH_URL: Final = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
VAULT_DNS_SUFFIX: Final = ".vault.azure.net"

# Where Azure's clouds (public, US Government, China) serve the three services the rotator talks to.
# New secret values are sent to the authority (token requests) and written to vaults, and Graph mints
# credentials: a mistyped or planted endpoint would receive them. Anything else must be loopback (the
# local cloud) or named in ROTATION_ALLOWED_HOSTS (e.g. Azure Stack Hub).
AUTHORITY_HOSTS: Final = frozenset({"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"})
GRAPH_HOSTS: Final = frozenset(
    {"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}
)
VAULT_HOST_SUFFIXES: Final = (".vault.azure.net", ".vault.usgovcloudapi.net", ".vault.azure.cn")
ALLOWED_HOSTS_ENV: Final = "ROTATION_ALLOWED_HOSTS"
# Tenants a secret's TenantId tag may name (comma list); unset: only ROTATION_TENANT_ID, the home tenant.
ALLOWED_TENANTS_ENV: Final = "ROTATION_ALLOWED_TENANTS"


@dataclass(frozen=True)
class IntSetting:
    """An integer setting: its variable, default and inclusive range, with the unit for messages."""

    env: str
    default: int
    low: int
    high: int
    unit: str

    def describe(self) -> str:
        return f"a whole number of {self.unit} from {self.low} to {self.high} (default {self.default})"


VALIDITY_DAYS: Final = IntSetting("ROTATION_VALIDITY_DAYS", 90, 1, 730, "days")
ROTATE_BEFORE_DAYS: Final = IntSetting("ROTATION_ROTATE_BEFORE_DAYS", 30, 0, 365, "days")
GRACE_HOURS: Final = IntSetting("ROTATION_GRACE_HOURS", 24, 0, 720, "hours")
VALIDATION_DEADLINE: Final = IntSetting("ROTATION_VALIDATION_DEADLINE_SECONDS", 180, 5, 600, "seconds")
VALIDATION_SUCCESSES: Final = IntSetting("ROTATION_VALIDATION_SUCCESSES", 3, 1, 20, "successes")
ORPHAN_MARGIN: Final = IntSetting("ROTATION_ORPHAN_MARGIN_MINUTES", 60, 0, 10080, "minutes")
# A Consumption-plan invocation lives at most 10 minutes, so a longer retry budget could never be spent.
THROTTLE_RETRY: Final = IntSetting("ROTATION_THROTTLE_RETRY_SECONDS", 120, 0, 600, "seconds")
SWEEP_CONCURRENCY: Final = IntSetting("ROTATION_SWEEP_CONCURRENCY", 4, 1, 64, "parallel reconciles")
EXPIRY_ALERT_DAYS: Final = IntSetting("ROTATION_EXPIRY_ALERT_DAYS", 14, 0, 365, "days")
#: How long the sign-in report must show an old credential unused before it is retired (on evidence).
EVIDENCE_QUIET_HOURS: Final = IntSetting("ROTATION_EVIDENCE_QUIET_HOURS", 72, 0, 2160, "hours")

_INT_SETTINGS: Final = (
    VALIDITY_DAYS,
    ROTATE_BEFORE_DAYS,
    GRACE_HOURS,
    VALIDATION_DEADLINE,
    VALIDATION_SUCCESSES,
    ORPHAN_MARGIN,
    THROTTLE_RETRY,
    SWEEP_CONCURRENCY,
    EXPIRY_ALERT_DAYS,
    EVIDENCE_QUIET_HOURS,
)

DEFAULT_SCHEDULE: Final = "0 0 * * * *"
#: The expiry notices' timer: once a day, 06:00 UTC (the window rule assumes one run per UTC day).
DEFAULT_EXPIRY_SCHEDULE: Final = "0 0 6 * * *"
EXPIRY_SCHEDULE_ENV: Final = "ROTATION_EXPIRY_SCHEDULE"
EXPIRY_WINDOWS_ENV: Final = "ROTATION_EXPIRY_WINDOWS_DAYS"
EVIDENCE_ENV: Final = "ROTATION_RETIREMENT_EVIDENCE"
EVENTS_TOPIC_ENV: Final = "ROTATION_EVENTS_TOPIC"
#: Whether managed Key Vault certificates are rotated too (issue 15); off unless the deployment granted
#: the two extra Key Vault roles that needs (see ``Settings.certificates``).
CERTIFICATES_ENV: Final = "ROTATION_CERTIFICATES"
#: Event Grid topic endpoints of the Azure clouds end so (``https://{topic}.{region}-1.eventgrid.azure.net/api/events``).
EVENT_GRID_SUFFIXES: Final = (".eventgrid.azure.net", ".eventgrid.azure.us", ".eventgrid.chinacloudapi.cn")
DEFAULT_OPERATOR_ROLE: Final = "Rotation.Operator"
DEFAULT_READER_ROLE: Final = "Rotation.Reader"
#: Operators' bearer tokens must be for this API: its client id and/or identifier URI, comma-separated.
API_AUDIENCE_ENV: Final = "ROTATION_API_AUDIENCE"

#: Every variable the rotator reads (``local.settings.sample.json`` lists the same).
KNOWN_VARIABLES: Final = frozenset(
    {
        "ROTATION_VAULTS",
        "ROTATION_TENANT_ID",
        "ROTATION_GRAPH_URL",
        "AZURE_AUTHORITY_HOST",
        "ROTATION_SCHEDULE",
        EXPIRY_SCHEDULE_ENV,
        EXPIRY_WINDOWS_ENV,
        EVIDENCE_ENV,
        EVENTS_TOPIC_ENV,
        CERTIFICATES_ENV,
        "ROTATION_OPERATOR_ROLE",
        "ROTATION_READER_ROLE",
        API_AUDIENCE_ENV,
        ALLOWED_HOSTS_ENV,
        ALLOWED_TENANTS_ENV,
        *(s.env for s in _INT_SETTINGS),
    }
)

_NCRONTAB_FIELD_RE = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_ROLE_RE = re.compile(r"^\S{1,120}$")
_HOST_RE = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _show(value: str) -> str:
    """Quote a bad value for a message, shortened so one problem stays one line."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine: ``localhost``, 127.0.0.0/8 or ``::1``.

    Only there may the rotator relax checks meant for the public cloud: Key Vault's challenge
    resource check (``verify_challenge_resource=False``) and MSAL's instance discovery
    (``disable_instance_discovery=True``). Anything unparsable is not loopback.
    """
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _https_url(value: str, *, bare_host_ok: bool = False) -> tuple[str | None, str | None]:
    """Validate an https URL; return ``(normalised, None)`` or ``(None, what is wrong)``.

    ``bare_host_ok`` mirrors azure-identity, which reads ``AZURE_AUTHORITY_HOST=login.example``
    as ``https://login.example``.
    """
    text = value.strip()
    if bare_host_ok and "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        return None, f"is not a valid URL ({exc})"
    if parts.scheme != "https":
        return None, "must be an https:// URL (Azure clients refuse plain http)"
    if not parts.hostname:
        return None, "has no host"
    if parts.query or parts.fragment or parts.username or parts.password:
        return None, "must not carry a query, fragment or credentials"
    if port is not None and not 1 <= port <= 65535:
        return None, "has a port outside 1-65535"
    return text.rstrip("/"), None


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _endpoint_problem(
    url: str, service: str, known: str, in_cloud: Callable[[str], bool], allowed: frozenset[str]
) -> str | None:
    """Why ``url`` may not be used for ``service``, or ``None`` when it is an Azure cloud's, loopback or allowed."""
    host = _host_of(url)
    if in_cloud(host) or is_loopback(url) or host in allowed:
        return None
    article = "an" if service[:1].upper() in "AEIOU" else "a"
    return (
        f"host {host!r} is not {article} {service} endpoint of an Azure cloud ({known}); the rotator would send "
        f"credentials there. Use the cloud's endpoint, a loopback address for the local cloud, or add the "
        f"host to {ALLOWED_HOSTS_ENV} if it really serves {service}"
    )


def _parse_allowed_hosts(value: str | None, problems: list[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    hosts = [h.strip().lower() for h in value.split(",") if h.strip()]
    bad = [h for h in hosts if not _HOST_RE.fullmatch(h)]
    if bad:
        problems.append(
            f"{ALLOWED_HOSTS_ENV}={_show(value)}: {_show(bad[0])} is not a host name; expected comma-separated "
            "exact host names (no scheme, port or wildcard), e.g. 'login.azurestack.contoso.com'"
        )
        return frozenset()
    return frozenset(hosts)


_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _audiences_check(value: str) -> tuple[tuple[str, ...] | None, str | None]:
    """``ROTATION_API_AUDIENCE``: the API's client id (a GUID) and/or identifier URIs (``api://…``
    or https), comma-separated; what an access token's ``aud`` is compared with, exactly."""
    items = tuple(item.strip() for item in value.split(","))
    for item in items:
        if _GUID_RE.fullmatch(item):
            continue
        if re.fullmatch(r"(api|https)://[^\s,/]+(/[^\s,]*)?", item) and len(item) <= 255:
            continue
        return None, (
            f"{_show(item)} is not an audience; expected the rotator API's client id (a GUID) and/or "
            "identifier URI (api://… or https://…), comma-separated"
        )
    return items, None


@dataclass(frozen=True)
class SecretPolicy:
    """The effective rotation policy of one secret: settings overridden by its tags.

    ``tenant_id`` is ``None`` when neither the ``TenantId`` tag nor ``ROTATION_TENANT_ID`` names
    one; :meth:`require_tenant` turns that into an actionable error. ``warnings`` lists tag values
    that were ignored.
    """

    validity_days: int
    rotate_before_days: int
    grace_hours: int
    tenant_id: str | None
    warnings: tuple[str, ...] = ()

    def require_tenant(self, vault: str, secret: str) -> str:
        if self.tenant_id is None:
            raise TagError(
                vault,
                secret,
                ["no tenant: set a TenantId tag on the secret or the ROTATION_TENANT_ID setting"],
            )
        return self.tenant_id


def fallback_rotate_before(validity_days: int) -> int:
    """The rotation window used when the configured one is not shorter than the lifetime.

    A window at least as long as the lifetime would make a fresh credential due again at once and
    rotate on every sweep. A third of the lifetime matches Microsoft's defaults (30 of 90 days).
    """
    return validity_days // 3


_T = TypeVar("_T")


@dataclass(frozen=True)
class Settings:
    """All settings of the rotator, validated. Build with :meth:`from_env`."""

    vaults: Mapping[str, str]
    tenant_id: str | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    authority_host: str = DEFAULT_AUTHORITY_HOST
    validity_days: int = VALIDITY_DAYS.default
    rotate_before_days: int = ROTATE_BEFORE_DAYS.default
    grace_hours: int = GRACE_HOURS.default
    validation_deadline_seconds: int = VALIDATION_DEADLINE.default
    validation_successes: int = VALIDATION_SUCCESSES.default
    orphan_margin_minutes: int = ORPHAN_MARGIN.default
    throttle_retry_seconds: int = THROTTLE_RETRY.default
    schedule: str = DEFAULT_SCHEDULE
    operator_role: str = DEFAULT_OPERATOR_ROLE
    reader_role: str = DEFAULT_READER_ROLE
    #: The audiences an operator's token may name (``ROTATION_API_AUDIENCE``); empty: operator
    #: authentication is not configured and the HTTP routes refuse every request.
    api_audiences: tuple[str, ...] = ()
    sweep_concurrency: int = SWEEP_CONCURRENCY.default
    expiry_alert_days: int = EXPIRY_ALERT_DAYS.default
    #: The daily expiry notices' NCRONTAB schedule (``ROTATION_EXPIRY_SCHEDULE``).
    expiry_schedule: str = DEFAULT_EXPIRY_SCHEDULE
    #: Days before expiry at which a credential gets a notice, descending (``ROTATION_EXPIRY_WINDOWS_DAYS``).
    expiry_windows_days: tuple[int, ...] = DEFAULT_WINDOWS
    #: Whether retirement waits for the sign-in report (``ROTATION_RETIREMENT_EVIDENCE``).
    retirement_evidence: EvidenceMode = EvidenceMode.AUTO
    evidence_quiet_hours: int = EVIDENCE_QUIET_HOURS.default
    #: The Event Grid topic lifecycle events are published to (``ROTATION_EVENTS_TOPIC``); ``None``: none.
    events_topic: str | None = None
    #: Tenants a ``TenantId`` tag may name (lower case); empty: only ``tenant_id``.
    allowed_tenants: frozenset[str] = frozenset()
    #: The rotator's own client id (``AZURE_CLIENT_ID``), whose app it never rotates.
    own_client_id: str | None = None
    #: Whether managed certificates are rotated (``ROTATION_CERTIFICATES``). Off by default: rotating them
    #: needs "Key Vault Certificates Officer" and "Key Vault Crypto User" on each vault, which a deployment
    #: made before them lacks; on, every sweep would list certificates and fail with 403 until granted.
    certificates: bool = False
    #: Not errors: e.g. a ``ROTATION_*`` variable nobody reads (a likely typo).
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vaults", MappingProxyType(dict(self.vaults)))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raise one :class:`SettingsError` listing every problem."""
        source = os.environ if env is None else env
        problems: list[str] = []
        failed: set[str] = set()  # variables already reported; cross-checks skip them

        def raw(name: str) -> str | None:
            value = source.get(name)
            if value is None or not value.strip():
                return None
            return value.strip()

        def parse(name: str, default: _T, check: Callable[[str], tuple[_T | None, str | None]]) -> _T:
            value = raw(name)
            if value is None:
                return default
            parsed, problem = check(value)
            if problem is not None or parsed is None:
                problems.append(f"{name}={_show(value)}: {problem}")
                failed.add(name)
                return default
            return parsed

        allowed_hosts = _parse_allowed_hosts(raw(ALLOWED_HOSTS_ENV), problems)
        vaults = _parse_vaults(raw("ROTATION_VAULTS"), problems, allowed_hosts)

        def tenant(value: str) -> tuple[str | None, str | None]:
            if is_valid_tenant_id(value):
                return value, None
            return None, f"expected {TENANT_RULE}"

        tenant_id = parse("ROTATION_TENANT_ID", None, tenant)

        def url(value: str) -> tuple[str | None, str | None]:
            normalised, problem = _https_url(value)
            if normalised is not None:
                known = ", ".join(sorted(GRAPH_HOSTS))
                problem = _endpoint_problem(
                    normalised, "Microsoft Graph", known, GRAPH_HOSTS.__contains__, allowed_hosts
                )
            return normalised, problem

        def authority(value: str) -> tuple[str | None, str | None]:
            normalised, problem = _https_url(value, bare_host_ok=True)
            if problem:
                return None, f"{problem}; expected e.g. {DEFAULT_AUTHORITY_HOST}"
            assert normalised is not None
            known = ", ".join(sorted(AUTHORITY_HOSTS))
            in_cloud = AUTHORITY_HOSTS.__contains__
            return normalised, _endpoint_problem(normalised, "Entra ID authority", known, in_cloud, allowed_hosts)

        graph_url = parse("ROTATION_GRAPH_URL", DEFAULT_GRAPH_URL, url)
        authority_host = parse("AZURE_AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST, authority)

        ints: dict[str, int] = {}
        for spec in _INT_SETTINGS:
            ints[spec.env] = parse(spec.env, spec.default, _int_check(spec))

        schedule = parse("ROTATION_SCHEDULE", DEFAULT_SCHEDULE, _schedule_check)
        expiry_schedule = parse(EXPIRY_SCHEDULE_ENV, DEFAULT_EXPIRY_SCHEDULE, _schedule_check)
        expiry_windows = parse(EXPIRY_WINDOWS_ENV, DEFAULT_WINDOWS, parse_windows)

        def evidence_mode(value: str) -> tuple[EvidenceMode | None, str | None]:
            try:
                return EvidenceMode(value.strip().lower()), None
            except ValueError:
                return None, "expected off, auto or required"

        evidence = parse(EVIDENCE_ENV, EvidenceMode.AUTO, evidence_mode)

        def topic(value: str) -> tuple[str | None, str | None]:
            normalised, problem = _https_url(value)
            if normalised is not None:
                known = ", ".join(f"*{suffix}" for suffix in EVENT_GRID_SUFFIXES)
                problem = _endpoint_problem(
                    normalised,
                    "Event Grid topic",
                    known,
                    lambda host: host.endswith(EVENT_GRID_SUFFIXES),
                    allowed_hosts,
                )
            return normalised, problem

        events_topic = parse(EVENTS_TOPIC_ENV, None, topic)

        def flag(value: str) -> tuple[bool | None, str | None]:
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True, None
            if lowered in ("false", "0", "no", "off"):
                return False, None
            return None, "expected true or false"

        certificates = parse(CERTIFICATES_ENV, False, flag)

        def role(value: str) -> tuple[str | None, str | None]:
            if _ROLE_RE.fullmatch(value):
                return value, None
            return None, "expected an app role value without spaces, e.g. Rotation.Operator"

        operator_role = parse("ROTATION_OPERATOR_ROLE", DEFAULT_OPERATOR_ROLE, role)
        reader_role = parse("ROTATION_READER_ROLE", DEFAULT_READER_ROLE, role)
        no_audiences: tuple[str, ...] = ()
        api_audiences = parse(API_AUDIENCE_ENV, no_audiences, _audiences_check)

        allowed_tenants: frozenset[str] = frozenset()
        tenants_raw = raw(ALLOWED_TENANTS_ENV)
        if tenants_raw is not None:
            listed = [t.strip() for t in tenants_raw.split(",") if t.strip()]
            bad_tenants = [t for t in listed if not is_valid_tenant_id(t)]
            if bad_tenants:
                problems.append(
                    f"{ALLOWED_TENANTS_ENV}={_show(tenants_raw)}: {_show(bad_tenants[0])} is not {TENANT_RULE}; "
                    "expected a comma-separated list of tenants"
                )
            allowed_tenants = frozenset(t.lower() for t in listed)
        own_client_id = (raw("AZURE_CLIENT_ID") or "").lower() or None

        validity = ints[VALIDITY_DAYS.env]
        rotate_before = ints[ROTATE_BEFORE_DAYS.env]
        if rotate_before >= validity and not failed & {VALIDITY_DAYS.env, ROTATE_BEFORE_DAYS.env}:
            problems.append(
                f"{ROTATE_BEFORE_DAYS.env}={rotate_before}: must be less than {VALIDITY_DAYS.env} "
                f"({validity}), or every fresh credential would be due again at once"
            )

        margin = ints[ORPHAN_MARGIN.env]
        minimum = orphan_margin_minimum(ints[VALIDATION_DEADLINE.env], ints[THROTTLE_RETRY.env])
        inputs = {ORPHAN_MARGIN.env, VALIDATION_DEADLINE.env, THROTTLE_RETRY.env}
        if margin != 0 and margin < minimum and not failed & inputs:
            problems.append(
                f"{ORPHAN_MARGIN.env}={margin}: must be 0 (remove at once; only safe while the lock holds) "
                f"or at least {minimum} minutes (validation deadline plus throttle retry), so a credential "
                "another worker is still recording is not taken for an orphan"
            )

        if problems:
            raise SettingsError(problems)

        assert vaults is not None  # _parse_vaults reported a problem otherwise
        unknown = sorted(k for k in source if k.startswith("ROTATION_") and k not in KNOWN_VARIABLES)
        warnings = tuple(f"{name} is set but not a rotator setting (a typo?)" for name in unknown)
        return cls(
            vaults=vaults,
            tenant_id=tenant_id,
            graph_url=graph_url,
            authority_host=authority_host,
            validity_days=validity,
            rotate_before_days=rotate_before,
            grace_hours=ints[GRACE_HOURS.env],
            validation_deadline_seconds=ints[VALIDATION_DEADLINE.env],
            validation_successes=ints[VALIDATION_SUCCESSES.env],
            orphan_margin_minutes=margin,
            throttle_retry_seconds=ints[THROTTLE_RETRY.env],
            schedule=schedule,
            operator_role=operator_role,
            reader_role=reader_role,
            api_audiences=api_audiences,
            sweep_concurrency=ints[SWEEP_CONCURRENCY.env],
            expiry_alert_days=ints[EXPIRY_ALERT_DAYS.env],
            expiry_schedule=expiry_schedule,
            expiry_windows_days=expiry_windows,
            retirement_evidence=evidence,
            evidence_quiet_hours=ints[EVIDENCE_QUIET_HOURS.env],
            events_topic=events_topic,
            allowed_tenants=allowed_tenants,
            own_client_id=own_client_id,
            certificates=certificates,
            warnings=warnings,
        )

    # ------------------------------------------------------------------ queries

    def vault_url(self, name: str) -> str:
        """The URL of a configured vault (names are case-insensitive), or :class:`UnknownVaultError`."""
        try:
            return self.vaults[name.lower()]
        except KeyError:
            raise UnknownVaultError(name, self.vaults) from None

    def vault_host(self, name: str) -> str:
        """The host of a configured vault (what bindings and records of intent name), never its alias."""
        return vault_host(self.vault_url(name))

    def legacy_alias(self, name: str) -> str | None:
        """The alias under which this vault's old-form records of intent are recognised, if any."""
        return legacy_alias_for(name, self.vault_host(name))

    def tenant_allowed(self, tenant: str) -> bool:
        """Whether a ``TenantId`` tag may name ``tenant``: listed in ROTATION_ALLOWED_TENANTS, or the home
        tenant when that setting is unset."""
        allowed = self.allowed_tenants or frozenset({self.tenant_id.lower()} if self.tenant_id else ())
        return tenant.lower() in allowed

    def policy_for(self, tags: Mapping[str, str], secret: str = "", vault: str = "") -> SecretPolicy:
        """The effective policy of the secret carrying ``tags`` (``secret``/``vault`` name it in messages).

        Numeric tags out of range or unparsable fall back to the setting with a warning; so does a
        ``RotateBeforeDays`` not shorter than the lifetime (see :func:`fallback_rotate_before`).
        A malformed ``TenantId`` raises :class:`TagError`.
        """
        warnings: list[str] = []
        label = f"secret '{secret}'" if secret else "the secret"

        def number(tag: str, spec: IntSetting, default: int) -> int:
            value = tags.get(tag)
            if value is None or not value.strip():
                return default
            try:
                parsed = int(value.strip())
            except ValueError:
                parsed = None
            if parsed is None or not spec.low <= parsed <= spec.high:
                warnings.append(
                    f"tag {tag}={_show(value)} on {label} ignored: expected a whole number of {spec.unit} "
                    f"from {spec.low} to {spec.high}; using {default}"
                )
                return default
            return parsed

        validity = number(Tag.ValidityPeriodDays, VALIDITY_DAYS, self.validity_days)
        rotate_before = number(Tag.RotateBeforeDays, ROTATE_BEFORE_DAYS, self.rotate_before_days)
        grace = number(Tag.GracePeriodHours, GRACE_HOURS, self.grace_hours)
        if rotate_before >= validity:
            fallback = fallback_rotate_before(validity)
            warnings.append(
                f"rotate-before window of {rotate_before} days on {label} is not shorter than its "
                f"{validity}-day lifetime; using {fallback} days"
            )
            rotate_before = fallback

        tenant = tags.get(Tag.TenantId)
        tenant_id = self.tenant_id
        if tenant is not None and tenant.strip():
            tenant = tenant.strip()
            if not is_valid_tenant_id(tenant):
                raise TagError(vault or "?", secret or "?", [f"TenantId={_show(tenant)} is not {TENANT_RULE}"])
            if not self.tenant_allowed(tenant):
                home = self.tenant_id or "(none set)"
                allowed = ", ".join(sorted(self.allowed_tenants)) or f"only the home tenant {home}"
                raise TagError(
                    vault or "?",
                    secret or "?",
                    [
                        f"TenantId={_show(tenant)} is not an allowed tenant ({allowed}); a tenant is honoured only "
                        f"when {ALLOWED_TENANTS_ENV} lists it"
                    ],
                )
            tenant_id = tenant
        return SecretPolicy(validity, rotate_before, grace, tenant_id, tuple(warnings))

    @property
    def orphan_margin_seconds(self) -> float:
        return self.orphan_margin_minutes * 60.0


def orphan_margin_minimum(validation_deadline_seconds: int, throttle_retry_seconds: int) -> int:
    """The smallest non-zero orphan margin, in whole minutes.

    A credential is unreferenced by any tag from ``addPassword`` until the Key Vault write records
    it, which can take as long as the throttle retry budget; a worker that lost its lock may then
    still be validating. A margin covering both keeps a live rotation's credential from being
    mistaken for an orphan even without the lock. ``0`` stays allowed for the local cloud and tests.
    """
    return max(1, math.ceil((validation_deadline_seconds + throttle_retry_seconds) / 60))


def _int_check(spec: IntSetting) -> Callable[[str], tuple[int | None, str | None]]:
    def check(value: str) -> tuple[int | None, str | None]:
        try:
            parsed = int(value)
        except ValueError:
            return None, f"expected {spec.describe()}"
        if not spec.low <= parsed <= spec.high:
            return None, f"out of range; expected {spec.describe()}"
        return parsed, None

    return check


def _schedule_check(value: str) -> tuple[str | None, str | None]:
    fields = value.split()
    if len(fields) != 6:
        return None, (
            f"has {len(fields)} field(s); expected an NCRONTAB expression with 6 fields "
            "'{second} {minute} {hour} {day} {month} {day-of-week}', e.g. '0 0 * * * *' (hourly)"
        )
    bad = [f for f in fields if not _NCRONTAB_FIELD_RE.fullmatch(f)]
    if bad:
        return None, f"field {bad[0]!r} has characters NCRONTAB does not allow"
    return " ".join(fields), None


def _in_vault_cloud(host: str) -> bool:
    return any(host.endswith(suffix) and len(host) > len(suffix) for suffix in VAULT_HOST_SUFFIXES)


def _parse_vaults(value: str | None, problems: list[str], allowed_hosts: frozenset[str]) -> dict[str, str] | None:
    name = "ROTATION_VAULTS"
    expected = "expected comma-separated 'name' or 'name=https://host[:port]' entries"
    if value is None:
        problems.append(f"{name} is required: {expected}, e.g. 'kv-prod-1,kv-prod-2'")
        return None
    vaults: dict[str, str] = {}
    entry_problems: list[str] = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        vault, sep, url = (part.strip() for part in entry.partition("="))
        if not is_valid_vault_name(vault):
            entry_problems.append(f"{_show(vault)} is not a vault name ({VAULT_NAME_RULE})")
            continue
        key = vault.lower()
        if key in vaults:
            entry_problems.append(f"vault {vault!r} is listed twice")
            continue
        if sep:
            normalised, problem = _https_url(url)
            if problem is not None or normalised is None:
                entry_problems.append(f"URL of {vault!r} {problem or 'is missing'}")
                continue
            if urlsplit(normalised).path not in ("", "/"):
                entry_problems.append(f"URL of {vault!r} must be the vault's base URL, without a path")
                continue
            known = ", ".join(f"*{s}" for s in VAULT_HOST_SUFFIXES)
            problem = _endpoint_problem(normalised, "Key Vault", known, _in_vault_cloud, allowed_hosts)
            if problem is not None:
                entry_problems.append(f"URL of {vault!r}: {problem}")
                continue
            vaults[key] = normalised
        else:
            vaults[key] = f"https://{key}{VAULT_DNS_SUFFIX}"
    if entry_problems:
        # Still one line for the variable: every entry problem of ROTATION_VAULTS joined.
        problems.append(f"{name}={_show(value)}: {'; '.join(entry_problems)}")
        return None
    if not vaults:
        problems.append(f"{name} lists no vault: {expected}")
        return None
    return vaults
