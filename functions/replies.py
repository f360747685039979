"""What the HTTP functions answer: the one error shape, replies before they become responses,
and the mapping from a rotator error to a status. Free of Azure Functions imports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from functions.host import ROUTE_PREFIX
from rotation.domain.errors import RotationError, UnknownVaultError


class ApiError(Exception):
    """An HTTP answer other than success, raised anywhere in a handler and shaped at the edge."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Reply:
    """What an HTTP handler answers, before it becomes a ``func.HttpResponse``."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    # A document that is not JSON (the inventory page): sent as is, with its own media type.
    document: str | None = None
    mimetype: str = "application/json"

    def to_json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=False)

    def payload(self) -> str:
        return self.document if self.document is not None else self.to_json()


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape of the HTTP API: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


def error_reply(error: ApiError) -> Reply:
    return Reply(error.status, error_body(error.code, error.message), error.headers)


def internal_error_reply(operation_id: str) -> Reply:
    """A 500 that says where to look (the operation id in the logs) and nothing about the cause:
    exception text can carry anything, so it goes to the log, never to the caller."""
    return Reply(
        500,
        error_body(
            "InternalError",
            f"The rotator failed unexpectedly; search the logs for operation id {operation_id}.",
        ),
        {"x-ms-operation-id": operation_id},
    )


#: ``Retry-After`` of a 503 (a transient failure: throttling, a service not answering).
RETRY_AFTER_SECONDS: Final = 30


def api_error_from(error: RotationError) -> ApiError:
    """Turn a rotation error into an HTTP error; its message is actionable and holds no value.

    An unknown vault is answered without the configured list the command line shows: the vault
    list is configuration, not something an HTTP caller needs to learn.
    """
    status = error.http_status
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    message = error.message
    if isinstance(error, UnknownVaultError):
        message = f"Vault '{error.vault[:40]}' is not managed by this rotator."
    return ApiError(status, error.code, message, headers)


def status_path(vault: str, secret: str) -> str:
    return f"/{ROUTE_PREFIX}/secrets/{quote(vault, safe='')}/{quote(secret, safe='')}"


def status_url(request_url: str, vault: str, secret: str) -> str:
    """Absolute URL of the secret's status, on the host the caller used (behind a proxy this is
    what the platform forwarded; a relative ``Location`` would be valid too)."""
    parts = urlsplit(request_url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return origin + status_path(vault, secret)


def accepted(operation_id: str, request_url: str, vault: str, secret: str) -> Reply:
    """202 for a queued rotation: where to watch it (the secret's status) and the operation to search for."""
    url = status_url(request_url, vault, secret)
    return Reply(202, {"operationId": operation_id, "statusUrl": url}, {"Location": url})


def document_reply(status: int, content_type: str, document: str) -> Reply:
    """A reply from a ready-made document (the inventory): JSON is passed on as JSON, anything else
    as the self-contained page it is; nosniff keeps a browser from guessing another type for it."""
    mimetype = content_type.split(";", 1)[0]
    if mimetype == "application/json":
        return Reply(status, json.loads(document))
    return Reply(status, {}, {"X-Content-Type-Options": "nosniff"}, document=document, mimetype=mimetype)
