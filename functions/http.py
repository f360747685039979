"""HTTP: the operator API. Roll a secret now (202, queued), read one secret's state, list them all,
and the credential inventory. Every route first validates the caller's Entra ID bearer token and its app
role (``functions.principal``: Operator to roll, Reader or Operator to read), before any Key Vault or
Graph call; the function key is required as well. Every answer is JSON (the inventory may be a page), never a stack
trace, and never a secret value: every read here is a value-free list call.

Each route parses its input, calls one service function and shapes the reply; :func:`respond`
turns whatever happened into the response. Annotations are evaluated at import (no
``from __future__ import annotations``): the Python worker inspects the route functions'.
"""

import logging
import time
from collections.abc import Awaitable, Callable

import azure.functions as func

from functions.config import EdgeConfig
from functions.host import REQUESTS_QUEUE, STORAGE_CONNECTION, invocation_settings, log_enqueued, new_blueprint
from functions.http_input import parse_rotate_body
from functions.principal import authorize, operate, read
from functions.replies import (
    ApiError,
    Reply,
    accepted,
    api_error_from,
    document_reply,
    error_reply,
    internal_error_reply,
)
from rotation.domain.errors import RotationError, SettingsError
from rotation.domain.model import format_utc, new_operation_id
from rotation.observability import event as log_event
from rotation.service.certificate_sweep import scan_certificates
from rotation.service.intake import admit_rotation, known_vault, managed_status
from rotation.service.sweep import scan

log = logging.getLogger("rotation.functions")


def blueprint(config: EdgeConfig) -> func.Blueprint:
    bp = new_blueprint()

    @bp.route(route="secrets/{vault}/{name}/rotate", methods=["POST"])
    @bp.queue_output(arg_name="requests", queue_name=REQUESTS_QUEUE, connection=STORAGE_CONNECTION)
    async def rotate_secret(req: func.HttpRequest, requests: func.Out[str]) -> func.HttpResponse:
        """Ask for a rotation now: ``{"reason": "...", "emergency": false}`` -> 202 and a status URL.

        Checks, in order, before anything is enqueued: settings (500), the caller's Entra ID bearer
        token (401) and its ``Rotation.Operator`` role (403; see ``functions.principal.authorize``), the body
        (400), then ``rotation.service.intake.admit_rotation``: the vault (404), the name (400), and
        one value-free Key Vault read (the version list): the secret must exist and be managed (404),
        with usable tags and an enabled latest version (409).

        Like ``python -m rotation rotate --force``: ``"emergency": false`` rotates now and keeps the old
        credential for the grace period (a planned roll; it waits if an earlier retirement is still
        pending); ``"emergency": true`` rotates now and retires the old credential as soon as the new one
        is proven (a leak).
        """

        async def handle(operation_id: str) -> Reply:
            settings = invocation_settings("rotate_secret", operation_id)
            caller = await authorize(req.headers, settings, operate(settings), config.signing_keys)
            command = parse_rotate_body(req.get_body())
            vault, name = req.route_params.get("vault", ""), req.route_params.get("name", "")
            async with config.runtime(settings) as runtime:
                request = await admit_rotation(
                    settings, runtime.vaults, vault, name, command.reason, command.mode, config.clock(), operation_id
                )
            requests.set(request.to_json())
            log_enqueued(request, source="http", **caller.log_facts())
            return accepted(operation_id, req.url, request.vault, request.secret)

        return await respond("rotate_secret", req, handle)

    @bp.route(route="secrets/{vault}/{name}", methods=["GET"])
    async def secret_status(req: func.HttpRequest) -> func.HttpResponse:
        """The rotation state of one managed secret (never its value): expiry, state, pending retirement."""

        async def handle(operation_id: str) -> Reply:
            settings = invocation_settings("secret_status", operation_id)
            await authorize(req.headers, settings, read(settings), config.signing_keys)
            vault, name = req.route_params.get("vault", ""), req.route_params.get("name", "")
            now = config.clock()
            async with config.runtime(settings) as runtime:
                status = await managed_status(settings, runtime.vaults, vault, name, now, runtime.certificate_vaults)
            return Reply(200, status.to_dict(now))

        return await respond("secret_status", req, handle)

    @bp.route(route="secrets", methods=["GET"])
    async def list_secrets(req: func.HttpRequest) -> func.HttpResponse:
        """Every managed secret of every configured vault (``?vault=`` for one), from list calls only."""

        async def handle(operation_id: str) -> Reply:
            settings = invocation_settings("list_secrets", operation_id)
            await authorize(req.headers, settings, read(settings), config.signing_keys)
            only = req.params.get("vault")
            only = known_vault(settings, only) if only is not None else None
            now = config.clock()
            async with config.runtime(settings) as runtime:
                statuses = await scan(settings, runtime.vaults, now, only=only)
                # Managed certificates too, when the rotator manages them (ROTATION_CERTIFICATES).
                statuses += await scan_certificates(settings, runtime.certificate_vaults, now, only=only)
            listing = [status.to_dict(now) for status in statuses]
            return Reply(200, {"generatedAt": format_utc(now), "count": len(listing), "secrets": listing})

        return await respond("list_secrets", req, handle)

    @bp.route(route="inventory", methods=["GET"])
    async def inventory(req: func.HttpRequest) -> func.HttpResponse:
        """``GET /api/inventory?days=N&format=json|html``: every credential of every app the rotator can
        read, with days to expiry and the vault secret managing it (see ``rotation.tools.inventory``).
        Read-only; list calls only, never a secret value."""

        async def handle(operation_id: str) -> Reply:
            settings = invocation_settings("inventory", operation_id)
            await authorize(req.headers, settings, read(settings), config.signing_keys)
            async with config.runtime(settings) as runtime:
                # The inventory (and its HTML renderer) loads with its first request, not at cold start.
                from rotation.tools.inventory import inventory_response

                answer = await inventory_response(runtime, req.params.get("days"), req.params.get("format"))
            return document_reply(*answer)

        return await respond("inventory", req, handle)

    return bp


async def respond(function: str, req: func.HttpRequest, handle: Callable[[str], Awaitable[Reply]]) -> func.HttpResponse:
    """The edge: every outcome becomes JSON, nothing escapes as a stack trace."""
    operation_id = new_operation_id()
    started = time.monotonic()
    try:
        reply = await handle(operation_id)
    except ApiError as error:
        reply = error_reply(error)
    except SettingsError:
        # The problems name setting values (vault URLs, hosts): they are in the SettingsInvalid log line
        # with this operation id, never in a reply to whoever called.
        reply = internal_error_reply(operation_id)
    except RotationError as error:
        reply = error_reply(api_error_from(error))
    except Exception:
        # The traceback goes to the log (through the redaction filter); the caller gets the id.
        log.exception("Unhandled error in %s (operation %s)", function, operation_id)
        reply = internal_error_reply(operation_id)
    log_event(
        "HttpHandled",
        level=logging.WARNING if reply.status >= 500 else logging.INFO,
        function=function,
        operationId=operation_id,
        method=req.method,
        status=reply.status,
        errorCode=reply.body.get("error", {}).get("code") if reply.status >= 400 else None,
        seconds=round(time.monotonic() - started, 3),
    )
    headers = {"x-ms-operation-id": operation_id, "Cache-Control": "no-store", **reply.headers}
    return func.HttpResponse(reply.payload(), status_code=reply.status, headers=headers, mimetype=reply.mimetype)
