"""One Key Vault call, whatever the object kind: retried in `with_retries`, its failures translated.

The secrets adapter (`keyvault.py`) and the certificates adapter (`certificates.py`) answer the same
to what Key Vault says the same way for every object: transport errors, 429, 408 and 5xx are
`Transient` (retried, paced per vault), 401 is a token the vault does not accept. What differs (which
role a 403 names, what a 409 means) each adapter translates itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from rotation.adapters.retrying import Transient, parse_retry_after, with_retries
from rotation.domain.errors import PermissionDeniedError

T = TypeVar("T")

SERVICE = "Key Vault"


async def call_vault(
    operation: Callable[[], Awaitable[T]],
    what: str,
    *,
    translate: Callable[[HttpResponseError], Exception],
    budget_seconds: float,
    gate_key: str,
) -> T:
    """``operation`` with retries; an HTTP refusal becomes what ``translate`` makes of it."""

    async def translated() -> T:
        try:
            return await operation()
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise Transient(SERVICE, f"transport error: {type(exc).__name__}") from exc
        except HttpResponseError as exc:
            raise translate(exc) from exc

    return await with_retries(translated, service=SERVICE, budget_seconds=budget_seconds, what=what, gate_key=gate_key)


def common_refusal(exc: HttpResponseError, vault: str, what: str) -> Exception | None:
    """What a refusal means on any object of vault ``vault``: throttled, failed or timed out
    (`Transient`), or a token the vault does not accept; None for the statuses each kind translates."""
    status = exc.status_code or 0
    headers = getattr(exc.response, "headers", None) or {}
    if status == 429:
        return Transient(SERVICE, "429 throttled", parse_retry_after(headers.get("Retry-After")), True)
    if status >= 500 or status == 408:
        return Transient(SERVICE, f"HTTP {status}", parse_retry_after(headers.get("Retry-After")))
    if status == 401:
        return PermissionDeniedError(
            SERVICE, f"a token Key Vault accepts (check the identity's tenant) for vault '{vault}'", action=what
        )
    return None


P = TypeVar("P")
V = TypeVar("V")
#: One page's items and the continuation token of the next (None after the last).
Page = tuple[list[V], str | None]


async def vault_pages(
    by_page: Callable[[str | None], AsyncIterator[AsyncIterator[P]]],
    convert: Callable[[P], V],
    retried: Callable[[Callable[[], Awaitable[Page[V]]]], Awaitable[Page[V]]],
) -> AsyncIterator[list[V]]:
    """A Key Vault list, one list call's page at a time (``nextLink`` as the continuation token), each
    page retried on its own through ``retried``: a transient failure at page 300 resumes there instead
    of listing from the start."""
    token: str | None = None
    while True:

        async def call(after: str | None = token) -> Page[V]:
            pages = by_page(after)
            async for page in pages:
                # azure-core's AsyncPageIterator keeps the next page's link here (typed loosely).
                following: str | None = getattr(pages, "continuation_token", None)
                return [convert(item) async for item in page], following
            return [], None

        page, token = await retried(call)
        yield page
        if not token:
            return
