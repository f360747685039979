"""Prove a client secret works: one client-credentials token request per attempt.

A *fresh* azure-identity credential is made for every attempt, so no token cache can answer in Entra's
place, and every attempt lands on whichever Entra replica the request reaches: exactly what a
consumer's next sign-in will meet.
"""

from __future__ import annotations

from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.identity.aio import ClientSecretCredential

from rotation.adapters.graph import graph_scope
from rotation.domain import aadsts
from rotation.domain.model import ProbeResult, Sensitive
from rotation.settings import is_loopback


class ClientCredentialsProbe:
    """The `TokenProbe` port against `authority_host` (AZURE_AUTHORITY_HOST)."""

    def __init__(self, authority_host: str, graph_url: str) -> None:
        self._authority = authority_host.rstrip("/")
        self._scope = graph_scope(graph_url)
        self.attempts = 0

    async def probe(self, tenant_id: str, app_id: str, secret: Sensitive) -> ProbeResult:
        self.attempts += 1
        credential = ClientSecretCredential(
            tenant_id,
            app_id,
            secret.reveal(),
            authority=self._authority,
            # Instance discovery would ask login.microsoftonline.com about a loopback authority.
            disable_instance_discovery=is_loopback(self._authority),
            # One attempt is one request: the validation loop does its own, counted retries.
            retry_total=0,
        )
        try:
            await credential.get_token(self._scope)
        except ClientAuthenticationError as exc:
            code = aadsts.parse_code(exc)
            status = exc.status_code or 0
            transient = code is None and (status >= 500 or status in (0, 408, 429))
            return ProbeResult(ok=False, code=code, transient=transient, message=_describe(code, status))
        except (ServiceRequestError, ServiceResponseError) as exc:
            return ProbeResult(ok=False, transient=True, message=f"transport error: {type(exc).__name__}")
        finally:
            await credential.close()
        return ProbeResult(ok=True, message="token issued")


def _describe(code: int | None, status: int) -> str:
    """A value-free description: the code and the catalogue's title, never the server's text (which
    might echo what was sent)."""
    if code is None:
        return f"sign-in failed (HTTP {status or 'n/a'})"
    entry = aadsts.lookup(code)
    return f"AADSTS{code}: {entry.title}" if entry else f"AADSTS{code}"
