"""Regression: concurrent reads of different apps through one `GraphDirectory` each get their own app.

msgraph-sdk 1.65's `applications_with_app_id` gives its request builder the client's shared path
parameters, which the builder mutates; a sweep reconciling secrets of two apps at once read the same
app twice (and reported the other secret's app as not owned). The adapter now copies them per call.
"""

from __future__ import annotations

import asyncio

from azure.identity.aio import ManagedIdentityCredential

from emulator.rotator_profile import RotatorCloud
from rotation.adapters.graph import GraphDirectory
from tests.integration.seed import create_owned_app, unique


async def test_concurrent_application_reads_do_not_cross(cloud: RotatorCloud) -> None:
    apps = [create_owned_app(cloud, unique("concurrent")) for _ in range(6)]
    async with ManagedIdentityCredential() as credential:
        directory = GraphDirectory(credential, cloud.graph_url)
        try:
            found = await asyncio.gather(*(directory.get_application(app["appId"]) for app in apps))
        finally:
            await directory.close()
    assert [a.app_id for a in found] == [app["appId"] for app in apps]
    assert [a.object_id for a in found] == [app["id"] for app in apps]
