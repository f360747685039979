"""The local cloud's in-memory world: tenants, app registrations, identities, vaults and the clock.

Everything here is plain data plus small rules that more than one service needs (which credential a
secret matches, who owns what, who holds which role). The HTTP layers (`entra`, `graph`, `keyvault`,
`admin`) read and change it under `World.lock`; handlers never await while holding it, so one
`threading.RLock` is enough for both the server's event loop and in-process admin calls from tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import secrets
import string
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GRAPH_AUDIENCE = "https://graph.microsoft.com"
VAULT_AUDIENCE = "https://vault.azure.net"
# What azure-eventgrid asks for (`https://eventgrid.azure.net/.default`) to publish to a topic.
EVENTGRID_AUDIENCE = "https://eventgrid.azure.net"
# Resource Manager answers to two resource ids; the Azure CLI asks for the first one
# (`https://management.core.windows.net//.default`), azure-identity users mostly for the second.
MANAGEMENT_RESOURCES = ("https://management.core.windows.net/", "https://management.azure.com/")

#: Which service of the cloud a token opens: Graph (any of its audiences), Key Vault, Resource
#: Manager, or an API registered in a tenant.
ResourceService = Literal["graph", "keyvault", "arm", "eventgrid", "api"]

# Graph application roles the local cloud understands.
ROLE_RW_ALL = "Application.ReadWrite.All"
ROLE_RW_OWNED = "Application.ReadWrite.OwnedBy"
ROLE_READ_ALL = "Application.Read.All"
ROLE_POLICY_READ = "Policy.Read.All"
# Reads the sign-in reports (`/beta/reports/appCredentialSignInActivities`); grants nothing on apps.
ROLE_AUDIT_LOG_READ = "AuditLog.Read.All"
GRAPH_ROLES = (ROLE_RW_ALL, ROLE_RW_OWNED, ROLE_READ_ALL, ROLE_POLICY_READ, ROLE_AUDIT_LOG_READ)

# Entra ID editions a tenant can hold: the sign-in reports need P1 or P2 (`PUT /tenants/{id}/license`).
LICENSES = ("Free", "P1", "P2")
PREMIUM_LICENSES = frozenset({"P1", "P2"})

# Event Grid data-plane roles on a topic; only the sender role publishes.
EVENTGRID_DATA_SENDER = "EventGrid Data Sender"
TOPIC_ROLES = (EVENTGRID_DATA_SENDER,)

# Key Vault data-plane roles (RBAC) and what each allows on secrets.
# Officer and Administrator hold `Microsoft.KeyVault/vaults/secrets/*`, backup and restore included;
# Secrets User only getSecret and readMetadata.
VAULT_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "Key Vault Administrator": frozenset({"read", "get", "write", "delete", "purge", "backup", "restore"}),
    "Key Vault Secrets Officer": frozenset({"read", "get", "write", "delete", "purge", "backup", "restore"}),
    "Key Vault Secrets User": frozenset({"read", "get"}),
    "Key Vault Reader": frozenset({"read"}),
}

# Certificates and keys (issue 15). Their permissions are named by the data action after
# `Microsoft.KeyVault/vaults/`, as the built-in role definitions list them ("Azure built-in roles",
# Security): Certificates Officer holds `certificates/*` (and no secrets or keys action, so it cannot
# read the secret or key behind a certificate), Crypto Officer `keys/*`, Crypto User reads keys and
# signs/verifies/encrypts with them but never creates or deletes, Reader holds `vaults/*/read`,
# Administrator `vaults/*`; Certificate User reads certificates with their secret and public key.
CERTIFICATE_PERMISSIONS = frozenset(
    f"certificates/{action}"
    for action in (
        "read",
        "create/action",
        "update/action",
        "import/action",
        "delete",
        "recover/action",
        "purge/action",
        "backup/action",
        "restore/action",
    )
)
KEY_USE_PERMISSIONS = frozenset(
    f"keys/{action}"
    for action in (
        "read",
        "update/action",
        "backup/action",
        "encrypt/action",
        "decrypt/action",
        "wrap/action",
        "unwrap/action",
        "sign/action",
        "verify/action",
    )
)
KEY_PERMISSIONS = KEY_USE_PERMISSIONS | frozenset(
    f"keys/{action}"
    for action in ("create/action", "import/action", "delete", "recover/action", "purge/action", "restore/action")
)
OBJECT_READ_PERMISSIONS = frozenset({"certificates/read", "keys/read"})
VAULT_ROLE_PERMISSIONS["Key Vault Administrator"] |= CERTIFICATE_PERMISSIONS | KEY_PERMISSIONS
VAULT_ROLE_PERMISSIONS["Key Vault Reader"] |= OBJECT_READ_PERMISSIONS
VAULT_ROLE_PERMISSIONS["Key Vault Certificates Officer"] = CERTIFICATE_PERMISSIONS
VAULT_ROLE_PERMISSIONS["Key Vault Crypto Officer"] = KEY_PERMISSIONS
VAULT_ROLE_PERMISSIONS["Key Vault Crypto User"] = KEY_USE_PERMISSIONS
VAULT_ROLE_PERMISSIONS["Key Vault Certificate User"] = frozenset({"read", "get"}) | OBJECT_READ_PERMISSIONS

PERSONAL_AUDIENCES = frozenset({"AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"})
SIGN_IN_AUDIENCES = frozenset({"AzureADMyOrg", "AzureADMultipleOrgs", *PERSONAL_AUDIENCES})

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A tenant may also be named by a verified domain; anything else is malformed (AADSTS900023).
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
VAULT_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
SECRET_NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")

_SECRET_ALPHABET = string.ascii_letters + string.digits + "~._-"


def new_guid() -> str:
    return str(uuid.uuid4())


def secret_digest(value: str) -> str:
    """Credentials keep a digest, not the value: the world never needs to show a secret again."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def generate_client_secret() -> str:
    """40 characters with `8Q~` at positions 4-6, the shape Entra issues today (see the wire facts)."""
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    tail = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))
    return f"{head}8Q~{tail}"


def to_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The IntDates Key Vault can hold: .NET's DateTime range, 0001-01-01 to 9999-12-31T23:59:59Z.
MIN_EPOCH = -62135596800
MAX_EPOCH = 253402300799


def from_epoch(value: int) -> datetime:
    """Any IntDate in [MIN_EPOCH, MAX_EPOCH] (the platform's `fromtimestamp` limits are narrower)."""
    return _EPOCH + timedelta(seconds=value)


def graph_time(moment: datetime) -> str:
    """Graph writes times as ISO 8601 with a `Z`; microseconds dropped like the service does."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Clock:
    """Real time plus an offset that the admin API can move forward (never backwards)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        self._offset += timedelta(seconds=seconds)
        return self.now()


@dataclass
class PasswordCredential:
    key_id: str
    display_name: str | None
    hint: str
    start: datetime
    end: datetime
    digest: str
    # When each Entra replica starts accepting this secret (propagation is not atomic).
    replica_ready: list[datetime]

    def to_graph(self) -> dict[str, Any]:
        return {
            "customKeyIdentifier": None,
            "displayName": self.display_name,
            "endDateTime": graph_time(self.end),
            "hint": self.hint,
            "keyId": self.key_id,
            "secretText": None,
            "startDateTime": graph_time(self.start),
        }

    def to_admin(self) -> dict[str, Any]:
        body = self.to_graph()
        body.pop("secretText")
        body.pop("customKeyIdentifier")
        body["replicaReady"] = [graph_time(t) for t in self.replica_ready]
        return body


@dataclass
class KeyCredential:
    """A certificate credential (`AsymmetricX509Cert`, usage `Verify`): the DER certificate Entra
    verifies client assertions and proofs with, and when each replica learns it.

    Graph shows the certificate's SHA-1 thumbprint (upper-case hex, as the portal and `addKey` set
    it) as `customKeyIdentifier`, and never the `key` on reads. `certificate` is empty only for
    records made before key material was modelled; such a credential verifies nothing."""

    key_id: str
    display_name: str | None
    start: datetime
    end: datetime
    certificate: bytes = b""
    # When each Entra replica starts accepting assertions signed with it (as for passwords).
    replica_ready: list[datetime] = field(default_factory=list)

    @property
    def thumbprint(self) -> str:
        """SHA-1 of the DER certificate, upper-case hex (what `x5t` names, base64url-encoded)."""
        return hashlib.sha1(self.certificate).hexdigest().upper() if self.certificate else ""  # noqa: S324

    @property
    def thumbprint_sha256(self) -> str:
        """SHA-256 of the DER certificate, upper-case hex (what `x5t#S256` names)."""
        return hashlib.sha256(self.certificate).hexdigest().upper() if self.certificate else ""

    def to_graph(self) -> dict[str, Any]:
        return {
            "customKeyIdentifier": self.thumbprint or None,
            "displayName": self.display_name,
            "endDateTime": graph_time(self.end),
            "key": None,
            "keyId": self.key_id,
            "startDateTime": graph_time(self.start),
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        }

    def to_admin(self) -> dict[str, Any]:
        body = self.to_graph()
        body["replicaReady"] = [graph_time(t) for t in self.replica_ready]
        return body


@dataclass
class FederatedCredential:
    """A federated identity credential of an app registration (workload identity federation)."""

    credential_id: str
    name: str
    issuer: str
    subject: str
    audiences: list[str] = field(default_factory=lambda: ["api://AzureADTokenExchange"])
    description: str | None = None

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.credential_id,
            "name": self.name,
            "issuer": self.issuer,
            "subject": self.subject,
            "audiences": list(self.audiences),
            "description": self.description,
        }


@dataclass
class Application:
    """An app registration together with its service principal in the same tenant."""

    object_id: str
    app_id: str
    tenant_id: str
    display_name: str
    sign_in_audience: str
    created: datetime
    sp_object_id: str
    owners: set[str] = field(default_factory=set)
    passwords: list[PasswordCredential] = field(default_factory=list)
    certificates: list[KeyCredential] = field(default_factory=list)
    # Graph application roles granted to this app's service principal (for identities).
    graph_roles: set[str] = field(default_factory=set)
    # Per-app management policy (overrides the tenant default when set).
    policy: AppManagementPolicy | None = None
    # An API this app exposes: the URIs a client may name it by (`api://…`) and its app roles.
    identifier_uris: list[str] = field(default_factory=list)
    app_roles: list[AppRole] = field(default_factory=list)
    # App roles assigned on this app (as a resource): service principal object id -> role values.
    app_role_assignments: dict[str, set[str]] = field(default_factory=dict)
    # The application's `tags` (custom strings; Graph lets owners and admins write them).
    tags: list[str] = field(default_factory=list)
    # The owners of its service principal (object ids): a directory relation of its own, apart from
    # the app registration's `owners`.
    sp_owners: set[str] = field(default_factory=set)
    # Passwords on the service principal itself (Graph `servicePrincipals/{id}/addPassword`): Entra
    # accepts them for client credentials like the application's, but they live on another object.
    sp_passwords: list[PasswordCredential] = field(default_factory=list)
    # The service principal's own `tags` (its owners and admins write them), apart from the app's.
    sp_tags: list[str] = field(default_factory=list)
    federated_credentials: list[FederatedCredential] = field(default_factory=list)
    # Certificates on the service principal itself (`servicePrincipals/{id}/addKey`).
    sp_certificates: list[KeyCredential] = field(default_factory=list)

    def names_resource(self, resource: str) -> bool:
        """Whether a client naming `resource` (`{resource}/.default`) means this app's API."""
        wanted = resource.rstrip("/").lower()
        return wanted == self.app_id.lower() or wanted in (u.rstrip("/").lower() for u in self.identifier_uris)

    def roles_of(self, sp_object_id: str) -> frozenset[str]:
        """The app roles of this API that the service principal has been assigned (defined ones only)."""
        defined = {r.value for r in self.app_roles if r.enabled}
        return frozenset(self.app_role_assignments.get(sp_object_id.lower(), set()) & defined)

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.object_id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "signInAudience": self.sign_in_audience,
            "createdDateTime": graph_time(self.created),
            "passwordCredentials": [p.to_graph() for p in self.passwords],
            "keyCredentials": [k.to_graph() for k in self.certificates],
            "publisherDomain": "contoso.onmicrosoft.com",
            "tags": list(self.tags),
        }

    def to_admin(self) -> dict[str, Any]:
        return {
            "id": self.object_id,
            "appId": self.app_id,
            "tenantId": self.tenant_id,
            "displayName": self.display_name,
            "signInAudience": self.sign_in_audience,
            "servicePrincipalId": self.sp_object_id,
            "owners": sorted(self.owners),
            "servicePrincipalOwners": sorted(self.sp_owners),
            "graphAppRoles": sorted(self.graph_roles),
            "passwordCredentials": [p.to_admin() for p in self.passwords],
            "keyCredentials": [k.to_admin() for k in self.certificates],
            "servicePrincipalPasswordCredentials": [p.to_admin() for p in self.sp_passwords],
            "servicePrincipalTags": list(self.sp_tags),
            "servicePrincipalKeyCredentials": [k.to_admin() for k in self.sp_certificates],
            "federatedIdentityCredentials": [f.to_graph() for f in self.federated_credentials],
            "policy": self.policy.to_admin() if self.policy else None,
            "identifierUris": list(self.identifier_uris),
            "appRoles": [r.to_admin() for r in self.app_roles],
            "appRoleAssignments": {sp: sorted(roles) for sp, roles in sorted(self.app_role_assignments.items())},
            "tags": list(self.tags),
        }


@dataclass
class AppRole:
    """An app role an API defines (Graph's `appRole`): who holds it is an assignment on the API."""

    role_id: str
    value: str
    display_name: str
    allowed_member_types: tuple[str, ...] = ("Application",)
    enabled: bool = True

    def to_admin(self) -> dict[str, Any]:
        return {
            "id": self.role_id,
            "value": self.value,
            "displayName": self.display_name,
            "allowedMemberTypes": list(self.allowed_member_types),
            "isEnabled": self.enabled,
        }


ALL_VAULTS = "*"


@dataclass
class ManagedIdentityRecord:
    """A managed identity: a service principal the identity endpoint issues tokens for, no secret.

    `app` backs it (the world's tokens name an Application); `vault_roles` keeps only the roles held on
    every vault (scope `*`), which each vault created later receives too; roles on one named vault live
    in that vault's own role assignments.
    """

    app: Application
    system_assigned: bool
    all_vault_roles: set[str] = field(default_factory=set)

    def to_admin(self) -> dict[str, Any]:
        return {
            "objectId": self.app.sp_object_id,
            "appId": self.app.app_id,
            "tenantId": self.app.tenant_id,
            "displayName": self.app.display_name,
            "systemAssigned": self.system_assigned,
            "graphAppRoles": sorted(self.app.graph_roles),
            "allVaultRoles": sorted(self.all_vault_roles),
        }


@dataclass
class AppManagementPolicy:
    password_max_lifetime: timedelta | None = None
    block_password_addition: bool = False

    def to_admin(self) -> dict[str, Any]:
        return {
            "passwordMaxLifetimeSeconds": (
                self.password_max_lifetime.total_seconds() if self.password_max_lifetime else None
            ),
            "blockPasswordAddition": self.block_password_addition,
        }


@dataclass
class Tenant:
    tenant_id: str
    default_domain: str
    applications: dict[str, Application] = field(default_factory=dict)  # by object id
    default_policy: AppManagementPolicy | None = None
    # The tenant's Entra ID edition. P1 by default, so that the sign-in reports answer unless a test
    # takes the license away (what a tenant on the free edition sees).
    license: str = "P1"


@dataclass
class SecretVersionRecord:
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    created: datetime
    updated: datetime
    not_before: datetime | None
    expires: datetime | None
    near_expiry_emitted: bool = False
    expired_emitted: bool = False
    # The key of the certificate this version backs (`kid`), None for a secret set directly. Such a
    # version is managed by Key Vault: it cannot be set, updated or deleted through /secrets.
    certificate_key_id: str | None = None


@dataclass
class SecretRecord:
    name: str
    versions: list[SecretVersionRecord] = field(default_factory=list)  # oldest first

    @property
    def latest(self) -> SecretVersionRecord:
        return self.versions[-1]

    def find(self, version: str) -> SecretVersionRecord | None:
        for record in self.versions:
            if record.version == version:
                return record
        return None


@dataclass
class DeletedSecretRecord:
    secret: SecretRecord
    deleted: datetime
    scheduled_purge: datetime


@dataclass
class VaultRecord:
    name: str
    url: str = ""  # set when its listener is bound
    port: int = 0
    recoverable_days: int = 90
    secrets: dict[str, SecretRecord] = field(default_factory=dict)  # by lower-case name
    deleted: dict[str, DeletedSecretRecord] = field(default_factory=dict)
    # object id -> roles on this vault
    role_assignments: dict[str, set[str]] = field(default_factory=dict)
    # Certificates and the keys behind them (by lower-case name; a certificate `x` also owns the
    # secret `x` and the key `x`, one name space as in Key Vault).
    certificates: dict[str, CertificateRecord] = field(default_factory=dict)
    deleted_certificates: dict[str, DeletedCertificateRecord] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    # How long a `Self` certificate issuance stays pending (world clock); 0 completes it at once.
    certificate_issuance_seconds: float = 0.0

    def permissions_of(self, object_id: str) -> frozenset[str]:
        allowed: set[str] = set()
        for role in self.role_assignments.get(object_id, set()):
            allowed |= VAULT_ROLE_PERMISSIONS.get(role, frozenset())
        return frozenset(allowed)

    def resource_id(self, tenant_id: str) -> str:
        return (
            f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-local/providers/"
            f"Microsoft.KeyVault/vaults/{self.name}"
        )


# --- Key Vault keys and certificates (issue 15) ----------------------------------------------------
@dataclass
class KeyVersionRecord:
    """One version of a Key Vault key. The private half never leaves the cloud through /keys; a
    certificate's exportable key also lives, as Key Vault has it, in the certificate's secret."""

    version: str
    private_key: rsa.RSAPrivateKey
    key_ops: list[str]
    enabled: bool
    created: datetime
    updated: datetime
    not_before: datetime | None
    expires: datetime | None
    tags: dict[str, str] | None
    exportable: bool = False
    managed: bool = False  # backs a certificate


@dataclass
class KeyRecord:
    name: str
    versions: list[KeyVersionRecord] = field(default_factory=list)  # oldest first

    @property
    def latest(self) -> KeyVersionRecord:
        return self.versions[-1]

    def find(self, version: str) -> KeyVersionRecord | None:
        return next((v for v in self.versions if v.version == version), None)


@dataclass
class CertificateVersionRecord:
    """One issued certificate; its key and secret versions carry the same version id."""

    version: str
    der: bytes
    enabled: bool
    created: datetime
    updated: datetime
    not_before: datetime
    expires: datetime
    tags: dict[str, str] | None
    content_type: str
    near_expiry_emitted: bool = False
    expired_emitted: bool = False

    @property
    def thumbprint(self) -> bytes:
        """SHA-1 of the DER certificate: Key Vault's `x5t` (and Entra's keyCredential thumbprint)."""
        return hashlib.sha1(self.der, usedforsecurity=False).digest()


@dataclass
class CertificateOperationRecord:
    """The pending operation of a certificate (`/certificates/{name}/pending`)."""

    request_id: str
    issuer: str
    csr: bytes
    private_key: rsa.RSAPrivateKey
    created: datetime
    ready_at: datetime  # when a `Self` issuance completes (the world's clock)
    enabled: bool
    tags: dict[str, str] | None
    status: str = "inProgress"  # inProgress, completed, cancelled
    cancellation_requested: bool = False


@dataclass
class CertificateRecord:
    name: str
    policy: dict[str, Any]  # the wire policy without id and attributes
    policy_created: datetime
    policy_updated: datetime
    versions: list[CertificateVersionRecord] = field(default_factory=list)  # oldest first
    pending: CertificateOperationRecord | None = None

    @property
    def latest(self) -> CertificateVersionRecord | None:
        return self.versions[-1] if self.versions else None

    def find(self, version: str) -> CertificateVersionRecord | None:
        return next((v for v in self.versions if v.version == version), None)


@dataclass
class DeletedCertificateRecord:
    """A soft-deleted certificate with the secret and key behind it (they go and come back with it)."""

    certificate: CertificateRecord
    secret: SecretRecord | None
    key: KeyRecord | None
    deleted: datetime
    scheduled_purge: datetime


@dataclass(frozen=True)
class SignInRecord:
    """One successful client-credentials sign-in, as Entra's sign-in log keeps it: which app, with
    which credential (its keyId), for which resource, when (the world's clock) and under which
    request id (the token response's `x-ms-request-id`).

    The credential's type and dates are copied at sign-in time, so that the report can still describe
    a credential that has since been removed from the app."""

    request_id: str
    time: datetime
    tenant_id: str
    app_id: str
    app_object_id: str
    sp_object_id: str
    key_id: str
    key_type: Literal["clientSecret", "certificate"]
    key_created: datetime
    key_expires: datetime
    resource_id: str  # the accessed resource's appId (Graph's, Key Vault's, an API's)
    # Which object holds the credential: the app registration, or its service principal.
    credential_origin: Literal["application", "servicePrincipal"] = "application"

    def to_admin(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "time": graph_time(self.time),
            "tenantId": self.tenant_id,
            "appId": self.app_id,
            "keyId": self.key_id,
            "keyType": self.key_type,
            "resourceId": self.resource_id,
            "credentialOrigin": self.credential_origin,
        }


@dataclass
class TopicRecord:
    """An Event Grid (basic) custom topic: its own port, its data-plane role assignments and what
    publishers sent to it (each batch's events in order, as received)."""

    name: str
    url: str = ""  # set when its listener is bound: `https://127.0.0.1:{port}`
    port: int = 0
    role_assignments: dict[str, set[str]] = field(default_factory=dict)  # object id -> roles
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """What `az eventgrid topic show --query endpoint` gives: the full publish URL."""
        return f"{self.url}/api/events"

    def resource_id(self) -> str:
        return (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-local/providers/"
            f"Microsoft.EventGrid/topics/{self.name}"
        )

    def to_admin(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "endpoint": self.endpoint,
            "resourceId": self.resource_id(),
            "roleAssignments": {oid: sorted(roles) for oid, roles in sorted(self.role_assignments.items())},
            "eventCount": len(self.events),
        }


@dataclass(frozen=True)
class TokenResource:
    """What a client named as `{resource}/.default` (or as a managed identity's `resource`): the
    token's `aud` and the service that accepts it."""

    audience: str
    service: ResourceService
    api: Application | None = None  # the registered API, for service "api"


@dataclass
class IssuedToken:
    """What an issued access token stands for. Tokens are RS256 JWTs signed with the cloud's key (any
    client may read and verify them); the services of the local cloud look the token string up here
    instead, so an admin call can age one and a token never issued here is never accepted."""

    subject_object_id: str
    app_id: str
    tenant_id: str
    audience: str
    roles: frozenset[str]
    expires: datetime
    service: ResourceService = "api"


@dataclass
class Fault:
    fault_id: str
    service: str
    method: str | None
    path_regex: re.Pattern[str] | None
    status: int | None
    count: int
    delay_ms: int
    drop: bool
    code: str | None = None
    #: No answer at all: the connection stays open and silent (for ``delay_ms``, or until the caller
    #: hangs up), then is dropped. What a hung endpoint looks like to a client without a timeout.
    stall: bool = False

    def matches(self, service: str, method: str, path: str) -> bool:
        if self.count <= 0 or self.service != service:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_regex and not self.path_regex.search(path))

    def to_admin(self) -> dict[str, Any]:
        return {
            "id": self.fault_id,
            "service": self.service,
            "method": self.method,
            "pathRegex": self.path_regex.pattern if self.path_regex else None,
            "status": self.status,
            "count": self.count,
            "delayMs": self.delay_ms,
            "drop": self.drop,
            "code": self.code,
            "stall": self.stall,
        }


@dataclass
class TokenBucket:
    capacity: float
    refill_per_second: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token; return 0 if granted, else the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill_per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.refill_per_second


@dataclass
class ThrottleConfig:
    """Off by default. Limits are per window, like the real services document them."""

    enabled: bool = False
    graph_writes: int = 3000
    graph_window_seconds: float = 150.0
    vault_creates: int = 300
    vault_window_seconds: float = 10.0

    def to_admin(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "graphWrites": self.graph_writes,
            "graphWindowSeconds": self.graph_window_seconds,
            "vaultCreates": self.vault_creates,
            "vaultWindowSeconds": self.vault_window_seconds,
        }


@dataclass
class Config:
    propagation_seconds: float = 0.0
    replicas: int = 3
    latency_ms: int = 0
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    # How long a sign-in takes to reach the sign-in activity report. Microsoft publishes no figure for
    # this (beta) report and it is aggregated by day; a day is what clients should plan for.
    sign_in_report_delay_seconds: float = 86400.0

    def to_admin(self) -> dict[str, Any]:
        return {
            "propagationSeconds": self.propagation_seconds,
            "replicas": self.replicas,
            "latencyMs": self.latency_ms,
            "throttle": self.throttle.to_admin(),
            "signInReportDelaySeconds": self.sign_in_report_delay_seconds,
        }


Service = Literal["entra", "graph", "keyvault", "identity", "arm", "eventgrid", "admin"]


@dataclass
class RequestRecord:
    seq: int
    service: str
    method: str
    path: str
    status: int
    caller: str | None

    def to_admin(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "service": self.service,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "caller": self.caller,
        }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """The cloud's token-signing key (RSA 2048, RS256) and its public half as a JWK, as Entra
    publishes its keys at the `jwks_uri` of its OpenID configuration."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.public_key().public_numbers()
        # Entra's kid is the key's thumbprint; a JWK thumbprint (RFC 7638) is as stable.
        canonical = json.dumps(
            {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
            separators=(",", ":"),
            sort_keys=True,
        )
        return cls(key, _b64url(hashlib.sha256(canonical.encode()).digest()))

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid}
        signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
        signature = self.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class World:
    """All state of one local cloud."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.random = random.Random(seed)
        self.config = Config()
        self.tenants: dict[str, Tenant] = {}
        self.vaults: dict[str, VaultRecord] = {}  # by lower-case name
        self.topics: dict[str, TopicRecord] = {}  # Event Grid topics, by lower-case name
        # Every successful client-credentials sign-in, oldest first (the sign-in log).
        self.sign_ins: list[SignInRecord] = []
        self.tokens: dict[str, IssuedToken] = {}
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.events: list[dict[str, Any]] = []
        self.issued_secrets: list[str] = []
        self.buckets: dict[str, TokenBucket] = {}
        self.managed_identity_header = secrets.token_urlsafe(24)
        # Managed identities by the object id of their service principal.
        self.managed_identities: dict[str, ManagedIdentityRecord] = {}
        self.default_tenant_id = ""
        self.signing_key = SigningKey.generate()
        # Key Vault backups are encrypted with a key of the cloud's own: a blob restores into any
        # vault of this cloud (Azure: of the same subscription and geography), and nowhere else.
        self.backup_key = secrets.token_bytes(32)

    # --- directory -------------------------------------------------------------------------------
    def create_tenant(self, tenant_id: str | None = None) -> Tenant:
        tenant_id = tenant_id or new_guid()
        tenant = Tenant(tenant_id=tenant_id, default_domain=f"t{tenant_id[:8]}.onmicrosoft.com")
        self.tenants[tenant_id] = tenant
        return tenant

    def find_tenant(self, name: str) -> Tenant | None:
        """A tenant is named by its id or by its default domain."""
        lowered = name.lower()
        for tenant in self.tenants.values():
            if tenant.tenant_id == lowered or tenant.default_domain == lowered:
                return tenant
        return None

    def create_application(
        self,
        tenant: Tenant,
        display_name: str,
        sign_in_audience: str = "AzureADMyOrg",
        graph_roles: Iterable[str] = (),
    ) -> Application:
        app = Application(
            object_id=new_guid(),
            app_id=new_guid(),
            tenant_id=tenant.tenant_id,
            display_name=display_name,
            sign_in_audience=sign_in_audience,
            created=self.clock.now(),
            sp_object_id=new_guid(),
            graph_roles=set(graph_roles),
        )
        tenant.applications[app.object_id] = app
        return app

    def all_applications(self) -> Iterable[Application]:
        for tenant in self.tenants.values():
            yield from tenant.applications.values()

    def application_by_sp(self, sp_object_id: str) -> Application | None:
        for app in self.all_applications():
            if app.sp_object_id == sp_object_id:
                return app
        return None

    def is_managed_identity(self, app: Application) -> bool:
        """A managed identity is a service principal without an app registration; the world backs it
        with an Application, which Graph's `applications` must therefore never show."""
        return app.sp_object_id in self.managed_identities

    def application_by_app_id(self, tenant: Tenant, app_id: str) -> Application | None:
        for app in tenant.applications.values():
            if app.app_id.lower() == app_id.lower():
                return app
        return None

    def effective_policy(self, app: Application) -> AppManagementPolicy | None:
        if app.policy is not None:
            return app.policy
        return self.tenants[app.tenant_id].default_policy

    def add_password(
        self,
        app: Application,
        display_name: str | None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        on_service_principal: bool = False,
    ) -> tuple[PasswordCredential, str]:
        """A new password on the app registration, or (`on_service_principal`) on its service principal."""
        now = self.clock.now()
        start = start or now
        end = end or start + timedelta(days=730)  # Graph's default: two years
        value = generate_client_secret()
        # Each replica learns the new secret at its own moment within the propagation window.
        window = max(0.0, self.config.propagation_seconds)
        ready = [now + timedelta(seconds=self.random.uniform(0, window)) for _ in range(self.config.replicas)]
        credential = PasswordCredential(
            key_id=new_guid(),
            display_name=display_name,
            hint=value[:3],
            start=start,
            end=end,
            digest=secret_digest(value),
            replica_ready=ready,
        )
        (app.sp_passwords if on_service_principal else app.passwords).append(credential)
        self.issued_secrets.append(value)
        return credential, value

    def replica_schedule(self) -> list[datetime]:
        """When each replica learns a credential added now, within the propagation window."""
        now = self.clock.now()
        window = max(0.0, self.config.propagation_seconds)
        return [now + timedelta(seconds=self.random.uniform(0, window)) for _ in range(self.config.replicas)]

    def find_managed_identity(
        self, *, client_id: str | None = None, object_id: str | None = None
    ) -> ManagedIdentityRecord | None:
        """By client id or object id; with neither, the system-assigned identity (as App Service does)."""
        for identity in self.managed_identities.values():
            if client_id is not None:
                if identity.app.app_id.lower() == client_id.lower():
                    return identity
            elif object_id is not None:
                if identity.app.sp_object_id.lower() == object_id.lower():
                    return identity
            elif identity.system_assigned:
                return identity
        return None

    # --- tokens ----------------------------------------------------------------------------------
    def issue_token(
        self, app: Application, resource: TokenResource, lifetime: int = 3599, *, issuer_base: str = ""
    ) -> tuple[str, int]:
        """A v2.0 access token for `app`'s service principal, for `resource` (see `resolve_resource`),
        as an RS256 JWT.

        `roles` are the app roles the principal holds on that resource: its Graph app roles for
        Graph (whichever of Graph's audiences was named), its assignments on a registered API, none
        for Key Vault and Resource Manager (their RBAC is looked up per request). `issuer_base` is
        the authority as the client reached it.
        """
        if resource.service == "graph":
            roles = frozenset(app.graph_roles)
        elif resource.api is not None:
            roles = resource.api.roles_of(app.sp_object_id)
        else:
            roles = frozenset()
        audience = resource.audience
        # Token lifetime runs on real time, not the movable clock: moving the clock a month to make
        # a secret due must not invalidate every token the SDKs have cached.
        issued = datetime.now(UTC).replace(microsecond=0)
        expires = issued + timedelta(seconds=lifetime)
        issuer = f"{issuer_base}/{app.tenant_id}/v2.0"
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": to_epoch(issued),
            "nbf": to_epoch(issued),
            "exp": to_epoch(expires),
            "aio": base64.urlsafe_b64encode(secrets.token_bytes(24)).decode("ascii").rstrip("="),
            "appid": app.app_id,
            "appidacr": "1",
            "azp": app.app_id,
            "azpacr": "1",
            "idp": issuer,
            "idtyp": "app",
            "oid": app.sp_object_id,
            "rh": "0.local.",
            "sub": app.sp_object_id,
            "tid": app.tenant_id,
            "uti": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("="),
            "ver": "2.0",
        }
        if roles:
            claims["roles"] = sorted(roles)
        token = self.signing_key.sign(claims)
        self.tokens[token] = IssuedToken(
            subject_object_id=app.sp_object_id,
            app_id=app.app_id,
            tenant_id=app.tenant_id,
            audience=audience,
            roles=roles,
            expires=expires,
            service=resource.service,
        )
        return token, lifetime

    def resolve_resource(self, resource: str, tenant_id: str, *, origin: str) -> TokenResource | None:
        """The resource a client names (`scope` without `/.default`, or a managed identity's
        `resource`), or None when the tenant knows no such resource (Entra's AADSTS500011).

        `origin` is this cloud's own origin as the client reached it (`https://127.0.0.1:8443`): the
        local cloud's Graph audience, as a national cloud has its own (`az cloud register
        --endpoint-microsoft-graph-resource-id` names it, and the Azure CLI asks for tokens for it).
        """
        bare = resource.rstrip("/")
        if bare == GRAPH_AUDIENCE:
            return TokenResource(GRAPH_AUDIENCE, "graph")
        if origin and bare.lower() == origin.rstrip("/").lower():
            return TokenResource(origin.rstrip("/"), "graph")
        if bare == VAULT_AUDIENCE:
            return TokenResource(VAULT_AUDIENCE, "keyvault")
        if bare == EVENTGRID_AUDIENCE:
            return TokenResource(EVENTGRID_AUDIENCE, "eventgrid")
        if bare in (m.rstrip("/") for m in MANAGEMENT_RESOURCES):
            # v1 resources keep the spelling the client asked for: `.../` stays `.../`.
            return TokenResource(bare + "/" if resource.endswith("/") else bare, "arm")
        api = self.api_application(resource, tenant_id)
        return TokenResource(api.app_id, "api", api) if api is not None else None

    def api_application(self, resource: str, tenant_id: str) -> Application | None:
        """The app registration in `tenant_id` whose API `resource` names (app id or identifier URI)."""
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return None
        for candidate in tenant.applications.values():
            if (candidate.identifier_uris or candidate.app_roles) and candidate.names_resource(resource):
                return candidate
        return None

    def token_from_header(self, authorization: str | None) -> IssuedToken | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = self.tokens.get(authorization[7:].strip())
        if token is None or token.expires <= datetime.now(UTC):
            return None
        return token

    # --- vaults and topics -----------------------------------------------------------------------
    def vault(self, name: str) -> VaultRecord | None:
        return self.vaults.get(name.lower())

    def topic(self, name: str) -> TopicRecord | None:
        return self.topics.get(name.lower())

    # --- faults and throttling -------------------------------------------------------------------
    def take_fault(self, service: str, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(service, method, path):
                fault.count -= 1
                return fault
        return None

    def throttle(self, key: str, capacity: int, window_seconds: float, now: float) -> float:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(capacity, capacity / window_seconds, float(capacity), now)
            self.buckets[key] = bucket
        return bucket.take(now)

    def record(self, service: str, method: str, path: str, status: int, caller: str | None) -> RequestRecord:
        entry = RequestRecord(len(self.requests) + 1, service, method, path, status, caller)
        self.requests.append(entry)
        return entry

    def emit_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
