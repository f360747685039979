"""The rotate body, read strictly: every problem named at once, nothing guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.http_input import parse_rotate_body
from functions.replies import ApiError

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"reason": "leaked in a log"}', ("leaked in a log", False)),
        (b'{"reason": "  padded  ", "emergency": true}', ("padded", True)),
        (b'{"reason": "x", "emergency": false}', ("x", False)),
        (json.dumps({"reason": "r" * 500}).encode(), ("r" * 500, False)),
    ],
)
def test_a_valid_rotate_body(body: bytes, expected: tuple[str, bool]) -> None:
    command = parse_rotate_body(body)
    assert (command.reason, command.emergency) == expected
    assert command.mode == ("emergency" if expected[1] else "forced")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "JSON object"),
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'["reason"]', "JSON object"),
        (b"null", "JSON object"),
        (b"{}", "'reason' is required"),
        (b'{"reason": ""}', "must not be empty"),
        (b'{"reason": "   "}', "must not be empty"),
        (json.dumps({"reason": "r" * 501}).encode(), "at most 500"),
        (b'{"reason": 5}', "'reason' must be a string, got a number"),
        (b'{"reason": "x", "emergency": "yes"}', "'emergency' must be true or false, got a string"),
        (b'{"reason": "x", "emergency": 1}', "got a number"),
        (b'{"reason": "x", "vault": "kv-other"}', "unknown field(s) 'vault'"),
        (b'{"reason": "line\\nforged"}', "printable"),
    ],
)
def test_an_invalid_rotate_body_is_a_400_naming_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_rotate_body(body)
    assert caught.value.status == 400
    assert caught.value.code == "BadRequest"
    assert fragment in caught.value.message


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ApiError) as caught:
        parse_rotate_body(b'{"emergency": "no", "extra": 1}')
    message = caught.value.message
    assert "'reason' is required" in message and "'emergency'" in message and "'extra'" in message


def test_a_huge_body_is_refused_before_parsing() -> None:
    with pytest.raises(ApiError) as caught:
        parse_rotate_body(b" " * 100_000)
    assert caught.value.status == 413
