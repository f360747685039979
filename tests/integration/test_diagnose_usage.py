"""`diagnose` names the credential the app's consumers really sign in with (issue 13), from the local
cloud's Graph sign-in report read through the production adapter: a real consumer signs in with
another value than the vault's, the report (a day late, day-granular) shows it, the diagnosis says so;
without the permission or the licence it is one skipped line and no failure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from emulator.rotator_profile import RotatorCloud
from tests.integration.reconcile_helpers import sign_in
from tests.integration.seed import bind, create_owned_app, unique
from tests.integration.test_diagnose import add_password, check, diagnose_json, end_of, managed_tags, store

DAY = timedelta(days=1)


def auditor(private_cloud: Callable[..., RotatorCloud]) -> RotatorCloud:
    local = private_cloud()
    # Before the rotator's first token: a token carries the roles its identity had when it was issued.
    local.admin("POST", f"/applications/{local.rotator.app_id}/graph-app-roles", {"role": "AuditLog.Read.All"})
    return local


def test_consumers_on_another_credential_than_the_stored_one_are_named_with_the_reports_age(
    private_cloud: Callable[..., RotatorCloud], capsys: pytest.CaptureFixture[str]
) -> None:
    local = auditor(private_cloud)
    with local.environment():
        app = create_owned_app(local, unique("svc"))
        stored = add_password(local, app, name="in the vault")
        copied = add_password(local, app, name="pipeline copy")
        name = store(local, stored["secretText"], managed_tags(app, stored), expires=end_of(stored), vault="kv-local")
        bind(local, app["appId"], "kv-local", name, stored["keyId"])
        sign_in(local, app["appId"], copied["secretText"], patience_seconds=30)  # a consumer with another value
        local.advance_clock((2 * DAY).total_seconds())  # the report shows a sign-in once it is a day old

        code, result = diagnose_json(capsys, local, name)

    found = check(result, "usage.consumers")
    assert found["status"] == "warn", found
    day = f"{local.now() - 2 * DAY:%Y-%m-%d}"
    assert found["evidence"].startswith(
        f"the stored value is credential {stored['keyId']} 'in the vault' (hint {stored['hint']}), last sign-in "
        f"never (not in the report); consumers sign in with credential {copied['keyId']} 'pipeline copy' "
        f"(hint {copied['hint']}), last sign-in {day}"
    )
    assert "day-granular and at least a day late" in found["evidence"]
    assert "Rotated but not updated" in found["cause"]
    assert code == 0  # the stored value itself is fine: a warning, not the cause of a failure


def test_the_stored_credential_in_use_passes(
    private_cloud: Callable[..., RotatorCloud], capsys: pytest.CaptureFixture[str]
) -> None:
    local = auditor(private_cloud)
    with local.environment():
        app = create_owned_app(local, unique("svc"))
        stored = add_password(local, app, name="in the vault")
        add_password(local, app, name="unused")
        name = store(local, stored["secretText"], managed_tags(app, stored), expires=end_of(stored))
        sign_in(local, app["appId"], stored["secretText"], patience_seconds=30)
        local.advance_clock((2 * DAY).total_seconds())

        _, result = diagnose_json(capsys, local, name)

    found = check(result, "usage.consumers")
    assert found["status"] == "pass" and "last signed in on" in found["evidence"]


def test_without_audit_log_read_the_report_is_one_skipped_line(
    cloud: RotatorCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared cloud's rotator has no AuditLog.Read.All: Graph answers 403, the diagnosis goes on."""
    app = create_owned_app(cloud, unique("svc"))
    password = add_password(cloud, app)
    name = store(cloud, password["secretText"], managed_tags(app, password), expires=end_of(password))
    bind(cloud, app["appId"], "kv-local", name, password["keyId"])

    code, result = diagnose_json(capsys, cloud, name)

    found = check(result, "usage.consumers")
    assert code == 0 and found["status"] == "skip"
    assert "AuditLog.Read.All" in found["evidence"] and "not a failure" in found["evidence"]


def test_a_tenant_without_p1_is_one_skipped_line_too(
    private_cloud: Callable[..., RotatorCloud], capsys: pytest.CaptureFixture[str]
) -> None:
    local = auditor(private_cloud)
    local.set_license("Free")
    with local.environment():
        app = create_owned_app(local, unique("svc"))
        password = add_password(local, app)
        name = store(local, password["secretText"], managed_tags(app, password), expires=end_of(password))
        code, result = diagnose_json(capsys, local, name)

    assert check(result, "usage.consumers")["status"] == "skip"
    assert result["counts"]["fail"] == 0 and code == 0
