"""`GET /api/inventory?days=N&format=json|html` through the real function object, against the local cloud."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from emulator.rotator_profile import RotatorCloud
from tests.functions.harness import assert_nothing_contains, http_request, issued_secrets, request_mark, requests_since
from tests.integration.seed import seed_managed_secret


async def get_inventory(handlers: dict[str, Any], params: dict[str, str]) -> Any:
    request = http_request("GET", "/api/inventory", params=params)
    return await handlers["inventory"](request)


async def test_inventory_as_json_lists_the_managed_credential_without_secrets(
    cloud: RotatorCloud, handlers: dict[str, Any]
) -> None:
    seeded = await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=10)
    mark = request_mark(cloud)
    response = await get_inventory(handlers, {"days": "30", "format": "json"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    text = response.get_body().decode()
    assert seeded.key_id in text and seeded.name in text
    assert_nothing_contains([text], issued_secrets(cloud))
    # Read-only: the inventory only ever reads.
    writes = [r for r in requests_since(cloud, mark) if r["service"] in ("graph", "keyvault") and r["method"] != "GET"]
    assert writes == []


async def test_inventory_as_a_page(cloud: RotatorCloud, handlers: dict[str, Any]) -> None:
    await asyncio.to_thread(seed_managed_secret, cloud, expires_in_days=3)
    response = await get_inventory(handlers, {"format": "html"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = response.get_body().decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert_nothing_contains([page], issued_secrets(cloud))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"days": "soon"}, "days"), ({"days": "-1"}, "days"), ({"format": "pdf"}, "format")],
)
async def test_bad_queries_are_refused_before_anything_is_read(
    cloud: RotatorCloud, handlers: dict[str, Any], params: dict[str, str], fragment: str
) -> None:
    mark = request_mark(cloud)
    response = await get_inventory(handlers, params)
    assert response.status_code == 400 and response.mimetype == "application/json"
    error = json.loads(response.get_body())["error"]
    assert fragment in error["message"]
    assert [r for r in requests_since(cloud, mark) if r["service"] in ("graph", "keyvault")] == []
