"""The rotator's profile of the local cloud: its managed identity and the settings that point it there.

`localcloud` knows no client of its own. The rotator does need one: a system-assigned managed identity
(as the function app has in Azure) with `Application.ReadWrite.OwnedBy` on Graph and Key Vault Secrets
Officer on every vault, and the environment (`ROTATION_*` plus azure-identity's variables) that makes
the rotator talk to the cloud. This module is the one place that says so; the test suite, the demo, the
benchmarks and `python -m emulator serve` all start a `RotatorCloud`.
"""

from __future__ import annotations

from typing import Any, Self

from localcloud.cloud import LocalCloud, ManagedIdentity

ROTATOR_DISPLAY_NAME = "secret-rotator (managed identity)"
ROTATOR_GRAPH_APP_ROLES = ("Application.ReadWrite.OwnedBy",)
ROTATOR_VAULT_ROLES = ("Key Vault Secrets Officer",)
EVERY_VAULT = "*"


def create_rotator_identity(cloud: LocalCloud) -> ManagedIdentity:
    """The rotator's identity; `GET /_emulator/state` names it under `rotator`, as it always did."""
    identity = cloud.create_managed_identity(
        ROTATOR_DISPLAY_NAME,
        graph_app_roles=ROTATOR_GRAPH_APP_ROLES,
        vault_roles={EVERY_VAULT: ROTATOR_VAULT_ROLES},
        system_assigned=True,
    )
    cloud.annotate_state("rotator", {"objectId": identity.sp_object_id, "appId": identity.app_id})
    return identity


def rotator_env(cloud: LocalCloud) -> dict[str, str]:
    """Exactly the variables that point the rotator (and any azure-identity client) at `cloud`."""
    return {
        "AZURE_AUTHORITY_HOST": cloud.authority,
        "ROTATION_GRAPH_URL": cloud.graph_url,
        "ROTATION_VAULTS": ",".join(f"{name}={url}" for name, url in cloud.vault_urls.items()),
        "ROTATION_TENANT_ID": cloud.tenant_id,
        "IDENTITY_ENDPOINT": cloud.identity_endpoint,
        "IDENTITY_HEADER": cloud.identity_header,
        "REQUESTS_CA_BUNDLE": cloud.ca_bundle,
        "SSL_CERT_FILE": cloud.ca_bundle,
    }


class RotatorCloud(LocalCloud):
    """A local cloud with the rotator's identity in it; `env` is the rotator's settings."""

    _rotator: ManagedIdentity | None = None

    def start(self) -> Self:
        super().start()
        self._rotator = create_rotator_identity(self)
        return self

    @property
    def rotator(self) -> ManagedIdentity:
        """The rotator's managed identity (the cloud must have been started)."""
        if self._rotator is None:
            raise RuntimeError("start the cloud first: the rotator's identity is created by start()")
        return self._rotator

    @property
    def env(self) -> dict[str, str]:
        return rotator_env(self)

    def describe(self) -> dict[str, Any]:
        """The one JSON line `python -m emulator serve` prints (its keys are an interface)."""
        return {
            "authority": self.authority,
            "graph": self.graph_url,
            "tenantId": self.tenant_id,
            "managedIdentity": {"endpoint": self.identity_endpoint, "header": self.identity_header},
            "rotator": {"objectId": self.rotator.sp_object_id, "appId": self.rotator.app_id},
            "vaults": self.vault_urls,
            "caBundle": self.ca_bundle,
            "admin": self.admin_url,
            "env": self.env,
        }
