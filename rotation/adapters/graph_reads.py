"""Conversions for the inventory's extra Graph reads: certificates' thumbprints, federated identity
credentials and the sign-in activity report's rows. Pure functions over what msgraph-sdk (or, for
the beta report, which it has no builders for, the raw JSON) hands back; `GraphDirectory` calls them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from msgraph.generated.models.federated_identity_credential import (
    FederatedIdentityCredential as GraphFederatedCredential,
)

from rotation.domain.listing import FederatedCredential
from rotation.domain.model import parse_utc
from rotation.settings import is_loopback

_HEX_THUMBPRINT: Final = re.compile(r"[0-9A-Fa-f]{40}")
_SHA1_BYTES: Final = 20
#: Graph's global-cloud hosts: the only ones that serve the beta sign-in report.
_GLOBAL_GRAPH_HOSTS: Final = frozenset({"graph.microsoft.com"})


def thumbprint(custom_key_identifier: bytes | None) -> str | None:
    """A certificate's SHA-1 thumbprint (upper-case hex) from ``customKeyIdentifier``.

    Graph types the property as Binary, so msgraph-sdk base64-decodes it; what the portal, the CLI
    and the default of ``addKey`` store there is the thumbprint, as 40 hex characters (which are
    themselves valid base64: encoding the bytes again gives them back) or as its 20 raw bytes.
    Anything else is a caller-chosen identifier, not a thumbprint: ``None``.
    """
    if not custom_key_identifier:
        return None
    wire = base64.b64encode(custom_key_identifier).decode("ascii")
    if _HEX_THUMBPRINT.fullmatch(wire):
        return wire.upper()
    if len(custom_key_identifier) == _SHA1_BYTES:
        return custom_key_identifier.hex().upper()
    return None


def federated_credential(item: GraphFederatedCredential) -> FederatedCredential:
    return FederatedCredential(
        credential_id=str(item.id),
        name=item.name,
        issuer=item.issuer,
        subject=item.subject,
        audiences=tuple(str(a) for a in item.audiences or []),
    )


def serves_sign_in_report(graph_url: str) -> bool:
    """The report is beta and global-cloud only; a loopback Graph (the local cloud) serves it too."""
    return is_loopback(graph_url) or (urlsplit(graph_url).hostname or "") in _GLOBAL_GRAPH_HOSTS


def report_rows(page: Mapping[str, Any]) -> dict[str, datetime | None]:
    """One report page's rows: lower-case keyId → its last sign-in (``None`` when undated)."""
    found: dict[str, datetime | None] = {}
    for row in page.get("value") or []:
        if not isinstance(row, dict):
            continue
        key = str(row.get("keyId") or "").lower()
        last = (row.get("signInActivity") or {}).get("lastSignInDateTime")
        if key:
            found[key] = parse_utc(last) if isinstance(last, str) and last else None
    return found
