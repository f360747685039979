"""Prove a certificate works: one client-assertion token request per attempt (the `AssertionProbe` port).

The caller builds and signs the assertion through Key Vault (the private key never leaves it); this
presents it with a fresh azure-identity `ClientAssertionCredential`, so no token cache answers in
Entra's place, with the same per-attempt bounds and value-free results as the password probe
(`token_probe.py`).
"""

from __future__ import annotations

import asyncio

from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.identity.aio import ClientAssertionCredential

from rotation.adapters.graph import graph_scope
from rotation.adapters.retrying import CONNECT_TIMEOUT_SECONDS
from rotation.adapters.token_probe import _describe, attempt_timeout
from rotation.domain import aadsts
from rotation.domain.model import ProbeResult, Sensitive
from rotation.settings import is_loopback


class ClientAssertionProbe:
    """The `AssertionProbe` port against `authority_host` (AZURE_AUTHORITY_HOST)."""

    def __init__(self, authority_host: str, graph_url: str) -> None:
        self._authority = authority_host.rstrip("/")
        self._scope = graph_scope(graph_url)
        self.attempts = 0

    def token_endpoint(self, tenant_id: str) -> str:
        """Where azure-identity sends the request, hence the assertion's ``aud``."""
        return f"{self._authority}/{tenant_id}/oauth2/v2.0/token"

    async def probe_assertion(
        self, tenant_id: str, app_id: str, assertion: Sensitive, *, within: float | None = None
    ) -> ProbeResult:
        self.attempts += 1
        limit = attempt_timeout(within)
        credential = ClientAssertionCredential(
            tenant_id,
            app_id,
            assertion.reveal,  # called once, for this attempt's only request
            authority=self._authority,
            disable_instance_discovery=is_loopback(self._authority),
            retry_total=0,
            connection_timeout=min(limit, CONNECT_TIMEOUT_SECONDS),
            read_timeout=limit,
        )
        try:
            async with asyncio.timeout(limit):
                await credential.get_token(self._scope)
        except TimeoutError:
            return ProbeResult(ok=False, transient=True, message=f"no answer within {limit:g} s")
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
