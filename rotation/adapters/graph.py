"""Microsoft Graph (applications and their password credentials) through msgraph-sdk.

The base URL comes from `ROTATION_GRAPH_URL`; the token audience is Graph's, whatever host serves it.
msgraph-sdk's own retry handler is switched off so that `retrying.with_retries` is the single place
where 429 (`Retry-After`), `Directory_ConcurrencyViolation`, 5xx and transport errors are retried.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.application_item_request_builder import ApplicationItemRequestBuilder
from msgraph.generated.applications.item.owners.owners_request_builder import OwnersRequestBuilder
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)
from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
    ApplicationsWithAppIdRequestBuilder,
)
from msgraph.generated.models.application import Application as GraphApplication
from msgraph.generated.models.application_collection_response import ApplicationCollectionResponse
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.directory_object_collection_response import DirectoryObjectCollectionResponse
from msgraph.generated.models.key_credential import KeyCredential as GraphKeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential as GraphPasswordCredential
from msgraph.generated.models.password_credential_configuration import PasswordCredentialConfiguration
from msgraph.generated.models.service_principal import ServicePrincipal as GraphServicePrincipal
from msgraph.generated.models.service_principal_collection_response import ServicePrincipalCollectionResponse
from msgraph.generated.service_principals.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody as SpAddPasswordPostRequestBody,
)
from msgraph.generated.service_principals.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody as SpRemovePasswordPostRequestBody,
)
from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
    ServicePrincipalItemRequestBuilder,
)
from msgraph.generated.service_principals.service_principals_request_builder import ServicePrincipalsRequestBuilder
from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
    ServicePrincipalsWithAppIdRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from rotation.adapters.graph_reads import federated_credential, report_rows, serves_sign_in_report, thumbprint
from rotation.adapters.retrying import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    Transient,
    parse_retry_after,
    with_retries,
)
from rotation.domain.errors import (
    ApplicationNotFoundError,
    GraphError,
    PasswordLifetimePolicyError,
    PasswordLimitError,
    PermissionDeniedError,
    PolicyBlockedError,
)
from rotation.domain.listing import (
    ApplicationOwner,
    CertificateCredential,
    FederatedCredential,
    ListedApplication,
    ListedServicePrincipal,
)
from rotation.domain.model import (
    APPLICATION,
    SERVICE_PRINCIPAL,
    Application,
    CredentialObject,
    NewPassword,
    PasswordCredential,
    PasswordPolicy,
    Sensitive,
)
from rotation.domain.sign_in_report import GLOBAL_ONLY, SignInReport, refusal_reason
from rotation.settings import is_loopback

T = TypeVar("T")

SERVICE = "Microsoft Graph"
GRAPH_RESOURCE = "https://graph.microsoft.com"
# Only what the rotator uses ($select keeps reads small and is what least privilege can see).
# `tags` carries the app's bindings (which secrets its owners allow to hold its credentials): read in
# the same request as the credentials, never an extra one.
APPLICATION_FIELDS = ["id", "appId", "displayName", "signInAudience", "passwordCredentials", "keyCredentials", "tags"]
OWNED_BY = "the Microsoft Graph application permission Application.ReadWrite.OwnedBy"
# A service principal's passwords and binding: the same least-privilege read (OwnedBy covers the
# service principals the rotator owns), never signInAudience or keyCredentials.
SERVICE_PRINCIPAL_PASSWORD_FIELDS = ["id", "appId", "displayName", "passwordCredentials", "tags"]
# An owner is a user, a group or a service principal: the expiry notices name it by these two only
# (`mail` is null on service principals and on users without a mailbox; Graph answers null then).
OWNER_FIELDS = ["id", "displayName", "mail"]
#: Graph's per-credential sign-in report (beta only; needs AuditLog.Read.All and Entra ID P1/P2).
SIGN_IN_REPORT = "/beta/reports/appCredentialSignInActivities"
#: The report pages it may follow for one app (an app has a handful of credentials).
SIGN_IN_REPORT_PAGES = 10
#: The report pages the inventory follows for the whole tenant (100 rows a page by default).
SIGN_IN_REPORT_TENANT_PAGES = 2000
#: The relation the inventory expands on the app listing (at most 20 per app, 100 apps a page).
FEDERATED_RELATION = "federatedIdentityCredentials"
#: A service principal as the inventory lists it: its own credentials and tags (an SP password's binding).
SERVICE_PRINCIPAL_FIELDS = ["id", "appId", "displayName", "passwordCredentials", "keyCredentials", "tags"]


def graph_scope(graph_url: str) -> str:
    """Tokens are always for Graph; a national cloud names its own host, a loopback one does not."""
    host = urlsplit(graph_url).hostname or ""
    if is_loopback(graph_url) or host == "graph.microsoft.com":
        return f"{GRAPH_RESOURCE}/.default"
    return f"https://{host}/.default"


#: kiota's httpx client: the same bounds as Key Vault's (see `retrying.READ_TIMEOUT_SECONDS`).
_GRAPH_TIMEOUT = httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)


def create_graph_client(
    credential: AsyncTokenCredential, graph_url: str
) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """The SDK client and the httpx client under it (which only its creator can close)."""
    host = urlsplit(graph_url).hostname or "graph.microsoft.com"
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[graph_scope(graph_url)], allowed_hosts=[host])
    no_retries = {RetryHandlerOption.get_key(): RetryHandlerOption(delay=0, max_retries=0, should_retry=False)}
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(timeout=_GRAPH_TIMEOUT), options=no_retries
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = graph_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), http


def _credential(item: GraphPasswordCredential) -> PasswordCredential:
    return PasswordCredential(
        key_id=str(item.key_id),
        display_name=item.display_name,
        hint=item.hint,
        start=item.start_date_time,
        end=item.end_date_time,
    )


def _application(app: GraphApplication) -> Application:
    return Application(
        object_id=str(app.id),
        app_id=str(app.app_id),
        display_name=app.display_name,
        sign_in_audience=app.sign_in_audience,
        password_credentials=tuple(_credential(p) for p in app.password_credentials or []),
        key_credentials_count=len(app.key_credentials or []),
        tags=tuple(str(t) for t in app.tags or []),
        key_credentials=tuple(_certificate(k) for k in app.key_credentials or []),
    )


def _service_principal(sp: GraphServicePrincipal) -> Application:
    """The service principal as the `Application` whose passwords and tags the reconciler works on."""
    return Application(
        object_id=str(sp.id),
        app_id=str(sp.app_id),
        display_name=sp.display_name,
        password_credentials=tuple(_credential(p) for p in sp.password_credentials or []),
        tags=tuple(str(t) for t in sp.tags or []),
        credential_object=SERVICE_PRINCIPAL,
    )


def _certificate(item: GraphKeyCredential) -> CertificateCredential:
    return CertificateCredential(
        key_id=str(item.key_id),
        display_name=item.display_name,
        start=item.start_date_time,
        end=item.end_date_time,
        thumbprint=thumbprint(item.custom_key_identifier),
    )


def _listed_service_principal(sp: GraphServicePrincipal) -> ListedServicePrincipal:
    """The service principal in `Application`'s shape: its own object id, name, passwords and tags."""
    return ListedServicePrincipal(
        Application(
            object_id=str(sp.id),
            app_id=str(sp.app_id),
            display_name=sp.display_name,
            password_credentials=tuple(_credential(p) for p in sp.password_credentials or []),
            tags=tuple(str(t) for t in sp.tags or []),
            credential_object=SERVICE_PRINCIPAL,
        ),
        certificates=tuple(_certificate(k) for k in sp.key_credentials or []),
    )


def _listed_application(app: GraphApplication) -> ListedApplication:
    return ListedApplication(
        application=_application(app),
        certificates=tuple(_certificate(k) for k in app.key_credentials or []),
        federated=tuple(federated_credential(f) for f in app.federated_identity_credentials or []),
    )


def _owner(item: DirectoryObject) -> ApplicationOwner:
    # The subclass (User, Group, ServicePrincipal) follows the item's @odata.type; a plain
    # directoryObject is what Graph answers for an object the caller may not read: nothing to show.
    display_name = getattr(item, "display_name", None)
    mail = getattr(item, "mail", None)
    return ApplicationOwner(
        display_name=str(display_name) if display_name else None,
        mail=str(mail) if mail else None,
    )


def _error_code(exc: ODataError) -> str:
    return (exc.error.code if exc.error and exc.error.code else "") or ""


def _error_message(exc: ODataError) -> str:
    return (exc.error.message if exc.error and exc.error.message else "") or ""


class GraphDirectory:
    """The `Directory` port (read an app, add and remove its passwords, read its password policy)
    and the `ApplicationCatalog` port (list every app, find one by object id, read an app's owners):
    `GraphPort`."""

    def __init__(
        self, credential: AsyncTokenCredential, graph_url: str, *, retry_budget_seconds: float = 120.0
    ) -> None:
        self._client, self._http = create_graph_client(credential, graph_url)
        self._budget = retry_budget_seconds

    async def close(self) -> None:
        await self._http.aclose()

    async def get_application(self, app_id: str, *, on: CredentialObject = APPLICATION) -> Application:
        """By appId through the alternate key: one request, exactly the fields we use."""
        if on == SERVICE_PRINCIPAL:
            return await self._get_service_principal(app_id)
        return await self._read_application(app_id, APPLICATION_FIELDS, _application, f"read application {app_id}")

    async def _read_application(
        self, app_id: str, select: list[str], convert: Callable[[GraphApplication], T], what: str
    ) -> T:
        """``GET /applications(appId='…')?$select=…``, made into what the caller needs."""
        query = ApplicationsWithAppIdRequestBuilder.ApplicationsWithAppIdRequestBuilderGetQueryParameters(select=select)
        config = RequestConfiguration(query_parameters=query)

        async def call() -> T:
            # Not `self._client.applications_with_app_id(app_id)`: msgraph-sdk 1.65 hands that builder the
            # client's own path-parameter dict, which the builder mutates, so concurrent reads of two
            # apps race and can both fetch the same app. A private copy per call keeps them apart.
            builder = ApplicationsWithAppIdRequestBuilder(
                self._client.request_adapter, dict(self._client.path_parameters), app_id
            )
            app = await builder.get(request_configuration=config)
            if app is None:
                raise self._not_found(app_id)
            return convert(app)

        return await self._call(call, what, app_id=app_id)

    async def _get_service_principal(self, app_id: str) -> Application:
        """``GET /servicePrincipals(appId='…')?$select=…``: the app's service principal in the tenant."""
        query = ServicePrincipalsWithAppIdRequestBuilder.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters(
            select=SERVICE_PRINCIPAL_PASSWORD_FIELDS
        )
        config = RequestConfiguration(query_parameters=query)

        async def call() -> Application:
            # A private copy of the path parameters per call, for the reason given in _read_application.
            builder = ServicePrincipalsWithAppIdRequestBuilder(
                self._client.request_adapter, dict(self._client.path_parameters), app_id
            )
            sp = await builder.get(request_configuration=config)
            if sp is None:
                raise self._not_found(app_id, SERVICE_PRINCIPAL)
            return _service_principal(sp)

        return await self._call(
            call, f"read the service principal of application {app_id}", app_id=app_id, on=SERVICE_PRINCIPAL
        )

    async def add_password(
        self,
        object_id: str,
        display_name: str,
        start: datetime,
        end: datetime,
        *,
        app_id: str = "",
        on: CredentialObject = APPLICATION,
    ) -> NewPassword:
        credential = GraphPasswordCredential(display_name=display_name, start_date_time=start, end_date_time=end)

        async def call() -> NewPassword:
            if on == SERVICE_PRINCIPAL:
                sp_body = SpAddPasswordPostRequestBody(password_credential=credential)
                item = self._client.service_principals.by_service_principal_id(object_id)
                created = await item.add_password.post(sp_body)
            else:
                body = AddPasswordPostRequestBody(password_credential=credential)
                created = await self._client.applications.by_application_id(object_id).add_password.post(body)
            if created is None or not created.secret_text or created.key_id is None:
                raise GraphError("Graph addPassword answered without a secret.")
            return NewPassword(_credential(created), Sensitive(created.secret_text))

        # addPassword is not idempotent: a retry after a lost answer can leave an extra credential.
        # That is safe, because it carries this rotation's display name and the orphan sweep removes it.
        what = f"add a password to {_object_words(on)} {app_id or object_id}"
        return await self._call(call, what, app_id=app_id, on=on)

    async def remove_password(
        self, object_id: str, key_id: str, *, app_id: str = "", on: CredentialObject = APPLICATION
    ) -> bool:
        """Remove a credential; False when it was already gone (removal is idempotent for us)."""
        key = uuid.UUID(key_id)

        async def call() -> bool:
            try:
                if on == SERVICE_PRINCIPAL:
                    item = self._client.service_principals.by_service_principal_id(object_id)
                    await item.remove_password.post(SpRemovePasswordPostRequestBody(key_id=key))
                else:
                    body = RemovePasswordPostRequestBody(key_id=key)
                    await self._client.applications.by_application_id(object_id).remove_password.post(body)
            except ODataError as exc:
                if exc.response_status_code in (400, 404) and not await self._still_has(object_id, key_id, on):
                    return False
                raise
            return True

        what = f"remove password {key_id} of {_object_words(on)} {app_id or object_id}"
        return await self._call(call, what, app_id=app_id, on=on)

    async def _still_has(self, object_id: str, key_id: str, on: CredentialObject = APPLICATION) -> bool:
        if on == SERVICE_PRINCIPAL:
            sp_query = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(
                select=["id", "passwordCredentials"]
            )
            item = self._client.service_principals.by_service_principal_id(object_id)
            sp = await item.get(request_configuration=RequestConfiguration(query_parameters=sp_query))
            held = (sp.password_credentials if sp else None) or []
            return any(str(p.key_id).lower() == key_id.lower() for p in held)
        query = ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(
            select=["id", "passwordCredentials"]
        )
        builder = self._client.applications.by_application_id(object_id)
        app = await builder.get(request_configuration=RequestConfiguration(query_parameters=query))
        credentials = (app.password_credentials if app else None) or []
        return any(str(p.key_id).lower() == key_id.lower() for p in credentials)

    async def set_application_tags(
        self, object_id: str, tags: Sequence[str], *, app_id: str = "", on: CredentialObject = APPLICATION
    ) -> None:
        """``PATCH /applications/{id}`` (or ``/servicePrincipals/{id}``) with ``tags`` (the whole list:
        Graph replaces the collection).

        Only that object's owners and directory admins may; a 403 is raised as `PermissionDeniedError`.
        The command line's ``adopt`` calls it with the caller's own credential; the function app never does.
        """

        async def call() -> None:
            if on == SERVICE_PRINCIPAL:
                item = self._client.service_principals.by_service_principal_id(object_id)
                await item.patch(GraphServicePrincipal(tags=list(tags)))
            else:
                await self._client.applications.by_application_id(object_id).patch(GraphApplication(tags=list(tags)))

        await self._call(call, f"write the tags of {_object_words(on)} {app_id or object_id}", app_id=app_id, on=on)

    async def password_policy(
        self, object_id: str, created: datetime | None = None, *, on: CredentialObject = APPLICATION
    ) -> PasswordPolicy | None:
        """The password restrictions that apply to the app (or its service principal): its own
        policy, else the tenant default's application (or service principal) restrictions.

        Reading policies needs `Policy.Read.All`, which a least-privilege rotator may not have: then
        the answer is None ("unknown") and `addPassword`'s own refusal is the source of truth.
        """

        async def call() -> PasswordPolicy | None:
            try:
                if on == SERVICE_PRINCIPAL:
                    item = self._client.service_principals.by_service_principal_id(object_id)
                    own = await item.app_management_policies.get()
                else:
                    own = await self._client.applications.by_application_id(object_id).app_management_policies.get()
                for policy in (own.value if own else None) or []:
                    restrictions = policy.restrictions
                    if policy.is_enabled is not False and restrictions is not None:
                        return _password_policy(restrictions.password_credentials or [], created)
                tenant = await self._client.policies.default_app_management_policy.get()
            except ODataError as exc:
                if exc.response_status_code in (401, 403, 404):
                    return None
                raise
            rules = None
            if tenant is not None and tenant.is_enabled is not False:
                rules = (
                    tenant.service_principal_restrictions
                    if on == SERVICE_PRINCIPAL
                    else tenant.application_restrictions
                )
            if rules is None:
                return PasswordPolicy(blocked=False, max_lifetime=None)
            return _password_policy(rules.password_credentials or [], created)

        return await self._call(call, "read the app management policy")

    # --- the `ApplicationCatalog` port: reads for `inventory` and `diagnose` ----------------------
    async def list_applications(
        self,
        *,
        page_size: int = 100,
        on_page: Callable[[int], None] | None = None,
        expand_federated: bool = False,
    ) -> list[ListedApplication]:
        """Every application the rotator can read, following `@odata.nextLink` page by page.

        What "every" means is Graph's decision: the apps the rotator owns with
        `Application.ReadWrite.OwnedBy`, all of the tenant's with `Application.Read.All`. `$select`
        keeps each page to the fields the inventory shows; `on_page` is told each page's size.
        `expand_federated` adds `$expand=federatedIdentityCredentials` (Graph then pages by 100).
        """
        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            select=APPLICATION_FIELDS, top=page_size, expand=[FEDERATED_RELATION] if expand_federated else None
        )
        config = RequestConfiguration(query_parameters=query)

        async def first_page() -> ApplicationCollectionResponse | None:
            return await self._client.applications.get(request_configuration=config)

        listed: list[ListedApplication] = []
        page = await self._call(first_page, "list applications")
        while page is not None:
            items = [_listed_application(app) for app in page.value or []]
            listed.extend(items)
            if on_page is not None:
                on_page(len(items))
            next_link = page.odata_next_link
            if not next_link:
                break
            page = await self._call(self._page_reader(next_link), "list applications (next page)")
        return listed

    def _page_reader(self, next_link: str) -> Callable[[], Awaitable[ApplicationCollectionResponse | None]]:
        # A factory, not a closure over the loop variable: a retry must re-read the same page.
        async def read() -> ApplicationCollectionResponse | None:
            return await self._client.applications.with_url(next_link).get()

        return read

    async def find_application_by_object_id(self, object_id: str) -> Application | None:
        """The app whose *object* id this is, or None: tells "ProviderAddress holds the Object ID"
        apart from "no such app" when a lookup by appId found nothing."""
        query = ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(select=APPLICATION_FIELDS)
        config = RequestConfiguration(query_parameters=query)

        async def call() -> Application | None:
            try:
                app = await self._client.applications.by_application_id(object_id).get(request_configuration=config)
            except ODataError as exc:
                if exc.response_status_code in (400, 404):
                    return None
                raise
            return _application(app) if app is not None else None

        return await self._call(call, f"read application object {object_id}")

    async def list_owners(self, object_id: str) -> tuple[ApplicationOwner, ...] | None:
        """``GET /applications/{id}/owners?$select=id,displayName,mail``, following
        ``@odata.nextLink`` (Graph pages owners by 100), ``None`` when Graph will not show them.

        A 403 is not raised as a missing permission: Graph may keep some app's owners from the
        rotator, and its expiry notice is still worth sending without them.
        """
        query = OwnersRequestBuilder.OwnersRequestBuilderGetQueryParameters(select=OWNER_FIELDS)
        config = RequestConfiguration(query_parameters=query)
        builder = self._client.applications.by_application_id(object_id).owners

        def reader(next_link: str | None) -> Callable[[], Awaitable[DirectoryObjectCollectionResponse | bool | None]]:
            # A factory, not a closure over the loop variable: a retry must re-read the same page.
            async def read() -> DirectoryObjectCollectionResponse | bool | None:
                try:
                    if next_link is None:
                        return await builder.get(request_configuration=config)
                    return await builder.with_url(next_link).get()
                except ODataError as exc:
                    if exc.response_status_code in (403, 404):
                        return False
                    raise

            return read

        owners: list[ApplicationOwner] = []
        next_link: str | None = None
        while True:
            page = await self._call(reader(next_link), f"read the owners of application object {object_id}")
            if page is False:
                return None
            if not isinstance(page, DirectoryObjectCollectionResponse):
                break
            owners.extend(_owner(item) for item in page.value or [])
            next_link = page.odata_next_link
            if not next_link:
                break
        return tuple(owners)

    async def list_service_principals(
        self, *, page_size: int = 100, include_without: bool = False
    ) -> list[ListedServicePrincipal]:
        """``GET /servicePrincipals?$select=id,appId,displayName,passwordCredentials,keyCredentials,tags``,
        following ``@odata.nextLink``: only those holding credentials of their own are kept (most hold none),
        unless ``include_without`` (the sweep: a service principal whose last password was deleted)."""
        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            select=SERVICE_PRINCIPAL_FIELDS, top=page_size
        )
        config = RequestConfiguration(query_parameters=query)

        def reader(next_link: str | None) -> Callable[[], Awaitable[ServicePrincipalCollectionResponse | None]]:
            async def read() -> ServicePrincipalCollectionResponse | None:
                if next_link is None:
                    return await self._client.service_principals.get(request_configuration=config)
                return await self._client.service_principals.with_url(next_link).get()

            return read

        listed: list[ListedServicePrincipal] = []
        next_link: str | None = None
        while True:
            page = await self._call(reader(next_link), "list service principals")
            if page is None:
                break
            listed.extend(
                _listed_service_principal(sp)
                for sp in page.value or []
                if include_without or sp.password_credentials or sp.key_credentials
            )
            next_link = page.odata_next_link
            if not next_link:
                break
        return listed

    async def list_federated_credentials(self, object_id: str) -> tuple[FederatedCredential, ...] | None:
        """``GET /applications/{id}/federatedIdentityCredentials``: one request (an app holds at most
        20); ``None`` when Graph will not show them (403, 404)."""

        async def call() -> tuple[FederatedCredential, ...] | None:
            builder = self._client.applications.by_application_id(object_id).federated_identity_credentials
            try:
                page = await builder.get()
            except ODataError as exc:
                if exc.response_status_code in (403, 404):
                    return None
                raise
            return tuple(federated_credential(item) for item in (page.value if page else None) or [])

        return await self._call(call, f"read the federated credentials of application object {object_id}")

    async def sign_in_report(self) -> SignInReport:
        """The sign-in report for every credential of the tenant: one listing without ``$filter``
        (the report lists the whole tenant when unfiltered), following ``@odata.nextLink``."""
        base = str(self._client.request_adapter.base_url)
        if not serves_sign_in_report(base):
            return SignInReport.refused(GLOBAL_ONLY)
        found = await self._read_report(
            f"{self._beta_root()}{SIGN_IN_REPORT}", "read the sign-in report", SIGN_IN_REPORT_TENANT_PAGES
        )
        if isinstance(found, str):
            return SignInReport.refused(refusal_reason(found))
        return SignInReport(found)

    async def credential_sign_ins(self, app_id: str) -> dict[str, datetime | None] | None:
        """``GET /beta/reports/appCredentialSignInActivities?$filter=appId eq '…'`` (msgraph-sdk has
        no beta builders: a raw request through the same adapter, authentication and retries),
        following ``@odata.nextLink``; ``None`` on a 403 (no AuditLog.Read.All, or no P1/P2 licence)."""
        url = f"{self._beta_root()}{SIGN_IN_REPORT}?$filter=appId eq '{app_id}'"
        found = await self._read_report(url, f"read the sign-in report of application {app_id}", SIGN_IN_REPORT_PAGES)
        return None if isinstance(found, str) else found

    def _beta_root(self) -> str:
        base = str(self._client.request_adapter.base_url).rstrip("/")
        return base[: -len("/v1.0")] if base.endswith("/v1.0") else base

    async def _read_report(self, url: str, what: str, max_pages: int) -> dict[str, datetime | None] | str:
        """The report's rows from ``url`` on, page by page (msgraph-sdk has no beta builders: a raw
        request through the same adapter, authentication and retries); on a 403, Graph's error code."""
        found: dict[str, datetime | None] = {}
        next_url: str | None = url
        for _ in range(max_pages):
            if next_url is None:
                break

            async def call(page_url: str = next_url) -> bytes | str:
                info = RequestInformation()
                info.http_method = Method.GET
                info.url = page_url
                info.headers.try_add("Accept", "application/json")
                try:
                    raw: bytes | None = await self._client.request_adapter.send_primitive_async(
                        info, "bytes", {"XXX": ODataError}
                    )
                except ODataError as exc:
                    if exc.response_status_code == 403:
                        return _error_code(exc)
                    raise
                return raw if raw is not None else b"{}"

            raw = await self._call(call, what)
            if isinstance(raw, str):
                return raw
            page = json.loads(raw)
            found.update(report_rows(page))
            link = page.get("@odata.nextLink")
            next_url = link if isinstance(link, str) else None
        return found

    # --- plumbing --------------------------------------------------------------------------------
    def _not_found(self, app_id: str, on: CredentialObject = APPLICATION) -> ApplicationNotFoundError:
        if on == SERVICE_PRINCIPAL:
            return ApplicationNotFoundError(
                f"No service principal of application {app_id} was found in the rotator's tenant.",
                "The secret's CredentialObject tag says servicePrincipal: check that ProviderAddress is the "
                "Application (client) ID, that the app has a service principal in this tenant (az ad sp create "
                "--id <appId>) and that the rotator's identity is an owner of that service principal.",
            )
        return ApplicationNotFoundError(
            f"Application {app_id} was not found in the rotator's tenant.",
            "Check the secret's ProviderAddress tag (it must be the Application (client) ID, not the object "
            "ID) and that the rotator's identity is an owner of the app registration.",
        )

    async def _call(
        self,
        operation: Callable[[], Awaitable[T]],
        what: str,
        *,
        app_id: str = "",
        on: CredentialObject = APPLICATION,
    ) -> T:
        async def translated() -> T:
            try:
                return await operation()
            except httpx.TransportError as exc:
                raise Transient(SERVICE, f"transport error: {type(exc).__name__}") from exc
            except ODataError as exc:
                raise self._translate(exc, what, app_id, on) from exc

        return await with_retries(translated, service=SERVICE, budget_seconds=self._budget, what=what)

    def _translate(self, exc: ODataError, what: str, app_id: str, on: CredentialObject = APPLICATION) -> Exception:
        status = exc.response_status_code or 0
        code = _error_code(exc)
        message = _error_message(exc)
        headers: dict[str, Any] = exc.response_headers or {}
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        if status == 429 or code == "TooManyRequests":
            return Transient(SERVICE, "429 throttled", retry_after, True)
        if code == "Directory_ConcurrencyViolation":
            return Transient(SERVICE, "Directory_ConcurrencyViolation", retry_after, True)
        if status >= 500:
            return Transient(SERVICE, f"HTTP {status} {code}", retry_after)
        if status == 403:
            target = f" and ownership of application {app_id} (az ad app owner add)" if app_id else ""
            if app_id and on == SERVICE_PRINCIPAL:
                # azure-cli has no `az ad sp owner add`: Graph's owners/$ref is the way.
                target = (
                    f" and ownership of the service principal of application {app_id} "
                    "(POST /servicePrincipals/{id}/owners/$ref)"
                )
            return PermissionDeniedError(SERVICE, OWNED_BY + target, action=what)
        if status == 401:
            return PermissionDeniedError(SERVICE, "a Graph token for the rotator's identity", action=what)
        if status == 404 and app_id:
            return self._not_found(app_id, on)
        if status == 400 and code == "CredentialInvalidLifetimeAsPerAppPolicy":
            return PasswordLifetimePolicyError(
                f"An app management policy limits password lifetime for application {app_id}: {message}",
                "Lower the secret's ValidityPeriodDays tag below the policy's maximum, or grant the rotator "
                "Policy.Read.All so that it clamps the lifetime itself.",
            )
        if status == 400 and code == "CredentialTypeNotAllowedAsPerAppPolicy":
            return PolicyBlockedError(
                f"An app management policy forbids adding passwords to application {app_id}: {message}"
            )
        if status == 400 and code == "TooManyAppPasswords":
            return PasswordLimitError(
                f"Application {app_id} cannot hold another password: {message}",
                "Apps that allow personal Microsoft accounts hold at most two passwords; remove an unused one "
                "(not the one in use) and run again.",
            )
        return GraphError(f"Microsoft Graph refused to {what}: HTTP {status} {code}: {message}")


def _object_words(on: CredentialObject) -> str:
    """How a Graph operation names its object in messages."""
    return "the service principal of application" if on == SERVICE_PRINCIPAL else "application"


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            if isinstance(value, (list, tuple, set)):
                return str(next(iter(value), "")) or None
            return str(value)
    return None


def _password_policy(restrictions: list[PasswordCredentialConfiguration], created: datetime | None) -> PasswordPolicy:
    blocked = False
    max_lifetime: timedelta | None = None
    for rule in restrictions:
        state = getattr(rule.state, "value", rule.state)
        if state not in (None, "enabled"):
            continue
        after = rule.restrict_for_apps_created_after_date_time
        if after is not None and created is not None and created < after:
            continue  # the restriction only binds apps created after its date
        kind = getattr(rule.restriction_type, "value", rule.restriction_type)
        if kind == "passwordAddition":
            blocked = True
        elif kind == "passwordLifetime" and rule.max_lifetime is not None:
            max_lifetime = rule.max_lifetime if max_lifetime is None else min(max_lifetime, rule.max_lifetime)
    return PasswordPolicy(blocked=blocked, max_lifetime=max_lifetime)
