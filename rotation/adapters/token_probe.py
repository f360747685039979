"""Prove a client secret works: one client-credentials token request per attempt.

A *fresh* azure-identity credential is made for every attempt, so no token cache can answer in Entra's
place, and every attempt lands on whichever Entra replica the request reaches: exactly what a
consumer's next sign-in will meet.

Every attempt is bounded: by ``within`` (the validation deadline's remaining seconds, from the
caller) and never more than :data:`PROBE_TIMEOUT_SECONDS`, as socket timeouts and as one overall
timer, so a stalled token endpoint costs at most the rest of the deadline (plus a small floor that
gives the attempt at the deadline a real chance), never azure-core's default 300 s per read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.identity.aio import ClientSecretCredential

from rotation.adapters.graph import graph_scope
from rotation.adapters.retrying import CONNECT_TIMEOUT_SECONDS
from rotation.domain import aadsts
from rotation.domain.model import ProbeResult, Sensitive
from rotation.settings import is_loopback

#: The most one attempt may take. Entra answers a client-credentials request in well under a second;
#: an attempt that takes longer is counted as a transient failure and the next one tried.
PROBE_TIMEOUT_SECONDS = 20.0
#: The least one attempt gets, however little of the deadline is left: the last attempt must still
#: be able to succeed. It is also the most validation can overrun its deadline by.
PROBE_TIMEOUT_FLOOR_SECONDS = 2.0


def attempt_timeout(remaining: float | None) -> float:
    """How long one attempt may take: the remaining deadline, within the floor and the cap."""
    if remaining is None:
        return PROBE_TIMEOUT_SECONDS
    return min(PROBE_TIMEOUT_SECONDS, max(PROBE_TIMEOUT_FLOOR_SECONDS, remaining))


class EntraProbe:
    """What a probe of either kind (password, assertion) holds: Entra's authority, the Graph scope it
    asks a token for, and how many attempts it has made."""

    def __init__(self, authority_host: str, graph_url: str) -> None:
        self._authority = authority_host.rstrip("/")
        self._scope = graph_scope(graph_url)
        self.attempts = 0


class ClientCredentialsProbe(EntraProbe):
    """The `TokenProbe` port against `authority_host` (AZURE_AUTHORITY_HOST)."""

    async def probe(
        self, tenant_id: str, app_id: str, secret: Sensitive, *, within: float | None = None
    ) -> ProbeResult:
        self.attempts += 1
        limit = attempt_timeout(within)
        credential = ClientSecretCredential(
            tenant_id, app_id, secret.reveal(), **single_request_options(self._authority, limit)
        )
        return await probe_once(credential, self._scope, limit)


def single_request_options(authority: str, limit: float) -> dict[str, Any]:
    """The azure-identity credential options of a probe (password or assertion): one request to
    `authority`, bounded by `limit` seconds."""
    return {
        "authority": authority,
        # Instance discovery would ask login.microsoftonline.com about a loopback authority.
        "disable_instance_discovery": is_loopback(authority),
        # One attempt is one request: the validation loop does its own, counted retries.
        "retry_total": 0,
        "connection_timeout": min(limit, CONNECT_TIMEOUT_SECONDS),
        "read_timeout": limit,
    }


async def probe_once(credential: AsyncTokenCredential, scope: str, limit: float) -> ProbeResult:
    """Ask a fresh (never cached) `credential` for one token within `limit` seconds, close it, and
    classify the answer: issued, refused (the AADSTS code; transient when Entra gave none and the
    status says so), no answer in time or a transport error (transient). Value-free either way."""
    try:
        # The socket timeouts bound each read; this bounds the whole attempt (a trickling answer).
        async with asyncio.timeout(limit):
            await credential.get_token(scope)
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


def _describe(code: int | None, status: int) -> str:
    """A value-free description: the code and the catalogue's title, never the server's text (which
    might echo what was sent)."""
    if code is None:
        return f"sign-in failed (HTTP {status or 'n/a'})"
    entry = aadsts.lookup(code)
    return f"AADSTS{code}: {entry.title}" if entry else f"AADSTS{code}"
