"""Typed keys for what every aiohttp application of the local cloud carries."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from localcloud.state import World

WORLD: web.AppKey[World] = web.AppKey("world", World)
# The LocalCloud that owns the app (admin needs it to bind vault ports); typed loosely to avoid a cycle.
CLOUD: web.AppKey[Any] = web.AppKey("cloud", object)
# Present only on a vault's own application: which vault this port serves.
VAULT_NAME: web.AppKey[str] = web.AppKey("vault_name", str)
# Present only on a vault's own application: the Entra authority (the main port) its challenge names.
AUTHORITY: web.AppKey[str] = web.AppKey("authority", str)
# Who made a request, for the request log (set by handlers that know better than the bearer token).
CALLER: web.RequestKey[str | None] = web.RequestKey("caller", str)
# Present only on an Event Grid topic's own application: which topic this port serves.
TOPIC_NAME: web.AppKey[str] = web.AppKey("topic_name", str)
