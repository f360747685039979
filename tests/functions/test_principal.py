"""The caller over HTTP: X-MS-CLIENT-PRINCIPAL, and whether it may roll a secret."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from functions.principal import authorize_operator, parse_client_principal
from functions.replies import ApiError
from tests.functions.harness import ROLE_URI, client_principal

ROOT = Path(__file__).resolve().parents[2]
ROLE = "Rotation.Operator"


def test_no_principal_header_means_function_key_only() -> None:
    caller = authorize_operator({"x-functions-key": "k"}, ROLE)
    assert not caller.authenticated
    assert caller.describe() == "function key"


@pytest.mark.parametrize(
    "principal",
    [
        client_principal(ROLE),
        client_principal(ROLE, role_typ=ROLE_URI),
        client_principal("Other", ROLE, role_typ="roles"),
        # role_typ names a custom claim type; App Service's mapping may produce either form.
        client_principal(ROLE, role_typ="custom-role-claim"),
    ],
)
def test_a_principal_with_the_operator_role_is_allowed(principal: str) -> None:
    caller = authorize_operator({"X-MS-CLIENT-PRINCIPAL": principal}, ROLE)
    assert caller.authenticated and ROLE in caller.roles
    assert caller.describe().startswith("aad:")


def test_header_names_are_case_insensitive_in_plain_mappings() -> None:
    with pytest.raises(ApiError):
        authorize_operator({"x-ms-client-principal": client_principal("Reader")}, ROLE)


@pytest.mark.parametrize(
    "principal",
    [
        client_principal(),
        client_principal("Rotation.Reader"),
        client_principal(ROLE.lower()),  # app role values are compared exactly
        client_principal(ROLE, role_typ="roles", claim_typ="groups"),  # a group named like the role
    ],
)
def test_a_principal_without_the_operator_role_is_refused(principal: str) -> None:
    with pytest.raises(ApiError) as caught:
        authorize_operator({"X-MS-CLIENT-PRINCIPAL": principal}, ROLE)
    assert (caught.value.status, caught.value.code) == (403, "Forbidden")
    assert ROLE in caught.value.message


@pytest.mark.parametrize(
    "header",
    [
        "",
        "%%%not-base64%%%",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"auth_typ": "aad"}').decode(),
        base64.b64encode(b'{"claims": [{"typ": "roles"}]}').decode(),
        base64.b64encode(b'{"claims": ["roles"]}').decode(),
    ],
)
def test_an_unreadable_principal_fails_closed(header: str) -> None:
    with pytest.raises(ApiError) as caught:
        authorize_operator({"X-MS-CLIENT-PRINCIPAL": header}, ROLE)
    assert caught.value.status == 403


def test_principal_parsing_tolerates_missing_padding_and_urlsafe_alphabet() -> None:
    raw = json.dumps({"auth_typ": "aad", "claims": [{"typ": "roles", "val": ROLE}], "x": "??>>"}).encode()
    unpadded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert ROLE in parse_client_principal(unpadded).roles
