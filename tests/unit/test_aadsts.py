from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse

from rotation.domain import aadsts
from rotation.domain.aadsts import CATALOGUE, classify, explain, lookup, parse_code

REQUIRED = [7000215, 7000222, 700016, 900023, 90002, 50012, 700027, 7000218]
#: The codes of certificate (client assertion) sign-ins, issue 15.
CERTIFICATE_CODES = [700027, 7000274, 1000502, 700024, 700021, 700023, 50027, 50048, 70002]

SYNC_MESSAGE = (
    "Authentication failed: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
    "in the request is the client secret value, not the client secret ID, for a secret added to app "
    "'11111111-2222-3333-4444-555555555555'.\r\nTrace ID: 0000aaaa-11bb-cccc-dd33-eeeeee333333\r\n"
    "Correlation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2025-01-31 12:00:00Z"
)
AIO_MESSAGE = (
    "Microsoft Entra ID error '(invalid_client) AADSTS7000222: The provided client secret keys for app "
    "'11111111-2222-3333-4444-555555555555' are expired.\r\nTrace ID: x\r\nCorrelation ID: y\r\n"
    "Timestamp: 2025-01-31 12:00:00Z'"
)


def error_body(code: int, error: str = "invalid_client") -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: something.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: x",
        "error_codes": [code],
        "timestamp": "2025-01-31 12:00:00Z",
        "trace_id": "t",
        "correlation_id": "c",
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


def token_response(body: str, status_code: int = 401) -> RequestsTransportResponse:
    """A real azure-core transport response around a token-endpoint error body."""
    raw = requests.Response()
    raw.status_code = status_code
    raw.reason = "Unauthorized" if status_code == 401 else "Bad Request"
    raw.headers["Content-Type"] = "application/json; charset=utf-8"
    raw._content = body.encode()
    request = HttpRequest("POST", "https://login.microsoftonline.com/tenant/oauth2/v2.0/token")
    return RequestsTransportResponse(request, raw)


class BrokenResponse:
    """A response whose body cannot be read (as with an aio response whose body was not loaded)."""

    reason = "Unauthorized"
    status_code = 401
    request = None

    def text(self) -> str:
        raise RuntimeError("body not loaded")


# ---------------------------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize("code", REQUIRED)
def test_required_codes_are_catalogued(code: int) -> None:
    assert lookup(code) is not None


@pytest.mark.parametrize("entry", list(CATALOGUE.values()), ids=[str(c) for c in CATALOGUE])
def test_every_entry_is_complete(entry: aadsts.AadstsCode) -> None:
    assert entry.title and entry.remedy
    assert entry.causes and all(entry.causes)
    assert entry.docs_url == f"https://login.microsoftonline.com/error?code={entry.code}"
    assert not (entry.retryable and entry.transient_during_propagation)


def test_a_wrong_secret_and_an_unknown_certificate_are_the_only_propagation_codes() -> None:
    """Both are what Entra answers before a new secret (7000215) or a new certificate (700027) has
    reached every replica, so a validation keeps trying them; the rest fail fast."""
    propagation = sorted(c for c, e in CATALOGUE.items() if e.transient_during_propagation)
    assert propagation == [700027, 7000215]
    entry = lookup(7000215)
    assert entry is not None
    assert "VALUE, not the Secret ID" in entry.remedy
    assert "Certificates & secrets" in entry.remedy


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (7000215, "propagation"),
        (7000222, "permanent"),
        (700016, "permanent"),
        (900023, "permanent"),
        (90002, "permanent"),
        (53003, "permanent"),
        (700027, "propagation"),
        (7000274, "permanent"),
        (700024, "permanent"),
        (90033, "transient"),
        (50196, "transient"),
        (1234567, "unknown"),
        (None, "unknown"),
    ],
)
def test_classify(code: int | None, expected: str) -> None:
    assert classify(code) == expected


def test_waiting_may_help() -> None:
    assert aadsts.waiting_may_help(7000215)
    assert aadsts.waiting_may_help(None)
    assert aadsts.waiting_may_help(1234567)
    assert not aadsts.waiting_may_help(700016)


# ---------------------------------------------------------------------------------------------- parsing


def test_code_from_the_sync_credential_error() -> None:
    error = ClientAuthenticationError(message=SYNC_MESSAGE)
    assert parse_code(error) == 7000215


def test_code_from_the_aio_credential_error() -> None:
    error = ClientAuthenticationError(message=AIO_MESSAGE)
    assert parse_code(error) == 7000222


def test_code_from_the_response_body_of_the_aio_error() -> None:
    response = token_response(json.dumps(error_body(700016, "unauthorized_client")), status_code=400)
    error = ClientAuthenticationError(message="Microsoft Entra ID error 'no code here'", response=response)
    assert error.status_code == 400
    assert parse_code(error) == 700016


def test_response_body_wins_over_message_text() -> None:
    response = token_response(json.dumps(error_body(90002)))
    error = ClientAuthenticationError(message=AIO_MESSAGE, response=response)
    assert parse_code(error) == 90002


def test_unreadable_or_non_json_bodies_fall_back_to_the_message() -> None:
    broken = BrokenResponse()
    assert parse_code(ClientAuthenticationError(message=SYNC_MESSAGE, response=broken)) == 7000215
    html = token_response("<html>gateway timeout</html>", status_code=504)
    assert parse_code(ClientAuthenticationError(message=AIO_MESSAGE, response=html)) == 7000222


def test_response_with_a_json_method() -> None:
    class JsonResponse:
        def json(self) -> dict[str, Any]:
            return error_body(53003)

    class Failure(Exception):
        response = JsonResponse()

    assert parse_code(Failure("no code")) == 53003


def test_code_from_a_chained_exception() -> None:
    try:
        try:
            raise ClientAuthenticationError(message=SYNC_MESSAGE)
        except ClientAuthenticationError as inner:
            raise RuntimeError("validation failed") from inner
    except RuntimeError as outer:
        assert parse_code(outer) == 7000215
    wrapper = AzureError("wrapped", error=ClientAuthenticationError(message=AIO_MESSAGE))
    assert parse_code(wrapper) == 7000222


def test_a_cycle_in_the_cause_chain_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert parse_code(first) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.", 700016),
        ("error: AADSTS900023: Specified tenant identifier 'x' is neither ...", 900023),
        (json.dumps(error_body(7000218)), 7000218),
        ('garbage {"error_codes": [50012], "x": 1', 50012),
        ("7000215", 7000215),
        (" aadsts7000222 ", 7000222),
        ("an error without a code", None),
        ("", None),
        ("AADSTS12: too short", None),
    ],
)
def test_code_from_pasted_text(text: str, expected: int | None) -> None:
    assert parse_code(text) == expected
    assert parse_code(text.encode()) == expected


def test_code_from_other_inputs() -> None:
    assert parse_code(7000215) == 7000215
    assert parse_code(True) is None
    assert parse_code(None) is None
    assert parse_code(error_body(90002)) == 90002
    assert parse_code({"error_description": "AADSTS50059: no tenant"}) == 50059
    assert parse_code({"error_codes": ["7000215"]}) is None
    assert parse_code(ValueError("plain")) is None


# ---------------------------------------------------------------------------------------------- explaining


def test_explain_a_known_code() -> None:
    explanation = explain(ClientAuthenticationError(message=SYNC_MESSAGE))
    assert explanation is not None
    assert explanation.code == 7000215
    assert explanation.classification == "propagation"
    text = explanation.render()
    assert text.startswith("AADSTS7000215: Invalid client secret provided")
    assert "Secret ID (a GUID) was copied" in text
    assert "https://login.microsoftonline.com/error?code=7000215" in text
    assert "\n" not in explanation.summary()


def test_explain_an_unknown_code_points_to_the_lookup_page() -> None:
    explanation = explain("AADSTS1234567: new thing")
    assert explanation is not None
    assert explanation.entry is None
    assert explanation.classification == "unknown"
    assert "https://login.microsoftonline.com/error?code=1234567" in explanation.remedy
    assert "Likely causes" not in explanation.render()


def test_explain_without_a_code() -> None:
    assert explain("connection reset by peer") is None


# ---------------------------------------------------------------------------------------------- certificates


@pytest.mark.parametrize("code", CERTIFICATE_CODES)
def test_certificate_codes_are_catalogued_with_cause_and_remedy(code: int) -> None:
    entry = lookup(code)
    assert entry is not None and entry.causes and entry.remedy


def test_an_unregistered_certificate_is_explained_as_the_thumbprint_not_on_the_app() -> None:
    """The text Entra answers for a key the app does not have (as users published it)."""
    message = (
        "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on "
        "application. [Reason - The key was not found., Thumbprint of key used by client: 'ABC']"
    )
    explanation = explain(message)
    assert explanation is not None and explanation.entry is not None
    assert "not registered on the app" in explanation.title
    assert any("x5t" in cause for cause in explanation.entry.causes)
    assert any("only client secrets" in cause for cause in explanation.entry.causes)
    assert "Certificates & secrets" in explanation.remedy


def test_assertion_lifetime_is_about_the_clock_not_the_certificate() -> None:
    entry = lookup(700024)
    assert entry is not None
    assert any("clock" in cause for cause in entry.causes)
    assert "fresh assertion" in entry.remedy and not entry.transient_during_propagation


def test_a_secret_sent_to_a_certificate_only_app_is_a_7000215_cause() -> None:
    entry = lookup(7000215)
    assert entry is not None
    assert any("only certificates" in cause for cause in entry.causes)
