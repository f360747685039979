"""Azure Event Grid (basic custom topics, CloudEvents 1.0 input schema), one aiohttp application per topic.

A topic owns the root of its host as `{topic}.{region}-1.eventgrid.azure.net` does, so its endpoint is
`https://127.0.0.1:{port}/api/events` — the URL `azure-eventgrid`'s `EventGridPublisherClient` is given
and posts to unchanged (`?api-version=2018-01-01`). What is checked, in the order the service does:

1. a bearer token this cloud issued for `https://eventgrid.azure.net` (what the SDK's
   `https://eventgrid.azure.net/.default` scope yields), else 401;
2. the caller's service principal holds `EventGrid Data Sender` on this topic, else 401 — Event Grid
   reports a publisher it does not authorise as an authorisation failure (401), not 403;
3. `api-version` present, the content type `application/cloudevents-batch+json` (a JSON array) or
   `application/cloudevents+json` (one event), the body at most 1 MB, and each event a CloudEvent 1.0
   with `id`, `source`, `type`, `specversion: "1.0"` (and `data` xor `data_base64`), else 400 (413 for size).

Success is 200 with an empty body. Error bodies are Event Grid's `{"error":{"code","message"}}`, the
message ending with the `Report '…' to our forums …` tracking text real answers carry. Shared access
keys (`aeg-sas-key`) are not served: a topic here accepts Microsoft Entra tokens only, as one with
local authentication disabled does.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from localcloud.keys import CALLER, TOPIC_NAME, WORLD
from localcloud.state import EVENTGRID_DATA_SENDER, TopicRecord, World

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
SINGLE_CONTENT_TYPE = "application/cloudevents+json"
MAX_BODY_BYTES = 1024 * 1024  # Event Grid: an event, and a whole batch, up to 1 MB
TOPIC_NAME_RE = re.compile(r"^[a-zA-Z0-9-]{3,50}$")  # Event Grid topic names: 3-50 letters, digits, hyphens
# RFC 3339 date-time, as CloudEvents' `time` is (a date alone, or a time without an offset, is not one).
_RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)$")
_EXTENSION_RE = re.compile(r"^[a-z0-9]{1,20}$")  # CloudEvents 1.0: attribute names are lowercase alphanumerics
_REQUIRED = ("id", "source", "type", "specversion")
_KNOWN = frozenset({*_REQUIRED, "time", "subject", "datacontenttype", "dataschema", "data", "data_base64"})


def create_topic_record(world: World, name: str) -> TopicRecord:
    """Register a topic (the caller holds `world.lock`; the cloud binds its port and URL afterwards)."""
    if not TOPIC_NAME_RE.match(name):
        raise ValueError(f"Topic name '{name}' is invalid: use 3-50 letters, digits and hyphens.")
    if name.lower() in world.topics:
        raise ValueError(f"A topic named '{name}' exists already.")
    record = TopicRecord(name=name)
    world.topics[name.lower()] = record
    return record


def setup(app: web.Application) -> None:
    app.router.add_post("/api/events", publish)
    app.router.add_route("*", "/{tail:.*}", unknown_route)


def eventgrid_error(status: int, code: str, message: str) -> web.Response:
    """Event Grid's envelope; its messages end with a tracking reference for support."""
    now = datetime.now(UTC)
    stamp = f"{now.month}/{now.day}/{now.year} {(now.hour % 12) or 12}:{now:%M:%S %p}"  # as in 9/23/2020 2:38:00 PM
    tracking = f"{uuid.uuid4()}:0:{stamp} (UTC)"
    text = f"{message} Report '{tracking}' to our forums for assistance or raise a support ticket."
    return web.Response(
        status=status,
        text=json.dumps({"error": {"code": code, "message": text}}),
        content_type="application/json",
        charset="utf-8",
        headers={"x-ms-request-id": str(uuid.uuid4())},
    )


async def unknown_route(request: web.Request) -> web.Response:
    return eventgrid_error(404, "NotFound", f"The requested resource '{request.path}' was not found.")


def _authorise(world: World, topic: TopicRecord, request: web.Request) -> web.Response | None:
    """401 unless the bearer token is one this cloud issued for Event Grid and its principal may send
    to this topic (the caller holds the lock). The texts are the local cloud's own wording."""
    header = request.headers.get("Authorization")
    if not header or not header.lower().startswith("bearer ") or not header[7:].strip():
        return eventgrid_error(
            401,
            "Unauthorized",
            "The request did not include an Authorization header with a bearer token, or an aeg-sas-key or "
            "aeg-sas-token header; this topic accepts Microsoft Entra tokens only.",
        )
    token = world.token_from_header(header)
    if token is None:
        expired = header[7:].strip() in world.tokens
        reason = "the token is expired" if expired else "the token is not valid"
        return eventgrid_error(401, "Unauthorized", f"The request authorization failed: {reason}.")
    request[CALLER] = token.app_id
    if token.service != "eventgrid":
        return eventgrid_error(
            401,
            "Unauthorized",
            f"The request authorization failed: the token's audience '{token.audience}' is not "
            "https://eventgrid.azure.net.",
        )
    roles = topic.role_assignments.get(token.subject_object_id.lower(), set())
    if EVENTGRID_DATA_SENDER not in roles:
        return eventgrid_error(
            401,
            "Unauthorized",
            f"The principal '{token.subject_object_id}' is not authorized to perform "
            f"'Microsoft.EventGrid/topics/events/send/action' on topic '{topic.name}': it needs the "
            f"'{EVENTGRID_DATA_SENDER}' role on the topic.",
        )
    return None


def _too_large() -> web.Response:
    return eventgrid_error(
        413, "RequestEntityTooLarge", f"The request body exceeds the maximum size of {MAX_BODY_BYTES} bytes."
    )


def _bad_request(message: str) -> web.Response:
    return eventgrid_error(400, "BadRequest", message)


def _validate(events: list[Any]) -> str | None:
    """Why the batch is not CloudEvents 1.0 (None when it is)."""
    if not events:
        return "The request contains no events."
    for index, event in enumerate(events):
        where = f"Event at index {index}"
        if not isinstance(event, dict):
            return f"{where} is not a JSON object."
        for name in _REQUIRED:
            value = event.get(name)
            if not isinstance(value, str) or not value:
                return f"{where}: the required CloudEvents attribute '{name}' is missing or empty."
        if event["specversion"] != "1.0":
            return f"{where}: specversion '{event['specversion']}' is not supported; use '1.0'."
        if "data" in event and "data_base64" in event:
            return f"{where}: 'data' and 'data_base64' cannot both be present."
        time = event.get("time")
        if time is not None:
            if not isinstance(time, str) or not _RFC3339_RE.match(time):
                return f"{where}: 'time' must be an RFC 3339 timestamp."
            try:
                datetime.fromisoformat(time.replace("Z", "+00:00"))
            except ValueError:
                return f"{where}: 'time' must be an RFC 3339 timestamp."
        for name in event:
            if name not in _KNOWN and not _EXTENSION_RE.match(name):
                return f"{where}: '{name}' is not a valid CloudEvents attribute name (lowercase letters and digits)."
    return None


async def publish(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    name = request.app[TOPIC_NAME]
    with world.lock:
        topic = world.topic(name)
        if topic is None:  # deleted under a running listener
            return eventgrid_error(404, "NotFound", f"The topic '{name}' was not found.")
        refused = _authorise(world, topic, request)
    if refused is not None:
        return refused
    if not request.query.get("api-version"):
        return _bad_request("The api-version query parameter is required, e.g. api-version=2018-01-01.")
    content_type = request.content_type.lower()
    if content_type not in (BATCH_CONTENT_TYPE, SINGLE_CONTENT_TYPE):
        # What the service answers a CloudEvents topic posted with another content type.
        return _bad_request(
            "The Content-Type header is either missing or it doesn't have a valid value. The content type "
            f"header must either be {SINGLE_CONTENT_TYPE}; charset=utf-8 or {BATCH_CONTENT_TYPE}; charset=utf-8."
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _too_large()
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        return _too_large()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _bad_request("The request body is not valid JSON.")
    if content_type == BATCH_CONTENT_TYPE:
        if not isinstance(body, list):
            return _bad_request("Unexpected token when reading JSON. Expected: StartArray, actual: StartObject.")
        events = body
    else:
        events = [body]
    problem = _validate(events)
    if problem is not None:
        return _bad_request(problem)
    with world.lock:
        topic.events.extend(events)
    return web.Response(status=200, headers={"x-ms-request-id": str(uuid.uuid4())})
