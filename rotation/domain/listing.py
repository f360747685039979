"""Plain values the read-only reads return: the inventory's view of an app (with its certificates),
an app's owner as the expiry notices name it, and a soft-deleted secret.

They live in the domain, not next to the adapters that fill them, so that the read-only tools and
the function app speak of them through the ports (`rotation.service.ports`) without importing an
SDK adapter. Like every domain type they never hold a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rotation.domain.model import Application


@dataclass(frozen=True)
class CertificateCredential:
    """A certificate (keyCredential) of an app as the listing shows it: only its metadata (a managed
    certificate's key is one of these, matched by the inventory through the certificate's tags)."""

    key_id: str
    display_name: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    #: The SHA-1 thumbprint (upper-case hex) Graph keeps as ``customKeyIdentifier``, when it holds one.
    thumbprint: str | None = None


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential of an app: a trust in another issuer's tokens (a GitHub
    workflow, a Kubernetes service account). It has no secret and no end date: it never expires."""

    credential_id: str
    name: str | None = None
    issuer: str | None = None
    subject: str | None = None
    audiences: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListedServicePrincipal:
    """A service principal with credentials of its own (``servicePrincipals/{id}/addPassword``,
    ``addKey``), as the inventory lists it. ``principal`` reuses `Application`'s shape: ``object_id`` is the *service
    principal's* object id, ``tags`` its own tags (where an SP password's binding lives)."""

    principal: Application
    #: Its own certificates (``keyCredentials`` of the service principal, not of the app).
    certificates: tuple[CertificateCredential, ...] = ()


@dataclass(frozen=True)
class ListedApplication:
    """An app as `ApplicationCatalog.list_applications` returns it: the rotation view plus its
    certificates' dates (the inventory lists both; the reconciler needs neither)."""

    application: Application
    certificates: tuple[CertificateCredential, ...] = ()
    #: Its federated identity credentials: a read of their own per app
    #: (``GET /applications/{id}/federatedIdentityCredentials``), filled in only by the inventory.
    federated: tuple[FederatedCredential, ...] = ()


@dataclass(frozen=True)
class ApplicationOwner:
    """An owner of an app registration (a user, a group or a service principal), as far as the
    expiry notices name one: its display name and mail, where Graph lets the rotator read them.
    Never more (no object id, no sign-in name): a notice tells people, it does not index them."""

    display_name: str | None = None
    mail: str | None = None

    @property
    def readable(self) -> bool:
        return bool(self.display_name or self.mail)


@dataclass(frozen=True)
class DeletedSecretInfo:
    """A soft-deleted secret: recoverable until ``scheduled_purge``; never its value."""

    vault: str
    name: str
    deleted: datetime | None = None
    scheduled_purge: datetime | None = None
    recovery_id: str | None = None


#: Graph's largest page for `/applications` ($top): a full listing in the fewest requests.
APPLICATION_PAGE_MAX = 999
