"""The rotator's profile of the local cloud: its managed identity and the settings that point it there.

`localcloud` knows no client of its own. The rotator does need one: a system-assigned managed identity
(as the function app has in Azure) with `Application.ReadWrite.OwnedBy` on Graph and Key Vault Secrets
Officer on every vault, and the environment (`ROTATION_*` plus azure-identity's variables) that makes
the rotator talk to the cloud. This module is the one place that says so; the test suite, the demo, the
benchmarks and `python -m emulator serve` all start a `RotatorCloud`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from azure.identity import ClientSecretCredential

from localcloud.cloud import LocalCloud, ManagedIdentity

ROTATOR_DISPLAY_NAME = "secret-rotator (managed identity)"
ROTATOR_GRAPH_APP_ROLES = ("Application.ReadWrite.OwnedBy",)
ROTATOR_VAULT_ROLES = ("Key Vault Secrets Officer",)
EVERY_VAULT = "*"
# The rotator's API (infra/modules/operator-api.bicep registers the same in Azure).
API_DISPLAY_NAME = "secret-rotator API"
API_IDENTIFIER_URI = "api://secret-rotator"
OPERATOR_ROLE = "Rotation.Operator"
READER_ROLE = "Rotation.Reader"


@dataclass(frozen=True)
class RotatorApi:
    """The rotator's API registration: what operators' tokens name as their audience."""

    app_id: str
    identifier_uri: str

    @property
    def audience_setting(self) -> str:
        """``ROTATION_API_AUDIENCE``: the client id and the identifier URI."""
        return f"{self.app_id},{self.identifier_uri}"

    @property
    def scope(self) -> str:
        return f"{self.identifier_uri}/.default"


@dataclass(frozen=True)
class ApiClient:
    """An application that calls the rotator's API (an operator's automation, a dashboard)."""

    app_id: str
    object_id: str
    client_secret: str


def register_rotator_api(cloud: LocalCloud) -> RotatorApi:
    """The API app registration with the app roles Rotation.Operator and Rotation.Reader."""
    app = cloud.admin("POST", "/applications", {"displayName": API_DISPLAY_NAME})
    cloud.expose_api(app["appId"], identifier_uris=[API_IDENTIFIER_URI], app_roles=[OPERATOR_ROLE, READER_ROLE])
    return RotatorApi(app_id=app["appId"], identifier_uri=API_IDENTIFIER_URI)


def create_api_client(cloud: LocalCloud, api: RotatorApi, display_name: str, roles: tuple[str, ...] = ()) -> ApiClient:
    """An application with a client secret, assigned ``roles`` on the rotator's API (none: a stranger)."""
    body = cloud.admin("POST", "/identities", {"displayName": display_name, "graphAppRoles": []})
    for role in roles:
        cloud.assign_app_role(api.app_id, body["objectId"], role)
    return ApiClient(app_id=body["appId"], object_id=body["objectId"], client_secret=body["clientSecret"])


def api_token(cloud: LocalCloud, client: ApiClient, scope: str) -> str:
    """An access token for ``client``, obtained the way an operator's tool does: azure-identity's
    ClientSecretCredential against the cloud's authority."""
    credential = ClientSecretCredential(
        cloud.tenant_id,
        client.app_id,
        client.client_secret,
        authority=cloud.authority,
        disable_instance_discovery=True,
    )
    try:
        return str(credential.get_token(scope).token)
    finally:
        credential.close()


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


def rotator_env(cloud: LocalCloud, api: RotatorApi | None = None) -> dict[str, str]:
    """Exactly the variables that point the rotator (and any azure-identity client) at `cloud`;
    with `api`, operators' tokens for it are what the HTTP routes accept."""
    audience = {"ROTATION_API_AUDIENCE": api.audience_setting} if api is not None else {}
    return {
        "AZURE_AUTHORITY_HOST": cloud.authority,
        "ROTATION_GRAPH_URL": cloud.graph_url,
        "ROTATION_VAULTS": ",".join(f"{name}={url}" for name, url in cloud.vault_urls.items()),
        "ROTATION_TENANT_ID": cloud.tenant_id,
        "IDENTITY_ENDPOINT": cloud.identity_endpoint,
        "IDENTITY_HEADER": cloud.identity_header,
        "REQUESTS_CA_BUNDLE": cloud.ca_bundle,
        "SSL_CERT_FILE": cloud.ca_bundle,
        **audience,
    }


class RotatorCloud(LocalCloud):
    """A local cloud with the rotator's identity in it; `env` is the rotator's settings."""

    _rotator: ManagedIdentity | None = None
    _api: RotatorApi | None = None

    def start(self) -> Self:
        super().start()
        self._rotator = create_rotator_identity(self)
        self._api = register_rotator_api(self)
        self.annotate_state("rotatorApi", {"appId": self._api.app_id, "identifierUri": self._api.identifier_uri})
        return self

    @property
    def api(self) -> RotatorApi:
        """The rotator's API registration (operators' tokens name it)."""
        if self._api is None:
            raise RuntimeError("start the cloud first: the rotator's API is registered by start()")
        return self._api

    def api_client(self, display_name: str, *roles: str) -> ApiClient:
        """A caller of the rotator's API holding ``roles`` (e.g. ``OPERATOR_ROLE``)."""
        return create_api_client(self, self.api, display_name, roles)

    def api_token(self, client: ApiClient) -> str:
        """An access token for the rotator's API, as ``client``."""
        return api_token(self, client, self.api.scope)

    @property
    def rotator(self) -> ManagedIdentity:
        """The rotator's managed identity (the cloud must have been started)."""
        if self._rotator is None:
            raise RuntimeError("start the cloud first: the rotator's identity is created by start()")
        return self._rotator

    @property
    def env(self) -> dict[str, str]:
        return rotator_env(self, self._api)

    def describe(self) -> dict[str, Any]:
        """The one JSON line `python -m emulator serve` prints (its keys are an interface)."""
        return {
            "authority": self.authority,
            "graph": self.graph_url,
            "tenantId": self.tenant_id,
            "managedIdentity": {"endpoint": self.identity_endpoint, "header": self.identity_header},
            "rotator": {"objectId": self.rotator.sp_object_id, "appId": self.rotator.app_id},
            "rotatorApi": {"appId": self.api.app_id, "identifierUri": self.api.identifier_uri},
            "vaults": self.vault_urls,
            "caBundle": self.ca_bundle,
            "admin": self.admin_url,
            "env": self.env,
        }
