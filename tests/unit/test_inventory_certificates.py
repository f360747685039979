"""The inventory's classification of key credentials by the vaults' managed certificates (issue 15):
managed, retiring, orphaned, unmanaged and dangling exactly like passwords, with the certificate in
the vault/secret columns, the binding check and a held retirement; and, while ``ROTATION_CERTIFICATES``
is off, a note that says so instead of claiming certificates are never rotated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from rotation.domain.certificates import CertificateVersion
from rotation.domain.errors import PermissionDeniedError
from rotation.domain.listing import CertificateCredential, ListedApplication, ListedServicePrincipal
from rotation.domain.model import Application, PasswordCredential, SecretVersion, binding_tag
from rotation.tools.inventory import InventoryRow, classify
from rotation.tools.inventory.classify import CERTIFICATES_OFF
from rotation.tools.inventory.model import Standing

from .samples import APP_ID, KEY_A, KEY_B, KEY_C, NOW

DAY = timedelta(days=1)
HOST = "kv.vault.azure.net"
ROTATION_ID = "20250101T000000Z-0badc0de"
KEY_ORPHAN = "dddddddd-0000-0000-0000-000000000004"
KEY_HUMAN = "eeeeeeee-0000-0000-0000-000000000005"
KEY_GONE = "ffffffff-0000-0000-0000-000000000006"
KEY_SP = "abababab-0000-0000-0000-000000000007"
KEY_PASSWORD = "cdcdcdcd-0000-0000-0000-000000000008"
THUMBPRINT = "3D2F4A8E4AAE2E0A4F1D3F9D7C3F2AB2F6D1C0A1"


def _key(key_id: str, name: str, days: float = 200, started_days_ago: float = 30) -> CertificateCredential:
    return CertificateCredential(key_id, name, NOW - started_days_ago * DAY, NOW + days * DAY, THUMBPRINT)


def _certificate(name: str, vault: str = "kv", **tags: str) -> CertificateVersion:
    properties = SecretVersion(
        vault=vault, name=name, version="2" * 32, tags=dict(tags), enabled=True, expires=NOW + 300 * DAY
    )
    return CertificateVersion(properties, THUMBPRINT)


def _app(*keys: CertificateCredential, bound: tuple[str, ...] = ("signer",)) -> ListedApplication:
    application = Application(
        "0a000000-0000-0000-0000-000000000001",
        APP_ID,
        "Reports signer",
        password_credentials=(PasswordCredential(KEY_PASSWORD, "by hand", "abc", NOW - DAY, NOW + 90 * DAY),),
        tags=tuple(binding_tag(HOST, name) for name in bound),
    )
    return ListedApplication(application, certificates=keys)


def _rows(
    apps: list[ListedApplication],
    certificates: list[CertificateVersion] | None,
    secrets: list[SecretVersion] | None = None,
    principals: list[ListedServicePrincipal] | None = None,
) -> dict[str, InventoryRow]:
    rows = classify(
        apps,
        secrets or [],
        NOW,
        orphan_margin=timedelta(hours=1),
        vault_hosts={"kv": HOST},
        service_principals=principals or [],
        certificates=certificates,
    )
    return {row.key_id: row for row in rows}


def _signer() -> ListedApplication:
    return _app(
        _key(KEY_A, "rotator:kv.vault.azure.net/signer:20250130T000000Z-00000001"),
        _key(KEY_B, "CN=signer (added by a person)", days=20),
        _key(KEY_ORPHAN, f"rotator:{HOST}/signer:{ROTATION_ID}", started_days_ago=2),
        _key(KEY_HUMAN, "CI (a human's)"),
    )


def _signer_certificate(**extra: str) -> CertificateVersion:
    tags = {"ProviderAddress": APP_ID, "CredentialId": KEY_A, "RetireCredentialId": KEY_B, "RotationState": "active"}
    return _certificate("signer", **tags, **extra)


def test_every_standing_of_a_key_credential_is_classified_like_a_password() -> None:
    rows = _rows([_signer()], [_signer_certificate(RetirementHeld="signed in 2025-01-30")])

    managed = rows[KEY_A]
    assert (managed.standing, managed.kind, managed.vault, managed.secret) == (
        Standing.MANAGED,
        "certificate",
        "kv",
        "signer",
    )
    assert managed.note == "" and managed.thumbprint == THUMBPRINT
    retiring = rows[KEY_B]
    assert (retiring.standing, retiring.vault, retiring.secret) == (Standing.RETIRING, "kv", "signer")
    assert retiring.note == "retirement held: signed in 2025-01-30"
    orphan = rows[KEY_ORPHAN]
    assert (orphan.standing, orphan.vault, orphan.secret) == (Standing.ORPHANED, HOST, "signer")
    assert orphan.note == f"created by rotation {ROTATION_ID} for {HOST}/signer; no tag names it"
    human = rows[KEY_HUMAN]
    assert (human.standing, human.vault, human.note) == (Standing.UNMANAGED, None, "")
    assert "not rotated" not in " ".join(r.note for r in rows.values())


def test_a_recent_orphan_may_be_a_rotation_in_progress() -> None:
    app = _app(_key(KEY_ORPHAN, f"rotator:{HOST}/signer:{ROTATION_ID}", started_days_ago=0.01))
    row = _rows([app], [])[KEY_ORPHAN]
    assert row.standing is Standing.ORPHANED and row.note.endswith("(recent: may be a rotation still in progress)")


def test_an_unbound_certificate_says_the_command_that_binds_it() -> None:
    row = _rows([_app(_key(KEY_A, "CN=signer"), bound=())], [_signer_certificate()])[KEY_A]
    assert row.standing is Standing.MANAGED
    assert row.note == f"not bound: python -m rotation adopt kv signer --app {APP_ID}"


def test_what_stands_in_a_certificates_way_is_said_of_the_certificate() -> None:
    other = "99999999-0000-0000-0000-000000000009"
    rows = _rows(
        [_app(_key(KEY_A, "CN=a"), _key(KEY_B, "CN=b"), bound=("signer", "untagged"))],
        [
            _certificate("signer", ProviderAddress=other, CredentialId=KEY_A),
            _certificate("untagged", CredentialId=KEY_B),
        ],
    )
    assert rows[KEY_A].note == f"the certificate's ProviderAddress names another app ({other})"
    assert rows[KEY_B].note == "the certificate has no ProviderAddress tag, so it is not rotated"


def test_a_certificate_naming_no_key_is_dangling() -> None:
    rows = _rows(
        [_app(_key(KEY_A, "CN=signer"))], [_certificate("gone", ProviderAddress=APP_ID, CredentialId=KEY_GONE)]
    )
    dangling = rows[KEY_GONE]
    assert (dangling.standing, dangling.kind, dangling.vault, dangling.secret) == (
        Standing.DANGLING,
        "certificate",
        "kv",
        "gone",
    )
    assert dangling.app_id == APP_ID and dangling.app_name == "Reports signer"
    assert dangling.note.startswith("the credential no longer exists on the app")
    assert dangling.end == NOW + 300 * DAY


def test_secrets_name_passwords_and_certificates_name_keys() -> None:
    """A secret's CredentialId never makes a key credential managed, nor a certificate's a password;
    and a certificate's keyId that is a password of the app is dangling as a certificate."""
    secret = SecretVersion(
        vault="kv", name="api", version="3" * 32, tags={"ProviderAddress": APP_ID, "CredentialId": KEY_C}
    )
    app = _app(_key(KEY_C, "CN=shared keyId"))
    rows = classify(
        [app],
        [secret],
        NOW,
        vault_hosts={"kv": HOST},
        certificates=[_certificate("signer", ProviderAddress=APP_ID, CredentialId=KEY_PASSWORD)],
    )
    by_kind = {(r.key_id, r.kind): r for r in rows}
    assert by_kind[(KEY_C, "certificate")].standing is Standing.UNMANAGED
    assert by_kind[(KEY_C, "password")].standing is Standing.DANGLING  # the secret's password is gone
    assert by_kind[(KEY_PASSWORD, "password")].standing is Standing.UNMANAGED
    assert by_kind[(KEY_PASSWORD, "certificate")].standing is Standing.DANGLING


def test_a_managed_certificate_on_a_service_principal_is_said_to_be_out_of_reach() -> None:
    principal = Application(
        "5b000000-0000-0000-0000-000000000001", APP_ID, "Reports signer (SP)", credential_object="servicePrincipal"
    )
    sp = ListedServicePrincipal(principal, certificates=(_key(KEY_SP, "CN=on the SP"),))
    row = _rows([], [_certificate("signer", ProviderAddress=APP_ID, CredentialId=KEY_SP)], principals=[sp])[KEY_SP]
    assert row.standing is Standing.MANAGED and row.credential_object == "servicePrincipal"
    assert "rotated on the app registration, not on its service principal" in row.note


def test_with_certificates_off_every_key_says_so_and_nothing_is_matched() -> None:
    rows = _rows([_signer()], None)
    keys = [r for r in rows.values() if r.kind == "certificate"]
    assert len(keys) == 4
    assert {(r.standing, r.note) for r in keys} == {(Standing.UNMANAGED, CERTIFICATES_OFF)}
    assert CERTIFICATES_OFF == "not managed: ROTATION_CERTIFICATES is off"


def test_an_orphan_of_a_vault_whose_certificates_went_unread_says_so() -> None:
    app = _app(_key(KEY_ORPHAN, f"rotator:{HOST}/signer:{ROTATION_ID}"))
    rows = classify([app], [], NOW, vault_hosts={"kv": HOST}, certificates=[], unlisted_certificates=("kv",))
    orphan = next(r for r in rows if r.key_id == KEY_ORPHAN)
    assert orphan.standing is Standing.ORPHANED
    assert orphan.note.endswith("; that vault's certificates could not be listed, so a tag may name it")
    read = _rows([app], [])[KEY_ORPHAN]
    assert read.standing is Standing.ORPHANED and "could not be listed" not in read.note


class _Pages:
    """A `CertificateVault`'s list call, page by page; ``refuse`` answers it like Key Vault's 403."""

    def __init__(self, name: str, pages: list[list[CertificateVersion]], *, refuse: bool = False) -> None:
        self.name = name
        self.pages = pages
        self.refuse = refuse
        self.calls = 0

    async def certificate_pages(self) -> AsyncIterator[list[CertificateVersion]]:
        for page in self.pages:
            self.calls += 1
            yield page
        if self.refuse:
            self.calls += 1
            raise PermissionDeniedError("Key Vault", "the 'Key Vault Certificates Officer' role", action="list")


async def test_each_vaults_certificates_are_one_source_and_a_refusal_is_a_warning() -> None:
    from typing import cast

    from rotation.runtime import Runtime
    from rotation.tools.inventory.collect import read_sources, source_count

    from .test_inventory_credentials import _Runtime

    runtime = _Runtime()
    listed = _Pages("kv", [[_signer_certificate()], [_certificate("other")]])
    refused = _Pages("kv2", [[_certificate("seen before the 403")]], refuse=True)
    runtime.certificate_vaults = {"kv": listed, "kv2": refused}
    steps: list[str] = []

    sources = await read_sources(cast(Runtime, runtime), step=steps.append, details=True)

    assert len(steps) == source_count(2, details=True, certificate_vaults=2) == 7, steps
    assert listed.calls == 2 and [c.name for c in sources.certificates or []] == ["signer", "other"]
    assert sources.unlisted_certificates == ("kv2",)
    assert any(
        w.startswith("certificates of vault 'kv2' could not be listed (PermissionDenied)") for w in sources.warnings
    )
