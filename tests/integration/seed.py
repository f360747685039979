"""Seeding helpers for integration tests: apps owned by the rotator, managed secrets in a vault."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from emulator.rotator_profile import RotatorCloud
from rotation.adapters.graph import GraphDirectory
from rotation.domain.model import vault_host
from rotation.service.adoption import bind_secret


@dataclass
class SeededSecret:
    vault: str
    name: str
    app_id: str
    object_id: str
    key_id: str
    value: str
    version: str


def unique(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_owned_app(cloud: RotatorCloud, display_name: str, **extra: Any) -> dict[str, Any]:
    app: dict[str, Any] = cloud.admin("POST", "/applications", {"displayName": display_name, **extra})
    cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": cloud.rotator.sp_object_id})
    return app


async def bind_async(
    cloud: RotatorCloud, app_id: str, vault: str, secret: str, adopted_key_id: str | None = None
) -> str:
    """Bind ``vault/secret`` to the app the documented way: the app-tag write (`PATCH /applications/{id}`
    with `tags`) as an owner of the app, here the rotator's identity (the seeded apps' owner)."""
    async with ManagedIdentityCredential() as credential:
        directory = GraphDirectory(credential, cloud.graph_url)
        try:
            app = await directory.get_application(app_id)
            return await bind_secret(directory, app, vault_host(cloud.vault_url(vault)), secret, adopted_key_id)
        finally:
            await directory.close()


def bind(cloud: RotatorCloud, app_id: str, vault: str, secret: str, adopted_key_id: str | None = None) -> str:
    return asyncio.run(bind_async(cloud, app_id, vault, secret, adopted_key_id))


async def write_secret(
    cloud: RotatorCloud,
    vault: str,
    name: str,
    value: str,
    tags: dict[str, str] | None = None,
    expires: datetime | None = None,
) -> str:
    """Write a version as an operator would (through the real SDK, as the rotator identity)."""
    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(cloud.vault_url(vault), credential, verify_challenge_resource=False) as client,
    ):
        stored = await client.set_secret(name, value, tags=tags, expires_on=expires)
        assert stored.properties.version is not None
        return stored.properties.version


def seed_managed_secret(
    cloud: RotatorCloud,
    *,
    vault: str = "kv-local",
    expires_in_days: float = 10,
    tags: dict[str, str] | None = None,
    tag_credential: bool = True,
    sign_in_audience: str | None = None,
    bound: bool = True,
) -> SeededSecret:
    """An app owned by the rotator with a human-made password whose value sits in a managed secret."""
    extra = {"signInAudience": sign_in_audience} if sign_in_audience else {}
    app = create_owned_app(cloud, unique("svc"), **extra)
    end = datetime.now(UTC) + timedelta(days=expires_in_days)
    end_text = end.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    password = cloud.admin(
        "POST", f"/applications/{app['id']}/passwords", {"displayName": "made by a human", "endDateTime": end_text}
    )
    all_tags = {"ProviderAddress": app["appId"]}
    if tag_credential:
        all_tags["CredentialId"] = password["keyId"]
    all_tags.update(tags or {})
    name = unique("secret")
    if bound:
        bind(cloud, app["appId"], vault, name, password["keyId"] if tag_credential else None)
    version = asyncio.run(
        write_secret(cloud, vault, name, password["secretText"], all_tags, end.replace(microsecond=0))
    )
    return SeededSecret(vault, name, app["appId"], app["id"], password["keyId"], password["secretText"], version)
