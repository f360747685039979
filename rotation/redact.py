"""Scrub secret values from text and log records (defence in depth).

The first line of defence is that secret values travel only inside ``model.Sensitive``, whose
``repr``/``str``/``format`` never show the value. This module is the second: every ``Sensitive``
registers itself (weakly) in :data:`registry`, and :class:`RedactingFilter` replaces any live
secret value that still reaches a log record, e.g. through an SDK's debug log or an exception
message that echoed a request body.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"

#: Values shorter than this are not registered for automatic scrubbing: replacing a short string
#: everywhere would garble unrelated log text, and real client secrets are 16-64 characters
#: (40 today), so nothing real is missed.
MIN_SECRET_LENGTH = 8


def _variants(value: str) -> set[str]:
    # A secret can also leak form-encoded (client_secret=... in a token request body). Entra
    # secrets contain '~', which Python leaves alone but stricter encoders write as %7E.
    encoded = quote(value, safe="")
    return {value, encoded, encoded.replace("~", "%7E"), quote_plus(value, safe="")}


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every occurrence of each non-empty value in ``secrets`` replaced.

    Longer values are replaced first so that a secret containing another one is removed whole.
    """
    values: set[str] = set()
    for secret in secrets:
        if secret:
            values |= _variants(secret)
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


class Revealable(Protocol):
    """Anything holding a secret value it can hand out on request (``model.Sensitive``)."""

    def reveal(self) -> str: ...


class SecretRegistry:
    """The secret values alive in this process, held through weak references.

    Weak references mean a value stops being scrubbed once nothing holds it any more, so a
    long-running worker does not accumulate every secret it ever saw.
    """

    def __init__(self) -> None:
        self._holders: weakref.WeakSet[Revealable] = weakref.WeakSet()
        # Log records are emitted from any thread; the lock keeps iteration and insertion apart.
        self._lock = threading.Lock()

    def register(self, holder: Revealable) -> None:
        if len(holder.reveal()) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._holders.add(holder)

    def values(self) -> list[str]:
        with self._lock:
            holders = list(self._holders)
        return [h.reveal() for h in holders]

    def scrub(self, text: str) -> str:
        """``redact`` with every registered value."""
        return redact(text, self.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._holders)


#: Process-wide registry that ``model.Sensitive`` registers into.
registry = SecretRegistry()


class RedactingFilter(logging.Filter):
    """A ``logging.Filter`` that scrubs registered secret values from messages and tracebacks.

    Attach it to *handlers* (see :func:`install`): filters on a logger do not see records that
    propagate from child loggers, handler filters see them all. It never drops a record.
    """

    def __init__(self, secrets: SecretRegistry | None = None, extra: Iterable[str] = ()) -> None:
        super().__init__()
        self._registry = secrets if secrets is not None else registry
        self._extra = tuple(extra)

    def filter(self, record: logging.LogRecord) -> bool:
        values = [*self._registry.values(), *self._extra]
        if not values:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        cleaned = redact(message, values)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            cleaned_exc = redact(record.exc_text, values)
            if cleaned_exc != record.exc_text:
                record.exc_text = cleaned_exc
                # Drop the live exception so no other handler re-renders the unscrubbed text.
                record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, values)
        return True


def install(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger).

    Call it after logging is configured (in Azure Functions the host's handler is already on the
    root logger when ``function_app`` is imported). Installing twice is harmless.
    """
    target = logger if logger is not None else logging.getLogger()
    installed: RedactingFilter | None = None
    for handler in target.handlers:
        existing = next((f for f in handler.filters if isinstance(f, RedactingFilter)), None)
        if existing is None:
            existing = installed or RedactingFilter()
            handler.addFilter(existing)
        installed = installed or existing
    return installed or RedactingFilter()
