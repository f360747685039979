"""Structured decision logs that Application Insights can query.

Every line starts with an event name (`RotationCompleted`, `RotationFailed`, ...) so that alerts can
match `message startswith "RotationFailed"`, and carries the same facts as `custom_dimensions` (the
key the Azure Monitor exporters turn into customDimensions). Only ids, keyIds, versions and states:
callers never pass a value, and the redaction filter scrubs anything registered as secret anyway.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

log = logging.getLogger("rotation")

#: The decisions subscribers hear of (published as CloudEvents when ``ROTATION_EVENTS_TOPIC`` is set):
#: a ``RotationFailed`` with the code ``NotBound`` is published as ``NotBound``.
LIFECYCLE_EVENTS: Final = frozenset(
    {"RotationCompleted", "RetirementHeld", "CredentialRetired", "RotationFailed", "CredentialExpiring"}
)

#: The lifecycle events of the current invocation, while one collects them (``collecting_lifecycle``).
_collected: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar("lifecycle_events", default=None)


@contextmanager
def collecting_lifecycle() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Collect the lifecycle events that :func:`event` logs within the block (name, facts): what an
    invocation publishes when it ends. The facts are the logged ones, so never a secret value."""
    bucket: list[tuple[str, dict[str, Any]]] = []
    token = _collected.set(bucket)
    try:
        yield bucket
    finally:
        _collected.reset(token)


def event(name: str, *, level: int = logging.INFO, **dimensions: Any) -> None:
    """Log `name` with `dimensions`; the message repeats them as compact JSON for plain-text sinks."""
    facts = {k: v for k, v in dimensions.items() if v is not None}
    log.log(
        level,
        "%s %s",
        name,
        json.dumps(facts, default=str, separators=(",", ":"), sort_keys=True),
        extra={"custom_dimensions": {"event": name, **{k: str(v) for k, v in facts.items()}}},
    )
    bucket = _collected.get()
    if bucket is not None and name in LIFECYCLE_EVENTS:
        bucket.append((name, facts))
