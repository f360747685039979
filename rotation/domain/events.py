"""Key Vault events (Event Grid schema or CloudEvents schema) -> what to reconcile.

Events are hints, never the source of truth: the reconciler re-reads the secret. So parsing never
raises; it returns a :class:`KeyVaultEvent` for ``SecretNearExpiry``/``SecretExpired``, an
:class:`Ignored` for everything else (notably ``SecretNewVersionCreated``, which the rotator's own
writes fire: reacting to it would loop), or a :class:`MalformedEvent` saying what is wrong.

Shape (both schemas carry the same ``data``): ``Id`` (secret id URL with version), ``VaultName``,
``ObjectType`` (``Secret``), ``ObjectName``, ``Version``, ``NBF``, ``EXP`` (epoch seconds, as
numbers or strings, or null). Microsoft's own sample has stray spaces (``"ObjectName "``,
``" ee05..."``), so keys and string values are trimmed and keys matched case-insensitively.
Where the same fact appears twice (vault in ``VaultName``, the ``Id`` host and the topic; secret in
``ObjectName``, ``subject`` and the ``Id`` path; version in ``Version`` and the ``Id`` path) the
copies must agree, or the event is malformed.

An event belongs to a configured vault by HOST, never by the configured name: ``ROTATION_VAULTS``
may give a vault an alias (``payments=https://kv-pay-prod.vault.azure.net``), and a vault that
happens to be called like the alias is another vault. The ``Id`` URL's host (with its port: the
local cloud serves each vault on its own loopback port) must equal the configured vault's; without
an ``Id``, ``VaultName`` (or the topic) names ``{name}.vault.azure.net`` or the same name in another
Azure cloud. The request then names the configured alias.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

from rotation.domain.model import (
    ReconcileRequest,
    from_epoch,
    is_valid_operation_id,
    is_valid_secret_name,
    is_valid_vault_name,
)
from rotation.settings import VAULT_DNS_SUFFIX, VAULT_HOST_SUFFIXES, is_loopback

SECRET_NEAR_EXPIRY: Final = "Microsoft.KeyVault.SecretNearExpiry"
SECRET_EXPIRED: Final = "Microsoft.KeyVault.SecretExpired"
SECRET_NEW_VERSION_CREATED: Final = "Microsoft.KeyVault.SecretNewVersionCreated"
SUBSCRIPTION_VALIDATION: Final = "Microsoft.EventGrid.SubscriptionValidationEvent"
#: A managed certificate's expiry (issue 15): the same data, ``ObjectType`` ``Certificate`` and an Id
#: under ``/certificates/``; it becomes a request of kind ``certificate``.
CERTIFICATE_NEAR_EXPIRY: Final = "Microsoft.KeyVault.CertificateNearExpiry"
CERTIFICATE_EXPIRED: Final = "Microsoft.KeyVault.CertificateExpired"
CERTIFICATE_EVENTS: Final = frozenset({CERTIFICATE_NEAR_EXPIRY, CERTIFICATE_EXPIRED})
ACTIONABLE: Final = frozenset({SECRET_NEAR_EXPIRY, SECRET_EXPIRED, *CERTIFICATE_EVENTS})

Schema = Literal["eventgrid", "cloudevents"]

_VERSION_RE = re.compile(r"^[0-9a-fA-F]{32}$")
# Latest representable second (9999-12-31T23:59:59Z); larger epoch values are garbage.
_MAX_EPOCH: Final = 253402300799


@dataclass(frozen=True)
class KeyVaultEvent:
    """A secret is near expiry or expired: reconcile it."""

    type: str
    vault_name: str
    secret_name: str
    version: str | None
    exp: datetime | None
    nbf: datetime | None
    event_id: str
    schema: Schema

    @property
    def kind(self) -> str:
        """``SecretNearExpiry`` or ``SecretExpired`` (or the ``Certificate…`` pair)."""
        return self.type.rsplit(".", 1)[-1]

    @property
    def about_certificate(self) -> bool:
        return self.type in CERTIFICATE_EVENTS

    def to_request(self, now: datetime) -> ReconcileRequest:
        """The reconcile request. Event Grid retries deliveries with the same event id, so that id
        (when it is a well-formed id) becomes the operation id and duplicates are recognisable."""
        version = f" version {self.version}" if self.version else ""
        return ReconcileRequest.new(
            self.vault_name,
            self.secret_name,
            now=now,
            reason=f"Key Vault event {self.kind} for{version or ' the secret'}",
            operation_id=self.event_id if is_valid_operation_id(self.event_id) else None,
            kind="certificate" if self.about_certificate else "secret",
        )


@dataclass(frozen=True)
class Ignored:
    """A well-formed event that needs no reconcile."""

    reason: str
    event_type: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class MalformedEvent:
    """An event that cannot be understood; ``message`` says what is wrong."""

    message: str
    event_id: str | None = None


ParsedEvent = KeyVaultEvent | Ignored | MalformedEvent


class _Malformed(Exception):
    """Internal: carries a problem description to :func:`parse_event`'s single exit."""


def _text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{what} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _epoch(value: object, what: str) -> datetime | None:
    if value is None:
        return None
    number: float
    if isinstance(value, bool):
        raise _Malformed(f"{what} must be epoch seconds, got a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value.strip())
        except ValueError:
            raise _Malformed(f"{what} must be epoch seconds, got {value[:30]!r}") from None
    else:
        raise _Malformed(f"{what} must be epoch seconds (a number or numeric string), got {type(value).__name__}")
    if not math.isfinite(number) or not 0 <= number <= _MAX_EPOCH:
        raise _Malformed(f"{what}={value!r} is not a plausible time in epoch seconds")
    return from_epoch(number)


def _normalised_data(data: object) -> dict[str, object]:
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            raise _Malformed("data is a string but not JSON") from None
    if not isinstance(data, Mapping):
        raise _Malformed(f"data must be an object, got {type(data).__name__}")
    normalised: dict[str, object] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise _Malformed("data has a non-string key")
        name = key.strip().lower()
        if name in normalised and normalised[name] != value:
            raise _Malformed(f"data has conflicting copies of {key.strip()!r}")
        normalised[name] = value
    return normalised


def _agree(what: str, candidates: Mapping[str, str | None]) -> str | None:
    present = {source: value for source, value in candidates.items() if value}
    distinct = {value.lower() for value in present.values()}
    if len(distinct) > 1:
        listed = ", ".join(f"{source}={value!r}" for source, value in present.items())
        raise _Malformed(f"the event names different {what}s: {listed}")
    return next(iter(present.values()), None)


def _endpoint(url: str) -> str | None:
    """``host[:port]`` of an https URL, lower-case, without the default port: what tells vaults apart."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return host if port in (None, 443) else f"{host}:{port}"


def _parse_secret_id(secret_id: str, collection: str = "secrets") -> tuple[str | None, str, str | None]:
    """``https://{vault}.vault.azure.net/secrets/{name}/{version}`` -> (vault from host, name, version);
    ``collection`` ``certificates`` for a certificate's Id."""
    try:
        parts = urlsplit(secret_id)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        raise _Malformed(f"Id {secret_id[:80]!r} is not a URL") from None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if parts.scheme != "https" or not host or len(segments) not in (2, 3) or segments[0] != collection:
        what = "certificate" if collection == "certificates" else "secret"
        raise _Malformed(
            f"Id {secret_id[:80]!r} is not a Key Vault {what} id (https://<vault>/{collection}/<name>/<version>)"
        )
    vault_from_host: str | None = host.split(".", 1)[0]
    try:
        ipaddress.ip_address(host)
        vault_from_host = None  # an address names no vault
    except ValueError:
        if is_loopback(secret_id):
            vault_from_host = None  # the local cloud serves every vault on one loopback host
    version = segments[2] if len(segments) == 3 else None
    return vault_from_host, segments[1], version


def _vault_from_topic(topic: str | None) -> str | None:
    # ".../providers/Microsoft.KeyVault/vaults/{name}"
    if not topic:
        return None
    match = re.search(r"/providers/Microsoft\.KeyVault/vaults/([^/]+)/?$", topic, re.IGNORECASE)
    return match.group(1) if match else None


def _configured_endpoints(known_vaults: Mapping[str, str] | Collection[str]) -> dict[str, list[str]]:
    """Endpoint (``host[:port]``) -> the configured names of the vault served there."""
    if isinstance(known_vaults, Mapping):
        urls = [(str(name), str(url)) for name, url in known_vaults.items()]
    else:
        urls = [(name, f"https://{name.lower()}{VAULT_DNS_SUFFIX}") for name in known_vaults]
    endpoints: dict[str, list[str]] = {}
    for name, url in urls:
        endpoint = _endpoint(url)
        if endpoint is not None:
            endpoints.setdefault(endpoint, []).append(name.lower())
    return endpoints


def _match_vault(
    vault: str, secret_id: str | None, known_vaults: Mapping[str, str] | Collection[str]
) -> tuple[str | None, str]:
    """The configured name of the event's vault (``None``: not managed here), and how it was looked for."""
    id_endpoint = _endpoint(secret_id) if secret_id else None
    # The Id names the very endpoint that served the secret; a bare name, its host in every cloud.
    by_name = [f"{vault.lower()}{suffix}" for suffix in VAULT_HOST_SUFFIXES]
    hosts = [id_endpoint] if id_endpoint is not None else by_name
    configured = _configured_endpoints(known_vaults)
    names = sorted({name for host in hosts for name in configured.get(host, [])})
    looked_for = hosts[0] if len(hosts) == 1 else f"{vault.lower()}.vault.* (no Id)"
    if len(names) > 1:
        raise _Malformed(
            f"vault {vault!r} at {looked_for} matches several configured vaults ({', '.join(names)}); "
            "the event carries no Id host to tell them apart"
        )
    return (names[0] if names else None), looked_for


def parse_event(payload: object, *, known_vaults: Mapping[str, str] | Collection[str] | None = None) -> ParsedEvent:
    """Parse one event in either schema; never raises.

    ``payload`` is the event as a dict: the Event Grid envelope (``id``, ``topic``, ``subject``,
    ``eventType``, ``data``; snake_case ``event_type`` as on ``func.EventGridEvent`` also works) or
    a CloudEvent (``specversion``, ``id``, ``source``, ``subject``, ``type``, ``data``).
    ``known_vaults`` (the configured vaults: name -> URL, as ``Settings.vaults``; a bare collection
    of names means each name's public-cloud vault) turns events of other vaults into
    :class:`Ignored`; a matched event names the configured vault (the alias), found by host.
    """
    if not isinstance(payload, Mapping):
        return MalformedEvent(f"an event must be a JSON object, got {type(payload).__name__}")
    raw_id = payload.get("id")
    event_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else None
    try:
        schema: Schema
        if "specversion" in payload or ("type" in payload and "source" in payload):
            schema, event_type, topic = "cloudevents", payload.get("type"), payload.get("source")
        elif "eventType" in payload or "event_type" in payload:
            schema = "eventgrid"
            event_type = payload.get("eventType", payload.get("event_type"))
            topic = payload.get("topic")
        else:
            raise _Malformed("neither an Event Grid event (eventType) nor a CloudEvent (type, source, specversion)")
        kind = _text(event_type, "the event type")
        if kind is None:
            raise _Malformed("the event type is empty")
        if kind not in ACTIONABLE:
            return Ignored(_ignored_reason(kind), kind, event_id)
        if event_id is None:
            raise _Malformed("the event has no id")
        if "data" not in payload:
            raise _Malformed("the event has no data")
        data = _normalised_data(payload["data"])

        expected_type = "Certificate" if kind in CERTIFICATE_EVENTS else "Secret"
        object_type = _text(data.get("objecttype"), "ObjectType")
        if object_type is not None and object_type.lower() != expected_type.lower():
            event_name = kind.rsplit(".", 1)[-1]
            raise _Malformed(f"ObjectType is {object_type!r}, expected {expected_type!r} for a {event_name} event")
        secret_id = _text(data.get("id"), "Id")
        collection = "certificates" if kind in CERTIFICATE_EVENTS else "secrets"
        id_vault, id_name, id_version = _parse_secret_id(secret_id, collection) if secret_id else (None, None, None)

        vault = _agree(
            "vault",
            {
                "VaultName": _text(data.get("vaultname"), "VaultName"),
                "Id host": id_vault,
                "topic": _vault_from_topic(_text(topic, "the topic/source")),
            },
        )
        secret = _agree(
            "secret",
            {
                "ObjectName": _text(data.get("objectname"), "ObjectName"),
                "subject": _text(payload.get("subject"), "subject"),
                "Id path": id_name,
            },
        )
        version = _agree("version", {"Version": _text(data.get("version"), "Version"), "Id path": id_version})
        if vault is None:
            raise _Malformed("the event names no vault (VaultName, Id or topic)")
        if secret is None:
            raise _Malformed("the event names no secret (ObjectName, subject or Id)")
        if not is_valid_vault_name(vault):
            raise _Malformed(f"vault name {vault[:40]!r} is not a valid vault name")
        if not is_valid_secret_name(secret):
            raise _Malformed(f"secret name {secret[:40]!r} is not a valid secret name")
        if version is not None and not _VERSION_RE.fullmatch(version):
            raise _Malformed(f"version {version[:40]!r} is not a Key Vault version (32 hex digits)")
        exp = _epoch(data.get("exp"), "EXP")
        nbf = _epoch(data.get("nbf"), "NBF")
        configured: str | None = vault.lower()
        looked_for = ""
        if known_vaults is not None:
            configured, looked_for = _match_vault(vault, secret_id, known_vaults)
    except _Malformed as problem:
        return MalformedEvent(str(problem), event_id)

    if configured is None:
        return Ignored(f"vault '{vault}' ({looked_for}) is not managed by this rotator", kind, event_id)
    return KeyVaultEvent(
        type=kind,
        vault_name=configured,
        secret_name=secret,
        version=version.lower() if version else None,
        exp=exp,
        nbf=nbf,
        event_id=event_id,
        schema=schema,
    )


def _ignored_reason(event_type: str) -> str:
    if event_type == SECRET_NEW_VERSION_CREATED:
        return "new secret versions are not rotation triggers (the rotator's own writes fire them; reacting would loop)"
    if event_type == SUBSCRIPTION_VALIDATION:
        return "subscription validation is answered by the Event Grid trigger itself"
    return f"event type {event_type!r} is not a rotation trigger"
