"""Structured decision logs that Application Insights can query.

Every line starts with an event name (`RotationCompleted`, `RotationFailed`, ...) so that alerts can
match `message startswith "RotationFailed"`, and carries the same facts as `custom_dimensions` (the
key the Azure Monitor exporters turn into customDimensions). Only ids, keyIds, versions and states:
callers never pass a value, and the redaction filter scrubs anything registered as secret anyway.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("rotation")


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
