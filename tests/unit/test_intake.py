"""The checks both front doors (HTTP, command line) make before a rotation is queued or run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rotation.domain.errors import RotationError
from rotation.domain.model import SecretVersion
from rotation.service.intake import admit_rotation, known_vault, managed_status, valid_secret_name
from rotation.settings import Settings

NOW = datetime(2025, 1, 31, 12, tzinfo=UTC)
APP = "11111111-2222-3333-4444-555555555555"
SETTINGS = Settings(vaults={"kv-local": "https://kv-local.vault.azure.net"})


class Versions:
    """A vault's latest versions by secret name; counts reads, so a test can see none happened."""

    def __init__(self, *versions: SecretVersion) -> None:
        self.versions = {v.name: v for v in versions}
        self.reads = 0

    async def get_properties(self, secret: str) -> SecretVersion | None:
        self.reads += 1
        return self.versions.get(secret)


def version(name: str, tags: dict[str, str] | None = None, *, enabled: bool = True) -> SecretVersion:
    return SecretVersion("kv-local", name, "0" * 32, enabled=enabled, tags=tags or {})


def test_names() -> None:
    assert known_vault(SETTINGS, " KV-Local ") == "kv-local"
    assert valid_secret_name("app-secret-1") == "app-secret-1"


async def test_a_rotation_that_can_be_carried_out_is_admitted_as_a_request() -> None:
    vault = Versions(version("app-secret", {"ProviderAddress": APP}))
    request = await admit_rotation(
        SETTINGS, {"kv-local": vault}, "KV-Local", "app-secret", "leak", "emergency", NOW, "op-1"
    )
    assert (request.vault, request.secret, request.mode, request.reason) == (
        "kv-local",
        "app-secret",
        "emergency",
        "leak",
    )
    assert (request.operation_id, request.requested_at) == ("op-1", NOW)
    assert vault.reads == 1


@pytest.mark.parametrize(
    ("vault_name", "secret", "code", "status", "reads"),
    [
        ("kv-elsewhere", "app-secret", "UnknownVault", 404, 0),
        ("kv-local", "bad_name!", "BadRequest", 400, 0),
        ("kv-local", "missing", "SecretNotFound", 404, 1),
        ("kv-local", "plain", "NotManaged", 404, 1),
        ("kv-local", "bad-tags", "BadTags", 409, 1),
        ("kv-local", "disabled", "SecretDisabled", 409, 1),
    ],
)
async def test_what_cannot_be_carried_out_is_refused_with_its_status(
    vault_name: str, secret: str, code: str, status: int, reads: int
) -> None:
    vault = Versions(
        version("plain", {"owner": "team-a"}),
        version("bad-tags", {"ProviderAddress": "not-a-guid"}),
        version("disabled", {"ProviderAddress": APP}, enabled=False),
    )
    with pytest.raises(RotationError) as caught:
        await admit_rotation(SETTINGS, {"kv-local": vault}, vault_name, secret, "why", "forced", NOW)
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert vault.reads == reads  # names are checked before anything is read


async def test_the_name_error_states_the_rule_not_a_queue_message() -> None:
    with pytest.raises(RotationError) as caught:
        await admit_rotation(SETTINGS, {"kv-local": Versions()}, "kv-local", "bad_name!", "why", "forced", NOW)
    assert caught.value.message == "'bad_name!' is not a Key Vault secret name (1-127 letters, digits and hyphens)."


async def test_the_status_of_a_managed_secret_never_reads_a_value() -> None:
    vault = Versions(version("app-secret", {"ProviderAddress": APP}))
    status = await managed_status(SETTINGS, {"kv-local": vault}, "kv-local", "app-secret", NOW)
    assert (status.vault, status.name, status.app_id) == ("kv-local", "app-secret", APP)


async def test_a_certificates_name_is_admitted_as_a_certificate_request_with_one_read() -> None:
    backing = SecretVersion("kv-local", "api-cert", "0" * 32, tags={}, backs_certificate=True)
    on = Settings(vaults=SETTINGS.vaults, certificates=True)
    vault = Versions(backing)
    request = await admit_rotation(on, {"kv-local": vault}, "kv-local", "api-cert", "renew", "forced", NOW)
    assert request.kind == "certificate" and request.secret == "api-cert" and vault.reads == 1
    assert request.to_message()["kind"] == "certificate"
    with pytest.raises(RotationError) as refused:
        await admit_rotation(SETTINGS, {"kv-local": Versions(backing)}, "kv-local", "api-cert", "", "normal", NOW)
    assert refused.value.code == "CertificatesDisabled" and refused.value.http_status == 409
