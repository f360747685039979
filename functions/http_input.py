"""What the HTTP functions read: the rotate body, strictly. A body is input from a caller the
platform has authenticated, but still input: every problem is named at once, nothing is guessed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from functions.replies import ApiError
from rotation.domain import strict_json
from rotation.domain.model import REASON_MAX


@dataclass(frozen=True)
class RotateCommand:
    """The body of ``POST /api/secrets/{vault}/{name}/rotate``."""

    reason: str
    emergency: bool = False

    @property
    def mode(self) -> Literal["forced", "emergency"]:
        # POST .../rotate always rotates now; "emergency" also retires the old credential at once.
        return "emergency" if self.emergency else "forced"


_ROTATE_FIELDS: Final = ("reason", "emergency")
#: A body larger than this is not a reason and an emergency flag.
BODY_MAX: Final = 8 * 1024


def parse_rotate_body(body: bytes) -> RotateCommand:
    """Validate the rotate body strictly: a JSON object with a ``reason`` (1-500 printable
    characters) and an optional boolean ``emergency``; anything else is a 400 listing every problem."""
    if len(body) > BODY_MAX:
        raise ApiError(413, "BodyTooLarge", f"The request body must be at most {BODY_MAX} bytes.")
    try:
        data = strict_json.loads(body) if body.strip() else None
    except strict_json.JsonRejected as rejected:
        raise ApiError(400, "BadRequest", f"The request body is not valid JSON: {rejected}.") from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "BadRequest",
            'The request body must be a JSON object like {"reason": "why", "emergency": false}.',
        )
    problems: list[str] = []
    unknown = sorted(str(k) for k in data if k not in _ROTATE_FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown)}")
    reason = data.get("reason")
    if reason is None:
        problems.append("'reason' is required: say why the secret must be rotated")
    elif not isinstance(reason, str):
        problems.append(f"'reason' must be a string, got {_json_type(reason)}")
    elif not reason.strip():
        problems.append("'reason' must not be empty")
    elif len(reason) > REASON_MAX:
        problems.append(f"'reason' is {len(reason)} characters; at most {REASON_MAX} are allowed")
    elif not reason.isprintable():
        # A control character in a reason would let a caller forge log lines.
        problems.append("'reason' must be printable text on one line")
    emergency = data.get("emergency", False)
    if not isinstance(emergency, bool):
        problems.append(f"'emergency' must be true or false, got {_json_type(emergency)}")
    if problems:
        raise ApiError(400, "BadRequest", "Invalid rotate request: " + "; ".join(problems) + ".")
    assert isinstance(reason, str) and isinstance(emergency, bool)
    return RotateCommand(reason=reason.strip(), emergency=emergency)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
