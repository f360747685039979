"""The sweep reads a vault page by page: a transient failure on a later page is retried from that
page, not from the first, and the timer keeps only what needs attention (memory flat in the fleet's
size; the figures are in benchmarks/RESULTS.md, `benchmarks.sweep_scale`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.runtime import open_runtime
from rotation.service.sweep import ScanTally, needs_attention, scan
from tests.integration.reconcile_helpers import (
    add_fault,
    make_settings,
    mark,
    matching,
    requests_since,
    start_private_cloud,
)
from tests.integration.seed import write_secret


async def test_a_failed_page_is_retried_alone_and_only_what_needs_attention_is_kept(
    private_cloud: Callable[..., RotatorCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = start_private_cloud(private_cloud, monkeypatch)
    now = datetime.now(UTC).replace(microsecond=0)
    due = {"ProviderAddress": "11111111-2222-3333-4444-555555555555"}
    for index in range(60):  # three pages of at most 25
        expires = now.replace(year=now.year + 1) if index % 20 else now
        await write_secret(cloud, "kv-local", f"fleet-{index:02d}", f"value-{index}-abcdefghijkl", due, expires)
    settings = make_settings(cloud.env, throttle_retry_seconds=30)
    since = mark(cloud)

    async with open_runtime(settings) as runtime:
        pages = runtime.vaults["kv-local"].secret_pages()
        first = await anext(pages)
        # The next page's request fails once with a 503: only that page is asked for again.
        add_fault(cloud, "keyvault", status=503, count=1, method="GET", path_regex=r"^/secrets$")
        rest = [page async for page in pages]
        lists = [r["status"] for r in matching(requests_since(cloud, since), "keyvault", "GET", r"^/secrets\?")]
        assert lists == [200, 503, 200, 200], lists  # never the first page again
        assert [len(first), *map(len, rest)] == [25, 25, 10]

        tally = ScanTally()
        kept = await scan(
            settings, runtime.vaults, now, only="kv-local", keep=needs_attention(settings, now), tally=tally
        )
    assert tally.managed == 60
    assert sorted(s.name for s in kept) == ["fleet-00", "fleet-20", "fleet-40"]  # expired: due now
