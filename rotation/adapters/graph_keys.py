"""Microsoft Graph for managed certificates: an app's key credentials, ``addKey`` and ``removeKey``
(the `KeyDirectory` port), through msgraph-sdk with `GraphDirectory`'s client, error mapping and
retries (it is one: the sign-in report comes from there too).

Both writes carry a proof of possession (a JWT the caller had Key Vault sign); it is a credential for
ten minutes, so it goes into the request body and nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import replace

from msgraph.generated.applications.item.add_key.add_key_post_request_body import AddKeyPostRequestBody
from msgraph.generated.applications.item.remove_key.remove_key_post_request_body import RemoveKeyPostRequestBody
from msgraph.generated.models.application import Application as GraphApplication
from msgraph.generated.models.key_credential import KeyCredential as GraphKeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from rotation.adapters.graph import GraphDirectory, _application
from rotation.domain.certificates import KEY_TYPE, KEY_USAGE, KeyApplication, KeyCredential, normal_thumbprint
from rotation.domain.errors import GraphError, ProofRefusedError
from rotation.domain.model import Sensitive

#: The app's id, binding tags and key credentials: what a certificate rotation reads, in one request.
KEY_APPLICATION_FIELDS = ["id", "appId", "displayName", "signInAudience", "keyCredentials", "tags"]


def custom_key_thumbprint(raw: bytes | None) -> str | None:
    """The thumbprint in Graph's ``customKeyIdentifier``. For a certificate the portal, the Azure CLI and
    Graph write the thumbprint's upper-case hex TEXT there, an ``Edm.Binary``, so msgraph-sdk hands the
    base64 decoding of that text back (30 bytes): encoding them again gives the text. Twenty bytes are
    the thumbprint itself (a client that stored the raw digest)."""
    if raw is None:
        return None
    return normal_thumbprint(raw) or normal_thumbprint(base64.b64encode(raw).decode("ascii"))


def _thumbprint(item: GraphKeyCredential) -> str | None:
    """Graph's ``customKeyIdentifier`` (the SHA-1 thumbprint for a certificate); else the thumbprint
    of ``key``, which Graph returns on a ``$select`` read of one application."""
    found = custom_key_thumbprint(item.custom_key_identifier)
    if found is None and item.key:
        found = hashlib.sha1(item.key, usedforsecurity=False).hexdigest().upper()
    return found


def _key_credential(item: GraphKeyCredential) -> KeyCredential:
    return KeyCredential(
        key_id=str(item.key_id),
        display_name=item.display_name,
        start=item.start_date_time,
        end=item.end_date_time,
        thumbprint=_thumbprint(item),
    )


def _key_application(app: GraphApplication) -> KeyApplication:
    return KeyApplication(_application(app), tuple(_key_credential(k) for k in app.key_credentials or []))


def _raise_if_proof_refused(exc: ODataError, what: str) -> None:
    """A 401 on addKey/removeKey is the proof, not the rotator's token (which Graph took for the read
    before): say so instead of "grant a Graph token"; anything else goes to the shared mapping."""
    if exc.response_status_code == 401:
        raise ProofRefusedError(what) from exc


class GraphKeys(GraphDirectory):
    """`GraphDirectory` plus the `KeyDirectory` port."""

    async def get_key_application(self, app_id: str) -> KeyApplication:
        what = f"read the certificates of application {app_id}"
        return await self._read_application(app_id, KEY_APPLICATION_FIELDS, _key_application, what)

    async def add_key(
        self, object_id: str, der: bytes, display_name: str, proof: Sensitive, *, app_id: str = ""
    ) -> KeyCredential:
        body = AddKeyPostRequestBody(
            key_credential=GraphKeyCredential(type=KEY_TYPE, usage=KEY_USAGE, key=der, display_name=display_name),
            proof=proof.reveal(),
        )

        what = f"add a certificate to application {app_id or object_id}"

        async def call() -> KeyCredential:
            try:
                created = await self._client.applications.by_application_id(object_id).add_key.post(body)
            except ODataError as exc:
                _raise_if_proof_refused(exc, what)
                raise
            if created is None or created.key_id is None:
                raise GraphError("Graph addKey answered without the new key credential.")
            credential = _key_credential(created)
            if credential.thumbprint is None:
                # Graph echoes no thumbprint: it is the certificate's, which the caller knows.
                credential = replace(
                    credential, thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
                )
            return credential

        # Not idempotent: a retry after a lost answer is refused as a duplicate certificate, and the
        # next run finds the key on the app by its thumbprint and records it.
        return await self._call(call, what, app_id=app_id)

    async def remove_key(self, object_id: str, key_id: str, proof: Sensitive, *, app_id: str = "") -> bool:
        body = RemoveKeyPostRequestBody(key_id=uuid.UUID(key_id), proof=proof.reveal())
        what = f"remove certificate {key_id} of application {app_id or object_id}"

        async def call() -> bool:
            try:
                await self._client.applications.by_application_id(object_id).remove_key.post(body)
            except ODataError as exc:
                if exc.response_status_code in (400, 404) and not await self._still_has_key(object_id, key_id):
                    return False
                _raise_if_proof_refused(exc, what)
                raise
            return True

        return await self._call(call, what, app_id=app_id)

    async def _still_has_key(self, object_id: str, key_id: str) -> bool:
        app = await self._client.applications.by_application_id(object_id).get()
        return any(str(k.key_id).lower() == key_id.lower() for k in (app.key_credentials if app else None) or [])
