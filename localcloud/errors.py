"""Error bodies exactly as each real service writes them (see the wire facts)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def entra_error(status: int, error: str, code: int, message: str) -> web.Response:
    """The seven-key body of Entra ID's token endpoint, `\\r\\nTrace ID…` suffix included."""
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    timestamp = _now_stamp()
    description = (
        f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
    )
    body = {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store, no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": trace_id,
        },
    )


def graph_error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    details: list[dict[str, str]] | None = None,
    client_request_id: str | None = None,
) -> web.Response:
    """Graph's envelope; `details` only where the real service sends them, and the caller's
    `client-request-id` echoed back as Graph does (a fresh id otherwise)."""
    request_id = str(uuid.uuid4())
    client_request_id = client_request_id or request_id
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    error["innerError"] = {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", ""),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    return web.Response(
        status=status,
        text=json.dumps({"error": error}),
        content_type="application/json",
        headers={"request-id": request_id, "client-request-id": client_request_id, **(headers or {})},
    )


def keyvault_error(
    status: int,
    code: str,
    message: str,
    inner_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_code:
        error["innererror"] = {"code": inner_code}
    return web.Response(
        status=status,
        text=json.dumps({"error": error}),
        content_type="application/json",
        charset="utf-8",
        headers={"x-ms-request-id": str(uuid.uuid4()), **(headers or {})},
    )


def identity_error(status: int, message: str) -> web.Response:
    """App Service's managed-identity endpoint answers errors as a small JSON object."""
    return web.Response(
        status=status,
        text=json.dumps({"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}),
        content_type="application/json",
    )


def admin_error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": "BadRequest" if status == 400 else "Error", "message": message}}, status=status
    )


# Realistic bodies for injected faults, by service and status.
_GRAPH_FAULTS: dict[int, tuple[str, str]] = {
    400: (
        "Directory_ConcurrencyViolation",
        "Another object with the same value for property was updated at the same time. Please retry.",
    ),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: (
        "Request_ResourceNotFound",
        "Resource does not exist or one of its queried reference-property objects are not present.",
    ),
    409: (
        "Directory_ConcurrencyViolation",
        "Another object with the same value for property was updated at the same time. Please retry.",
    ),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "Gateway timeout."),
}
_KEYVAULT_FAULTS: dict[int, tuple[str, str]] = {
    400: ("BadParameter", "The request is malformed."),
    403: ("Forbidden", "Caller is not authorized to perform action on resource."),
    404: ("SecretNotFound", "The secret was not found in this key vault."),
    409: ("Conflict", "There was a conflict with the current state of the resource."),
    429: (
        "Throttled",
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
    ),
    500: ("InternalServerError", "An unexpected error occurred."),
    503: ("ServiceUnavailable", "The service is currently unavailable."),
}
_ARM_FAULTS: dict[int, tuple[str, str]] = {
    401: ("InvalidAuthenticationToken", "The access token is invalid."),
    403: ("AuthorizationFailed", "The client does not have authorization to perform action."),
    404: ("NotFound", "The resource was not found."),
    429: ("TooManyRequests", "The request is being throttled."),
    500: ("InternalServerError", "Encountered internal server error. Please try again."),
    503: ("ServiceUnavailable", "The server is currently unavailable. Please try again later."),
}


def _arm_fault(status: int, code: str, message: str, headers: dict[str, str] | None) -> web.Response:
    request_id = str(uuid.uuid4())
    return web.Response(
        status=status,
        text=json.dumps({"error": {"code": code, "message": message}}),
        content_type="application/json",
        charset="utf-8",
        headers={"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id, **(headers or {})},
    )


# A Key Vault fault whose `code` is one of these inner codes gets the real outer code, text and innererror.
_KEYVAULT_INNER_FAULTS: dict[str, tuple[str, str]] = {
    "ObjectIsBeingDeleted": ("Conflict", "Secret is currently being deleted."),
    "ObjectIsDeletedButRecoverable": (
        "Conflict",
        "Secret is currently in a deleted but recoverable state, "
        "and its name cannot be reused; in this state, the secret can only be "
        "recovered or purged.",
    ),
    "SecretDisabled": ("Forbidden", "Operation get is not allowed on a disabled secret."),
    "ForbiddenByRbac": ("Forbidden", "Caller is not authorized to perform action on resource."),
}


def fault_response(service: str, status: int, code: str | None) -> web.Response:
    retry = {"Retry-After": "1"} if status in (429, 503) else None
    if service == "graph":
        default_code, message = _GRAPH_FAULTS.get(status, ("UnknownError", "An error occurred."))
        return graph_error(status, code or default_code, message, retry)
    if service == "keyvault":
        if code in _KEYVAULT_INNER_FAULTS:
            outer, text = _KEYVAULT_INNER_FAULTS[code]
            return keyvault_error(status, outer, text, inner_code=code, headers=retry)
        default_code, message = _KEYVAULT_FAULTS.get(status, ("UnknownError", "An error occurred."))
        return keyvault_error(status, code or default_code, message, headers=retry)
    if service == "identity":
        return identity_error(status, "The managed identity endpoint could not issue a token.")
    if service == "eventgrid":
        from localcloud.eventgrid import eventgrid_error

        eg_code = {401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests", 503: "ServiceUnavailable"}
        response = eventgrid_error(status, code or eg_code.get(status, "InternalServerError"), "An error occurred.")
        if retry:
            response.headers.update(retry)
        return response
    if service == "arm":
        code_text = _ARM_FAULTS.get(status, ("UnknownError", "An error occurred."))
        return _arm_fault(status, code or code_text[0], code_text[1], retry)
    if status == 429:
        return entra_error(
            429,
            "temporarily_unavailable",
            50196,
            "The server encountered a client request loop. Please try again later.",
        )
    if status >= 500:
        return entra_error(
            status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."
        )
    return entra_error(
        status,
        code or "invalid_request",
        90014,
        "The request body must contain the following parameter: 'grant_type'.",
    )
