"""The local cloud: Entra ID, managed identity, Microsoft Graph and Key Vault over HTTPS on loopback.

`LocalCloud` is imported lazily: a process must be able to create the CA bundle (`localcloud.tls`) and
export `SSL_CERT_FILE` before aiohttp is imported, because aiohttp reads it once, at import.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud

__all__ = ["LocalCloud"]


def __getattr__(name: str) -> Any:
    if name == "LocalCloud":
        from localcloud.cloud import LocalCloud

        return LocalCloud
    raise AttributeError(name)
