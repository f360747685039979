"""The end-to-end rotation against a real Entra ID tenant and a real Azure Key Vault (marker ``live``).

Skipped unless ``ROTATION_LIVE_VAULT`` and ``ROTATION_LIVE_SECRET`` are set. It rotates a real client
secret, so point it at a dedicated test app registration and secret, never at one a service uses.

What you need
-------------
1. An app registration for the test (e.g. ``az ad app create --display-name rotator-live-test``) with
   one client secret (``az ad app credential reset --id <appId> --append --display-name live-test``,
   which prints the value and, in ``az ad app credential list --id <appId>``, its ``keyId``).
2. A Key Vault with RBAC authorization holding that value as a managed secret::

       az keyvault secret set --vault-name <vault> --name <secret> --value '<the value>' \\
         --tags ProviderAddress=<appId> CredentialId=<keyId>

3. An identity for the rotator, signed in where ``DefaultAzureCredential`` finds it (``az login``, or
   ``AZURE_CLIENT_ID`` / ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_SECRET`` of a service principal), with
   * Microsoft Graph: ``Application.ReadWrite.OwnedBy`` (application permission) and ownership of the
     test app (``az ad app owner add --id <appId> --owner-object-id <its object id>``); a signed-in
     user who owns the app works too;
   * Key Vault: the ``Key Vault Secrets Officer`` role on the vault.
   ``IDENTITY_ENDPOINT`` must not be set (it would select a managed identity).

How to run
----------
In a shell of its own (not in the same pytest session as the local-cloud tests, which point the
environment at loopback endpoints)::

    export ROTATION_LIVE_VAULT=<vault>            # the vault's name, as listed in ROTATION_VAULTS
    export ROTATION_LIVE_SECRET=<secret>          # the managed secret in it
    export ROTATION_VAULTS=<vault>                # or <vault>=https://<vault>.vault.azure.net
    export ROTATION_TENANT_ID=<tenant id>         # the app's tenant (or tag the secret with TenantId)
    # optional: ROTATION_LIVE_MODE=normal         # rotate only if due (default: emergency, always rotates
    #                                             # and removes the old credential at once)
    # optional: ROTATION_GRACE_HOURS, ROTATION_VALIDATION_DEADLINE_SECONDS, ... as in production
    .venv/bin/python -m pytest tests/live -m live -v

The test reads the secret, reconciles it through the production wiring (``rotation.runtime``), checks
the new version (tags, ``exp``, no Secret ID stored), that Entra issues a token for the new value, that
the outcome holds no secret, and that a second reconcile has nothing to do.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import cast

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential

from rotation.domain.model import Action, Mode, ReconcileRequest, Sensitive, is_guid
from rotation.runtime import open_runtime
from rotation.settings import Settings, is_loopback

pytestmark = pytest.mark.live

LIVE_VARIABLES = ("ROTATION_LIVE_VAULT", "ROTATION_LIVE_SECRET", "ROTATION_LIVE_MODE")
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SIGN_IN_PATIENCE_SECONDS = 180  # Entra propagation: observed 4-18 s, up to minutes


def live_settings() -> tuple[Settings, str, str, Mode]:
    vault = os.environ.get("ROTATION_LIVE_VAULT", "").strip()
    secret = os.environ.get("ROTATION_LIVE_SECRET", "").strip()
    if not vault or not secret:
        pytest.skip("live test: set ROTATION_LIVE_VAULT and ROTATION_LIVE_SECRET (see this module's docstring)")
    mode = os.environ.get("ROTATION_LIVE_MODE", "emergency").strip() or "emergency"
    if mode not in ("normal", "emergency"):
        pytest.fail(f"ROTATION_LIVE_MODE must be normal or emergency, not {mode!r}")
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k not in LIVE_VARIABLES})
    endpoints = [settings.graph_url, settings.authority_host, *settings.vaults.values()]
    if any(is_loopback(url) for url in endpoints):
        pytest.skip("live test: the environment points at the local cloud; run tests/live in a session of its own")
    if vault.lower() not in settings.vaults:
        pytest.fail(f"ROTATION_LIVE_VAULT={vault} is not listed in ROTATION_VAULTS")
    return settings, vault, secret, cast(Mode, mode)


async def sign_in(authority: str, tenant_id: str, app_id: str, value: Sensitive) -> None:
    """A consumer's sign-in with the stored value, waiting out propagation (7000215) only."""
    deadline = time.monotonic() + SIGN_IN_PATIENCE_SECONDS
    while True:
        async with ClientSecretCredential(tenant_id, app_id, value.reveal(), authority=authority) as credential:
            try:
                await credential.get_token(GRAPH_SCOPE)
                return
            except ClientAuthenticationError as exc:
                if "AADSTS7000215" not in str(exc) or time.monotonic() > deadline:
                    raise AssertionError("Entra refused the rotated value") from None
        await asyncio.sleep(5)


async def test_live_rotation() -> None:
    settings, vault_name, secret, mode = live_settings()
    async with open_runtime(settings) as runtime:
        vault = runtime.vaults[vault_name.lower()]
        before = await vault.get(secret)
        assert before is not None, f"secret {secret} not found in {vault_name}"
        assert before.version.managed, f"secret {secret} has no ProviderAddress tag"
        app_id = before.version.tags["ProviderAddress"]
        tenant_id = settings.policy_for(before.version.tags, secret, vault_name).require_tenant(vault_name, secret)

        request = ReconcileRequest.new(
            vault_name, secret, now=datetime.now(UTC), reason="live integration test", mode=mode
        )
        outcome = await runtime.reconciler.reconcile(request)

        text = json.dumps(outcome.to_dict())
        assert outcome.ok, text
        after = await vault.get(secret)
        assert after is not None
        assert before.value.reveal() not in text and after.value.reveal() not in text

        if outcome.action is Action.ROTATED:
            tags = after.version.tags
            assert after.version.version == outcome.vault_version
            assert tags["RotationState"] == "active"
            assert outcome.created_key_id and tags["CredentialId"].lower() == outcome.created_key_id.lower()
            assert not after.value.matches(before.value)
            app = await runtime.directory.get_application(app_id)
            credential = app.credential(outcome.created_key_id)
            assert credential is not None and credential.end is not None
            assert credential.display_name == f"rotator:{vault_name.lower()}/{secret}:{tags['RotationId']}"
            assert after.version.expires == credential.end.replace(microsecond=0)
            assert not is_guid(after.value.reveal()) and app.credential(after.value.reveal()) is None
            if mode == "emergency":
                assert "RetireCredentialId" not in tags
                old = before.version.tags.get("CredentialId")
                if old:
                    assert app.credential(old) is None and old.lower() in {k.lower() for k in outcome.retired_key_ids}
        else:
            assert mode == "normal" and outcome.action in (Action.NONE, Action.RETIRED, Action.CLEANED), text

        await sign_in(settings.authority_host, tenant_id, app_id, after.value)

        # Converged: nothing left to do.
        again = await runtime.reconciler.reconcile(
            ReconcileRequest.new(vault_name, secret, now=datetime.now(UTC), reason="live integration test (again)")
        )
        assert again.ok and again.action in (Action.NONE, Action.RETIRED), json.dumps(again.to_dict())
