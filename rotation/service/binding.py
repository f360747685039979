"""Which managed secrets their apps' owners have bound (for `status` and the inventory).

Reads one app (or service principal, for a ``CredentialObject=servicePrincipal`` secret) per distinct
``ProviderAddress`` (never from the timer's scan, which stays list-only;
the reconcile outcome carries ``NotBound`` there). ``None`` means "could not tell" (the app could not
be read, or the tags are unusable).
"""

from __future__ import annotations

from collections.abc import Iterable

from rotation.domain.errors import RotationError, bind_command
from rotation.domain.model import Application
from rotation.domain.state import SecretStatus
from rotation.service.ports import Directory
from rotation.settings import Settings


async def bindings_of(
    settings: Settings, directory: Directory, statuses: Iterable[SecretStatus]
) -> dict[tuple[str, str], bool | None]:
    """``(vault, secret) -> bound?`` for every listed managed secret."""
    # Keyed by the object too: a service principal's password is bound in the service principal's tags.
    apps: dict[tuple[str, str], Application | None] = {}
    found: dict[tuple[str, str], bool | None] = {}
    for status in statuses:
        key = (status.vault, status.name)
        if not status.app_id:
            found[key] = None
            continue
        holder = (status.app_id, status.credential_object)
        if holder not in apps:
            try:
                apps[holder] = await directory.get_application(status.app_id, on=status.credential_object)
            except RotationError:
                apps[holder] = None
        app = apps[holder]
        found[key] = (
            None if app is None else app.binding_for(settings.vault_host(status.vault), status.name) is not None
        )
    return found


def not_bound_note(status: SecretStatus) -> str:
    """What `status` says of a managed secret whose app does not bind it: the one command that binds it."""
    command = bind_command(
        status.vault,
        status.name,
        status.app_id or "APPID",
        service_principal=status.credential_object == "servicePrincipal",
    )
    return f"not bound: {command}"
