"""The edge's own configuration: what the triggers need beyond the rotator's settings.

``rotation.settings.Settings`` (app settings, read once per invocation) configures the rotator;
:class:`EdgeConfig` configures how the Functions edge drives it: the lock's lease period, how long a
deferred message stays invisible, where host.json is, the clock and how the runtime is opened.
``function_app.create_app()`` builds the app with the defaults; tests build one with their own
(a 15-second lease, a one-second deferral, a runtime that fails) instead of patching module globals.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from functions.bearer import SIGNING_KEYS, SigningKeys
from rotation.hosting import DEFAULT_LEASE_SECONDS, open_runtime_lazily
from rotation.settings import Settings

if TYPE_CHECKING:
    from rotation.runtime import Runtime

#: host.json next to function_app.py: the host reads it from the app's root, so does the edge.
HOST_JSON: Final = Path(__file__).resolve().parents[1] / "host.json"

RuntimeFactory = Callable[[Settings], "AbstractAsyncContextManager[Runtime]"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EdgeConfig:
    """How the triggers run; the defaults are production's."""

    #: Lease period of the per-secret blob lock (15-60 s). The lock renews it every third of the
    #: period while a reconcile runs, so a long validation keeps it; a crashed worker's lease
    #: lapses within it.
    lock_lease_seconds: int = DEFAULT_LEASE_SECONDS
    #: Visibility delay of a deferred message; ``None``: one lease period plus jitter (see
    #: ``functions.disposition.defer_delay_seconds``).
    defer_delay_seconds: int | None = None
    #: Read for ``extensions.queues.messageEncoding`` when the worker re-enqueues a message.
    host_json: Path = HOST_JSON
    clock: Callable[[], datetime] = utc_now
    #: Opens the adapters for one invocation (``rotation.runtime.open_runtime``, imported on first use).
    runtime: RuntimeFactory = open_runtime_lazily
    #: The tenants' token-signing keys the HTTP routes verify operators' tokens with (cached).
    signing_keys: SigningKeys = field(default=SIGNING_KEYS, compare=False)

    def __post_init__(self) -> None:
        # Azure Storage grants leases of 15-60 seconds (or infinite, which a worker must never take).
        if not 15 <= self.lock_lease_seconds <= 60:
            raise ValueError(f"lock_lease_seconds must be 15-60, got {self.lock_lease_seconds}")
        if self.defer_delay_seconds is not None and self.defer_delay_seconds < 1:
            raise ValueError(f"defer_delay_seconds must be at least 1, got {self.defer_delay_seconds}")
