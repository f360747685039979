"""``GET /api/inventory?days=N&format=json|html``, wired by the function app."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from rotation.domain.errors import RotationError, ThrottledError
from rotation.redact import registry
from rotation.tools.inventory.collect import collect
from rotation.tools.inventory.model import HTTP_FORMATS, MAX_DAYS
from rotation.tools.inventory.render import render

if TYPE_CHECKING:
    from rotation.runtime import Runtime

JSON_TYPE: Final = "application/json; charset=utf-8"
HTML_TYPE: Final = "text/html; charset=utf-8"


#: The one answer to any unusable ``days``; it says what a usable one is.
BAD_DAYS: Final = f"'days' must be a whole number from 0 to {MAX_DAYS}."


def _error(status: int, code: str, message: str) -> tuple[int, str, str]:
    """An error response: ``{"error": {"code", "message"}}``, like every HTTP route of the rotator."""
    return status, JSON_TYPE, json.dumps({"error": {"code": code, "message": message}})


def parse_days(days: int | str | None) -> int | None:
    """``days`` as given by a caller or a query string: ``None``/empty (no filter) or 0-3650.

    Raises ``ValueError`` (with :data:`BAD_DAYS`) for anything else, a ``bool`` included.
    """
    if days is None or (isinstance(days, str) and not days.strip()):
        return None
    if isinstance(days, bool):
        raise ValueError(BAD_DAYS)
    if isinstance(days, str):
        text = days.strip()
        if not text.isascii() or not text.isdigit():
            raise ValueError(BAD_DAYS)
        days = int(text)
    if not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
        raise ValueError(BAD_DAYS)
    return days


async def inventory_response(runtime: Runtime, days: int | str | None, fmt: str | None) -> tuple[int, str, str]:
    """``(status, content type, body)`` for ``GET /api/inventory?days=N&format=json|html``.

    ``days`` may be the raw query-string value. Bad input is a 400 with ``{"error": {"code", "message"}}``
    (and no call to Graph or Key Vault); throttling beyond the retry budget is a 503, any other failure
    a 500 whose message says what to do. Bodies never contain a secret value.
    """
    chosen = (fmt or "json").strip().lower()
    if chosen not in HTTP_FORMATS:
        return _error(400, "BadRequest", "'format' must be json or html.")
    try:
        parsed = parse_days(days)
    except ValueError:
        return _error(400, "BadRequest", BAD_DAYS)
    try:
        inventory = await collect(runtime, days=parsed)
    except ThrottledError as error:
        return _error(503, error.code, registry.scrub(error.message))
    except RotationError as error:
        return _error(500, error.code, registry.scrub(error.message))
    if chosen == "html":
        return 200, HTML_TYPE, render(inventory, "html")
    return 200, JSON_TYPE, render(inventory, "json")
