"""An app registration's certificates (Graph ``keyCredentials``), as far as a diagnosis compares them.

Graph lists a certificate credential with its ``customKeyIdentifier``: by default (and as the portal
and ``az ad app credential reset --cert`` set it) the certificate's SHA-1 thumbprint, the 40
upper-case hex characters Graph calls "a 40-character binary type". On the wire that is the JSON
string of an ``Edm.Binary``, which msgraph-sdk hands over base64-decoded as bytes; its base64
encoding gives the string back. Like every domain type this holds no key material.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

_HEX_THUMBPRINT: Final = re.compile(r"^[0-9A-Fa-f]{40}$")
#: A SHA-1 digest, when a client set customKeyIdentifier to the raw thumbprint bytes instead.
_SHA1_BYTES: Final = 20


def thumbprint_from_identifier(raw: bytes | None) -> str | None:
    """The SHA-1 thumbprint (upper-case hex) that ``customKeyIdentifier`` carries, or ``None`` when it
    names something else (a custom identifier of the app's owner)."""
    if not raw:
        return None
    try:
        text = base64.b64encode(raw).decode("ascii")
    except (binascii.Error, ValueError):  # pragma: no cover - b64encode of bytes does not fail
        return None
    if _HEX_THUMBPRINT.match(text):
        return text.upper()
    if len(raw) == _SHA1_BYTES:
        return raw.hex().upper()
    return None


@dataclass(frozen=True)
class KeyCredential:
    """One certificate credential of an app registration (``keyCredentials``): its metadata only."""

    key_id: str
    display_name: str | None = None
    #: SHA-1 thumbprint, upper-case hex (``customKeyIdentifier``); ``None`` when Graph shows none.
    thumbprint: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.end is not None and self.end.astimezone(UTC) <= now.astimezone(UTC)

    def has_started(self, now: datetime) -> bool:
        return self.start is None or self.start.astimezone(UTC) <= now.astimezone(UTC)
