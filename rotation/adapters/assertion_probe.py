"""Prove a certificate works: one client-assertion token request per attempt (the `AssertionProbe` port).

The caller builds and signs the assertion through Key Vault (the private key never leaves it); this
presents it with a fresh azure-identity `ClientAssertionCredential`, so no token cache answers in
Entra's place, with the same per-attempt bounds and value-free results as the password probe
(`token_probe.py`).
"""

from __future__ import annotations

from azure.identity.aio import ClientAssertionCredential

from rotation.adapters.token_probe import EntraProbe, attempt_timeout, probe_once, single_request_options
from rotation.domain.model import ProbeResult, Sensitive


class ClientAssertionProbe(EntraProbe):
    """The `AssertionProbe` port against `authority_host` (AZURE_AUTHORITY_HOST)."""

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
            **single_request_options(self._authority, limit),
        )
        return await probe_once(credential, self._scope, limit)
