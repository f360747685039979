"""JSON from outside (HTTP bodies, queue messages) read one way only.

`json.loads` accepts what a careful reader should not: a duplicated key (the last one wins, so
``{"emergency": false, "emergency": true}`` reads as an emergency to Python and as not one to a
reviewer or a WAF that takes the first), ``NaN``/``Infinity`` (not JSON at all), and nesting so deep
that the decoder raises ``RecursionError`` — an exception no handler expects, which crashed the worker
and then the poison handler. `loads` turns every one of them into a `JsonRejected` that says why.
"""

from __future__ import annotations

import json
from typing import Any, Final

#: Every document the rotator reads is flat (an object of scalars); this leaves room and stops bombs.
MAX_DEPTH: Final = 16


class JsonRejected(ValueError):
    """The text is not JSON the rotator accepts; the message says why (never the text itself)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise JsonRejected(f"duplicate key {key[:40]!r}: each field may appear once")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number")


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than `MAX_DEPTH` (checked before decoding, so a
    bomb never reaches the recursive decoder)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def loads(data: str | bytes) -> Any:
    """Decode ``data`` (UTF-8 when bytes) strictly; raise `JsonRejected` with the reason."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JsonRejected("the text is not UTF-8") from None
    if _too_deep(text):
        raise JsonRejected(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except JsonRejected:
        raise
    except (ValueError, RecursionError) as exc:
        raise JsonRejected(f"not valid JSON ({type(exc).__name__})") from None
