"""The rotator's tag limits are Key Vault's documented ones, the same the local cloud enforces."""

from __future__ import annotations

from localcloud import keyvault
from rotation.domain.model import TAG_LIMIT, TAG_VALUE_MAX


def test_the_rotators_tag_limits_are_key_vaults() -> None:
    assert TAG_LIMIT == keyvault.MAX_TAGS == 15
    assert TAG_VALUE_MAX == keyvault.MAX_TAG_LENGTH == 512
