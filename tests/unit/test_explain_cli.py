"""`python -m rotation explain`: a pasted error (or a bare code) in, cause and remedy out. No network."""

from __future__ import annotations

import io
import json

import pytest

from rotation.cli import main

AIO_MESSAGE = (
    "Microsoft Entra ID error '(invalid_client) AADSTS7000215: Invalid client secret provided. Ensure the "
    "secret being sent in the request is the client secret value, not the client secret ID, for a secret "
    "added to app '11111111-2222-3333-4444-555555555555'.\r\nTrace ID: 0f0e\r\nCorrelation ID: 1a1b\r\n"
    "Timestamp: 2025-01-31 12:00:00Z'"
)


def explain(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_a_bare_code_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "7000215")
    assert code == 0
    assert out.startswith("AADSTS7000215: Invalid client secret provided")
    assert "Secret ID (a GUID) was copied instead of the secret Value" in out
    assert "Does waiting help? only if the secret (or certificate) was added in the last few minutes" in out
    assert "https://login.microsoftonline.com/error?code=7000215" in out


def test_a_pasted_sdk_message_split_by_the_shell_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, *AIO_MESSAGE.split(" "))
    assert code == 0
    assert out.startswith("AADSTS7000215")


@pytest.mark.parametrize(
    ("text", "waiting"),
    [("AADSTS7000222", "no, waiting does not fix it"), ("aadsts50033", "yes, try again shortly")],
)
def test_whether_waiting_helps(capsys: pytest.CaptureFixture[str], text: str, waiting: str) -> None:
    code, out = explain(capsys, text)
    assert code == 0
    assert f"Does waiting help? {waiting}." in out


def test_a_json_error_body_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps({"error": "invalid_request", "error_codes": [90002], "error_description": "AADSTS90002: ..."})
    code, out = explain(capsys, body, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["code"] == 90002 and data["explained"] is True
    assert data["classification"] == "permanent" and data["waitingHelps"] == "no, waiting does not fix it"
    assert data["causes"] and data["remedy"]
    assert data["docs"] == "https://login.microsoftonline.com/error?code=90002"


def test_an_unknown_code_points_to_microsofts_lookup(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "AADSTS123456: something new")
    assert code == 1
    assert "AADSTS123456 is not in the rotator's catalogue" in out
    assert "https://login.microsoftonline.com/error?code=123456" in out


def test_an_unknown_code_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "999999", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["explained"] is False and data["docs"].endswith("code=999999")


def test_text_without_a_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, "the", "token", "was", "refused")
    assert code == 1
    assert "No AADSTS code found" in out


def test_reads_stdin_when_asked(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(AIO_MESSAGE))
    code, out = explain(capsys, "-")
    assert code == 0 and out.startswith("AADSTS7000215")


def test_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--help"])
    assert exit_info.value.code == 0
    assert "CODE_OR_MESSAGE" in capsys.readouterr().out
