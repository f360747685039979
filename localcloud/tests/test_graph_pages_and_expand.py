"""Paging of an app's owners and `$expand=federatedIdentityCredentials` on the applications list,
with Graph's documented limits: owners 100 a page (`$top`, `$skiptoken`), an expanded listing at most
100 apps a page whatever `$top` asks, 20 related objects each, and no other expansion served."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from localcloud.cloud import LocalCloud
from localcloud.tests.test_graph import READ_ALL, assert_graph_error, bearer, make_app, make_identity, token_for, trust


@pytest.fixture
async def raw(cloud: LocalCloud) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cloud.graph_url, verify=trust(cloud)) as client:
        yield client


async def test_owners_come_a_page_at_a_time(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    app = make_app(cloud, "svc-crowded")
    owners = sorted(str(uuid.uuid4()) for _ in range(130))
    for owner in owners:
        cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": owner})
    token = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))

    first = (await raw.get(f"/applications/{app['id']}/owners", headers=token)).json()
    assert [o["id"] for o in first["value"]] == owners[:100]
    second = (await raw.get(first["@odata.nextLink"], headers=token)).json()
    assert [o["id"] for o in second["value"]] == owners[100:] and "@odata.nextLink" not in second
    small = (await raw.get(f"/applications/{app['id']}/owners", params={"$top": "7"}, headers=token)).json()
    assert len(small["value"]) == 7 and "$skiptoken=" in small["@odata.nextLink"]
    stale = await raw.get(f"/applications/{app['id']}/owners", params={"$skiptoken": "bogus"}, headers=token)
    assert_graph_error(stale, 400, "Request_BadRequest")


async def test_federated_credentials_expand_in_pages_of_at_most_100(cloud: LocalCloud, raw: httpx.AsyncClient) -> None:
    tagged = f"expand-{uuid.uuid4().hex[:6]}"
    apps = [make_app(cloud, f"{tagged}-{n:03d}") for n in range(105)]
    for n in range(21):
        cloud.admin(
            "POST",
            f"/applications/{apps[0]['id']}/federated-credentials",
            {"name": f"fic-{n}", "issuer": "https://issuer.example", "subject": f"subject-{n}"},
        )
    token = bearer(await token_for(cloud, make_identity(cloud, READ_ALL)))
    query = {
        "$filter": f"startswith(displayName,'{tagged}')",
        "$select": "id,displayName",
        "$expand": "federatedIdentityCredentials",
        "$top": "999",
    }

    first = await raw.get("/applications", params=query, headers=token)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["value"]) == 100 and "@odata.nextLink" in page, "an expanded page holds at most 100"
    rest = (await raw.get(page["@odata.nextLink"], headers=token)).json()
    assert len(rest["value"]) == 5 and "@odata.nextLink" not in rest
    expanded = {item["id"]: item["federatedIdentityCredentials"] for item in page["value"] + rest["value"]}
    assert len(expanded) == 105 and all(v == [] for k, v in expanded.items() if k != apps[0]["id"])
    crowded = expanded[apps[0]["id"]]
    assert len(crowded) == 20, "at most 20 related objects each"
    assert {"issuer", "subject", "name", "audiences"} <= set(crowded[0])

    refused = await raw.get("/applications", params={"$expand": "owners"}, headers=token)
    assert_graph_error(refused, 400, "Request_BadRequest")
