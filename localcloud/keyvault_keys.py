"""Azure Key Vault keys (RSA) in the local cloud: get, list, create, update, sign and verify.

Driven by the unmodified `azure-keyvault-keys` clients (`KeyClient`, `CryptographyClient`), so the
paths, bodies and errors copy the service's (api-version 7.x). A key is either created here
(`POST /keys/{name}/create`) or is the key behind a certificate (`managed: true`, made by
`keyvault_certificates`); its private half never leaves the cloud through /keys, only through the
certificate's secret when the certificate's policy makes it exportable, as in Key Vault.

Routing, authentication, RBAC and paging are `keyvault.py`'s: this module only resolves its own
paths (`resolve`) and runs its operations under `world.lock`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from localcloud.keyvault import (
    INVALID_PROPERTY,
    NOT_FOUND_TAIL,
    ObjectRoute,
    _Call,
    _error,
    _json,
    _page,
    _parse_common,
    _recovery_level,
    managed_by_key_vault,
    requested_version,
)
from localcloud.state import KeyRecord, KeyVersionRecord, VaultRecord, to_epoch

ACTION_PREFIX = "Microsoft.KeyVault/vaults/"
RSA_SIZES = (2048, 3072, 4096)
DEFAULT_KEY_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
KNOWN_KEY_OPS = frozenset({*DEFAULT_KEY_OPS, "import", "export"})
# By analogy with the secrets' published "Operation get is not allowed on a disabled secret." (unverified).
DISABLED_KEY = "Operation {operation} is not allowed on a disabled key."

# The JWA signature algorithms of RSA keys: hash, padding. PSS uses a salt as long as the digest,
# which is what Key Vault (and RFC 7518) does.
_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
    "PS256": hashes.SHA256,
    "PS384": hashes.SHA384,
    "PS512": hashes.SHA512,
}


# --- wire shapes -----------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def key_id(vault: VaultRecord, name: str, version: str | None = None) -> str:
    base = f"{vault.url}/keys/{name}"
    return f"{base}/{version}" if version else base


def _attributes(vault: VaultRecord, version: KeyVersionRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {"enabled": version.enabled}
    if version.not_before is not None:
        attributes["nbf"] = to_epoch(version.not_before)
    if version.expires is not None:
        attributes["exp"] = to_epoch(version.expires)
    attributes["created"] = to_epoch(version.created)
    attributes["updated"] = to_epoch(version.updated)
    attributes["recoveryLevel"] = _recovery_level(vault)
    attributes["recoverableDays"] = vault.recoverable_days
    if version.exportable:
        attributes["exportable"] = True
    return attributes


def key_bundle(vault: VaultRecord, key: KeyRecord, version: KeyVersionRecord) -> dict[str, Any]:
    """A KeyBundle: the public JWK (n, e) with its versioned `kid`, never a private component."""
    numbers = version.private_key.public_key().public_numbers()
    body: dict[str, Any] = {
        "key": {
            "kid": key_id(vault, key.name, version.version),
            "kty": "RSA",
            "key_ops": list(version.key_ops),
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        },
        "attributes": _attributes(vault, version),
    }
    if version.tags is not None:
        body["tags"] = dict(version.tags)
    if version.managed:
        body["managed"] = True
    return body


def _item(vault: VaultRecord, key: KeyRecord, version: KeyVersionRecord, *, versioned: bool) -> dict[str, Any]:
    """A KeyItem: `kid`, attributes, tags, managed; no key material."""
    item: dict[str, Any] = {
        "kid": key_id(vault, key.name, version.version if versioned else None),
        "attributes": _attributes(vault, version),
    }
    if version.tags is not None:
        item["tags"] = dict(version.tags)
    if version.managed:
        item["managed"] = True
    return item


def _not_found(request: web.Request, name: str, version: str | None = None) -> web.Response:
    label = f"{name}/{version}" if version else name
    tail = NOT_FOUND_TAIL.replace("this secret", "this key")
    return _error(request, 404, "KeyNotFound", f"A key with (name/id) {label}{tail}")


def _bad_parameter(request: web.Request, message: str) -> web.Response:
    return _error(request, 400, "BadParameter", message)


# --- records -----------------------------------------------------------------------------------------
def add_key_version(
    vault: VaultRecord,
    name: str,
    private_key: rsa.RSAPrivateKey,
    *,
    version: str,
    key_ops: list[str],
    now: datetime,
    not_before: datetime | None = None,
    expires: datetime | None = None,
    tags: dict[str, str] | None = None,
    exportable: bool = False,
    managed: bool = False,
    enabled: bool = True,
) -> KeyVersionRecord:
    """Append a version to key `name` (made if new). The caller holds `world.lock`."""
    key = vault.keys.get(name.lower())
    if key is None:
        key = KeyRecord(name=name)
        vault.keys[name.lower()] = key
    record = KeyVersionRecord(
        version=version,
        private_key=private_key,
        key_ops=list(key_ops),
        enabled=enabled,
        created=now,
        updated=now,
        not_before=not_before,
        expires=expires,
        tags=dict(tags) if tags is not None else None,
        exportable=exportable,
        managed=managed,
    )
    key.versions.append(record)
    return record


def _find(call: _Call) -> tuple[KeyRecord, KeyVersionRecord] | web.Response:
    assert call.name is not None
    key = call.vault.keys.get(call.name.lower())
    if key is None:
        return _not_found(call.request, call.name)
    version = requested_version(call, key)
    if version is None:
        return _not_found(call.request, call.name, call.version)
    return key, version


# --- operations (each runs under world.lock) -------------------------------------------------------
def _get(call: _Call, body: None) -> web.Response:
    found = _find(call)
    if isinstance(found, web.Response):
        return found
    key, version = found
    # Unlike a secret, a disabled key's public half can still be read (the service answers 200).
    return _json(call.request, key_bundle(call.vault, key, version))


def _create(call: _Call, body: dict[str, Any]) -> web.Response:
    assert call.name is not None
    vault, request = call.vault, call.request
    if call.name.lower() in vault.certificates:
        return managed_by_key_vault(request, "create", "Key")
    if call.name.lower() in vault.deleted_certificates:
        # The soft-deleted certificate's key keeps the name (unverified text, by analogy with secrets').
        return _error(
            request,
            409,
            "Conflict",
            f"Key {call.name} is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the key can only be recovered or purged.",
            "ObjectIsDeletedButRecoverable",
        )
    kty = body.get("kty")
    if kty not in ("RSA", "RSA-HSM"):
        # Elliptic-curve and symmetric keys are not modelled by the local cloud (Key Vault has them).
        return _bad_parameter(request, f"The local cloud creates RSA keys only, not kty '{kty}'.")
    size = body.get("key_size", 2048)
    if size not in RSA_SIZES:
        return _bad_parameter(request, f"Unsupported key size: {size}. Supported: 2048, 3072, 4096.")
    exponent = body.get("public_exponent", 65537)
    if exponent not in (3, 65537):
        return _bad_parameter(request, INVALID_PROPERTY)
    ops = body.get("key_ops", DEFAULT_KEY_OPS)
    if not isinstance(ops, list) or not all(op in KNOWN_KEY_OPS for op in ops):
        return _bad_parameter(request, INVALID_PROPERTY)
    parsed = _parse_common(body)
    if isinstance(parsed, str):
        return _bad_parameter(request, parsed)
    attributes, _, tags = parsed
    now = call.world.clock.now()
    record = add_key_version(
        vault,
        call.name,
        rsa.generate_private_key(public_exponent=exponent, key_size=size),
        version=uuid.uuid4().hex,
        key_ops=ops,
        now=now,
        not_before=attributes.not_before,
        expires=attributes.expires,
        tags=tags,
        enabled=True if attributes.enabled is None else attributes.enabled,
    )
    return _json(request, key_bundle(vault, vault.keys[call.name.lower()], record))


def _update(call: _Call, body: dict[str, Any]) -> web.Response:
    parsed = _parse_common(body)
    if isinstance(parsed, str):
        return _bad_parameter(call.request, parsed)
    attributes, _, tags = parsed
    found = _find(call)
    if isinstance(found, web.Response):
        return found
    key, version = found
    if version.managed:
        return managed_by_key_vault(call.request, "update", "Key")
    if attributes.enabled is not None:
        version.enabled = attributes.enabled
    if attributes.has_not_before:
        version.not_before = attributes.not_before
    if attributes.has_expires:
        version.expires = attributes.expires
    if "tags" in body:
        version.tags = dict(tags) if tags is not None else None
    if "key_ops" in body:
        ops = body["key_ops"]
        if not isinstance(ops, list) or not all(op in KNOWN_KEY_OPS for op in ops):
            return _bad_parameter(call.request, INVALID_PROPERTY)
        version.key_ops = list(ops)
    version.updated = call.world.clock.now()
    return _json(call.request, key_bundle(call.vault, key, version))


def _digest_for(
    call: _Call, body: dict[str, Any], field: str
) -> tuple[str, bytes, type[hashes.HashAlgorithm]] | web.Response:
    algorithm = body.get("alg")
    raw = body.get(field)
    if not isinstance(algorithm, str) or algorithm not in _SIGNATURE_HASHES:
        # Unverified wording; the service refuses algorithms that do not fit an RSA key with 400.
        return _bad_parameter(call.request, f"Invalid algorithm: '{algorithm}' is not supported by an RSA key.")
    digest = b64url_decode(raw) if isinstance(raw, str) else None
    hash_type = _SIGNATURE_HASHES[algorithm]
    size = hash_type().digest_size
    if digest is None or len(digest) != size:
        # Unverified wording: a digest of the wrong length for the algorithm is a bad parameter.
        return _bad_parameter(call.request, f"Invalid digest: {algorithm} needs a {size}-byte digest (base64url).")
    return algorithm, digest, hash_type


def _padding(algorithm: str, hash_type: type[hashes.HashAlgorithm]) -> padding.AsymmetricPadding:
    if algorithm.startswith("PS"):
        return padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _usable(call: _Call, version: KeyVersionRecord, operation: str) -> web.Response | None:
    if not version.enabled:
        return _error(call.request, 403, "Forbidden", DISABLED_KEY.format(operation=operation), "KeyDisabled")
    if operation not in version.key_ops:
        # Unverified wording: an operation the key's key_ops leave out is refused.
        return _error(call.request, 403, "Forbidden", f"Operation {operation} is not permitted on this key.")
    return None


@dataclass(frozen=True)
class _Signing:
    """What `sign` and `verify` both need: the key version the path names, allowed the operation, and
    the algorithm and digest the body names."""

    key: KeyRecord
    version: KeyVersionRecord
    algorithm: str
    digest: bytes
    hash_type: type[hashes.HashAlgorithm]

    def scheme(self) -> padding.AsymmetricPadding:
        return _padding(self.algorithm, self.hash_type)

    def prehashed(self) -> utils.Prehashed:
        return utils.Prehashed(self.hash_type())


def _signing(call: _Call, body: dict[str, Any], operation: str, digest_field: str) -> _Signing | web.Response:
    found = _find(call)
    if isinstance(found, web.Response):
        return found
    key, version = found
    refused = _usable(call, version, operation)
    if refused is not None:
        return refused
    parsed = _digest_for(call, body, digest_field)
    if isinstance(parsed, web.Response):
        return parsed
    return _Signing(key, version, *parsed)


def _sign(call: _Call, body: dict[str, Any]) -> web.Response:
    signing = _signing(call, body, "sign", "value")
    if isinstance(signing, web.Response):
        return signing
    key, version = signing.key, signing.version
    signature = version.private_key.sign(signing.digest, signing.scheme(), signing.prehashed())
    return _json(call.request, {"kid": key_id(call.vault, key.name, version.version), "value": b64url(signature)})


def _verify(call: _Call, body: dict[str, Any]) -> web.Response:
    signing = _signing(call, body, "verify", "digest")
    if isinstance(signing, web.Response):
        return signing
    raw = body.get("value")
    signature = b64url_decode(raw) if isinstance(raw, str) else None
    if signature is None:
        return _bad_parameter(call.request, INVALID_PROPERTY)
    try:
        signing.version.private_key.public_key().verify(
            signature, signing.digest, signing.scheme(), signing.prehashed()
        )
        valid = True
    except InvalidSignature:
        valid = False
    return _json(call.request, {"value": valid})


def _list_keys(call: _Call, body: None) -> web.Response:
    vault = call.vault
    entries = ((k, _item(vault, key, key.latest, versioned=False)) for k, key in vault.keys.items())
    return _page(call, "/keys", entries)


def _list_versions(call: _Call, body: None) -> web.Response:
    assert call.name is not None
    key = call.vault.keys.get(call.name.lower())
    entries: list[tuple[str, dict[str, Any]]] = []
    if key is not None:  # like secrets: an unknown name lists no versions
        entries = [(v.version, _item(call.vault, key, v, versioned=True)) for v in key.versions]
    return _page(call, f"/keys/{call.name}/versions", entries)


# --- routing -----------------------------------------------------------------------------------------
def object_route(
    kind: str,
    action: str,
    operation: Callable[[_Call, Any], web.Response],
    name: str | None = None,
    version: str | None = None,
    *,
    reads_body: bool = False,
) -> ObjectRoute:
    """A route of object kind `kind` (`keys`, `certificates`): its data action, and the object's RBAC
    scope `{kind}/{name}` (the vault when the route names no object)."""
    scope = f"{kind}/{name}" if name is not None else None
    return ObjectRoute(action, f"{ACTION_PREFIX}{action}", scope, operation, name, version, reads_body)


_route = functools.partial(object_route, "keys")


def resolve(method: str, segments: list[str]) -> ObjectRoute | None:
    """The keys operation of a request, or None when the path is not one of them."""
    if segments[:1] != ["keys"]:
        return None
    if len(segments) == 2 and segments[1] == "":
        segments = segments[:1]
    match method, segments:
        case "GET", ["keys"]:
            return _route("keys/read", _list_keys)
        case "GET", ["keys", name, "versions"]:
            return _route("keys/read", _list_versions, name)
        case "POST", ["keys", name, "create"]:
            return _route("keys/create/action", _create, name, reads_body=True)
        case "GET", ["keys", name] | ["keys", name, ""]:
            return _route("keys/read", _get, name)
        case "GET", ["keys", name, version]:
            return _route("keys/read", _get, name, version)
        case "PATCH", ["keys", name, version]:
            return _route("keys/update/action", _update, name, version, reads_body=True)
        case "POST", ["keys", name, version, "sign"]:
            return _route("keys/sign/action", _sign, name, version, reads_body=True)
        case "POST", ["keys", name, version, "verify"]:
            return _route("keys/verify/action", _verify, name, version, reads_body=True)
    return None
