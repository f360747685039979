"""``GET /api/inventory?days=N&format=json|html``, wired by the function app."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Problem:
    status: int
    code: str
    message: str

    def response(self) -> tuple[int, str, str]:
        return self.status, JSON_TYPE, json.dumps({"error": {"code": self.code, "message": self.message}})


def parse_days(days: int | str | None) -> int | _Problem | None:
    """``days`` as given by a caller or a query string: ``None``/empty (no filter) or 0-3650."""
    if days is None or (isinstance(days, str) and not days.strip()):
        return None
    if isinstance(days, bool):
        return _Problem(400, "BadRequest", f"'days' must be a whole number from 0 to {MAX_DAYS}.")
    if isinstance(days, str):
        text = days.strip()
        if not text.isascii() or not text.isdigit():
            return _Problem(400, "BadRequest", f"'days' must be a whole number from 0 to {MAX_DAYS}.")
        days = int(text)
    if not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
        return _Problem(400, "BadRequest", f"'days' must be a whole number from 0 to {MAX_DAYS}.")
    return days


async def inventory_response(runtime: Runtime, days: int | str | None, fmt: str | None) -> tuple[int, str, str]:
    """``(status, content type, body)`` for ``GET /api/inventory?days=N&format=json|html``.

    ``days`` may be the raw query-string value. Bad input is a 400 with ``{"error": {"code", "message"}}``
    (and no call to Graph or Key Vault); throttling beyond the retry budget is a 503, any other failure
    a 500 whose message says what to do. Bodies never contain a secret value.
    """
    chosen = (fmt or "json").strip().lower()
    if chosen not in HTTP_FORMATS:
        return _Problem(400, "BadRequest", "'format' must be json or html.").response()
    parsed = parse_days(days)
    if isinstance(parsed, _Problem):
        return parsed.response()
    try:
        inventory = await collect(runtime, days=parsed)
    except ThrottledError as error:
        return _Problem(503, error.code, registry.scrub(error.message)).response()
    except RotationError as error:
        return _Problem(500, error.code, registry.scrub(error.message)).response()
    if chosen == "html":
        return 200, HTML_TYPE, render(inventory, "html")
    return 200, JSON_TYPE, render(inventory, "json")
