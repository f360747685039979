"""External JSON is read one way only: duplicated keys, non-JSON constants and bombs are refused."""

from __future__ import annotations

import pytest

from rotation.domain import strict_json


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"emergency": false, "emergency": true}', "duplicate key 'emergency'"),
        ('{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
        ('{"n": NaN}', "NaN is not a JSON number"),
        ('{"n": -Infinity}', "-Infinity is not a JSON number"),
        ("[" * 17 + "]" * 17, "nests deeper than 16"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nests deeper"),
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_what_json_loads_would_accept_or_crash_on_is_rejected_with_a_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(strict_json.JsonRejected) as caught:
        strict_json.loads(text)
    assert reason in str(caught.value)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"reason": "' + "[{" * 50 + '\\"]"}'
    assert strict_json.loads(text) == {"reason": "[{" * 50 + '"]'}
    assert strict_json.loads(b'{"a": [1, {"b": null}], "c": "\\u00e9"}') == {"a": [1, {"b": None}], "c": "é"}
