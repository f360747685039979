"""The local cloud: Entra ID, managed identity, Microsoft Graph and Key Vault over HTTPS on loopback.

It knows no particular client: whoever uses it creates the tenants, applications and managed
identities it needs (`LocalCloud.create_managed_identity`, or the admin API under `/_emulator/`).

`LocalCloud` is imported lazily: a process must be able to create the CA bundle (`localcloud.tls`) and
export `SSL_CERT_FILE` before aiohttp is imported, because aiohttp reads it once, at import.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud, ManagedIdentity

__all__ = ["LocalCloud", "ManagedIdentity"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from localcloud import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
