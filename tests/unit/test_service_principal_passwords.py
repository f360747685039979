"""A managed secret can hold a password of the app's SERVICE PRINCIPAL (``CredentialObject=servicePrincipal``).

The reconciler's steps are the ones of an app registration's password, on the other object: the
service principal's passwords are read, added, proven, retired and cleaned up, and its binding is read
from the service principal's own tags (its owners control its credentials, not the app's). A binding
on one object never authorises a password on the other, and a Key Vault writer who flips the tag gets
``NotBound`` with nothing written. Through the in-memory fakes; the integration suite does the same
against the local cloud.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from rotation.domain.errors import BindingDeniedError
from rotation.domain.listing import ListedApplication, ListedServicePrincipal
from rotation.domain.model import (
    SERVICE_PRINCIPAL,
    Action,
    ManagedSecret,
    Outcome,
    SecretVersion,
    Tag,
    binding_tag,
    is_guid,
    parse_credential_object,
    rotator_display_name,
)
from rotation.domain.policy import assess
from rotation.service.adoption import AdoptionRequest, adopt_secret
from rotation.service.binding import bindings_of, not_bound_note
from rotation.service.sweep import marked_if_deleted
from rotation.tools.diagnose.checks import judge
from rotation.tools.diagnose.facts import AppLookup
from rotation.tools.diagnose.facts import Observed as DiagnoseFacts
from rotation.tools.diagnose.results import Status
from rotation.tools.inventory.classify import classify
from rotation.tools.inventory.model import Standing
from rotation.tools.inventory.render import row_fields as render_fields
from tests.fakes import new_secret_value

from .samples import NOW
from .test_reconciler_branches import DAY, HOST, SECRET, VAULT, World, make_world

SP = SERVICE_PRINCIPAL


def seed_sp(
    w: World,
    *,
    bind_sp: bool = True,
    bind_app: bool = False,
    credential_object: str | None = SP,
    expires_in: timedelta = 10 * DAY,
) -> None:
    """An app whose service principal holds the secret's password (and a human's), the app itself a
    human's password of its own; the secret names the app and, by default, its service principal."""
    w.app_id = w.directory.add_app()
    credential, w.value = w.directory.add_credential(
        w.app_id, end=NOW + expires_in, start=NOW - 80 * DAY, on=SP, display_name="sp (a human's)"
    )
    w.key_id = credential.key_id
    human, _ = w.directory.add_credential(w.app_id, value="hum" + new_secret_value()[3:], display_name="app (human)")
    w.human_key_id = human.key_id  # on the app registration: never touched by an SP rotation
    w.extra["sp_human"] = w.directory.add_credential(w.app_id, on=SP, display_name="sp (another human's)")[0].key_id
    if bind_sp:
        w.directory.set_tags(w.app_id, ["team:payments", binding_tag(HOST, SECRET, w.key_id, on=SP)], on=SP)
    if bind_app:
        w.directory.set_tags(w.app_id, ["team:payments", binding_tag(HOST, SECRET, w.key_id)])
    tags = {Tag.ProviderAddress: w.app_id, Tag.CredentialId: w.key_id}
    if credential_object is not None:
        tags[Tag.CredentialObject] = credential_object
    w.version = w.vault.put(SECRET, w.value, tags, expires=NOW + expires_in, created=NOW - 80 * DAY)


def assert_no_value_shown(w: World, outcome: Outcome, caplog: pytest.LogCaptureFixture) -> None:
    shown = caplog.text + json.dumps(outcome.to_dict())
    for value in w.directory.all_values() + w.vault.all_values():
        assert is_guid(value) or value not in shown


# --------------------------------------------------------------------------------------------- the tag


@pytest.mark.parametrize(
    ("text", "kind"),
    [(None, "application"), ("", "application"), ("application", "application"), ("servicePrincipal", SP)],
)
def test_the_credential_object_tag_names_one_of_two_objects(text: str | None, kind: str) -> None:
    assert parse_credential_object(text) == kind
    assert parse_credential_object(" ServicePrincipal ") == SP  # typed by people: case does not matter
    assert parse_credential_object("enterpriseApp") is None


def test_any_other_credential_object_is_a_tag_error_naming_the_allowed_values() -> None:
    version = SecretVersion(VAULT, SECRET, "v1", tags={Tag.ProviderAddress: "1" * 8 + "-1111-1111-1111-" + "1" * 12})
    tags = {**version.tags, Tag.CredentialObject: "managedIdentity"}
    status = assess(SecretVersion(VAULT, SECRET, "v1", tags=tags), NOW, make_world().settings)
    assert status.problem is not None
    assert "CredentialObject='managedIdentity' is not application or servicePrincipal" in status.problem


def test_emergency_and_a_retirement_hold_never_land_together() -> None:
    state = ManagedSecret(VAULT, SECRET, "app", retirement_held="in use", emergency_requested=NOW)
    tags = state.to_tags({Tag.ProviderAddress: "app"})
    assert Tag.Emergency in tags and Tag.RetirementHeld not in tags
    assert Tag.RetirementHeld in state.evolve(emergency_requested=None).to_tags({})


# ----------------------------------------------------------------------------------------- rotation


async def test_a_service_principal_password_is_rotated_on_the_service_principal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = make_world()
    w.env["ROTATION_GRACE_HOURS"] = "0"
    seed_sp(w)
    app_before = w.directory.key_ids(w.app_id)
    caplog.set_level(logging.DEBUG)

    outcome = await w.reconcile("forced")

    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    new = str(outcome.created_key_id)
    sp_keys = w.directory.key_ids(w.app_id, on=SP)
    # Created on the service principal, proven, stored; the old one retired there (grace 0).
    assert new in sp_keys and w.key_id not in sp_keys and outcome.retired_key_ids == (w.key_id,)
    assert w.extra["sp_human"] in sp_keys  # another credential on the same service principal stays
    assert w.directory.key_ids(w.app_id) == app_before  # the app registration is not touched at all
    created = next(c for c in w.directory.credentials(w.app_id, on=SP) if c.key_id == new)
    owner = created.rotator_owner()
    assert owner is not None and (owner.vault, owner.secret) == (HOST, SECRET)
    assert w.vault.value(SECRET) == w.directory.value_of(w.app_id, new)
    assert w.tags()[Tag.CredentialId] == new and w.tags()[Tag.CredentialObject] == SP
    assert w.ops() == ["addPassword", "set", "removePassword", "disable", "tag"]
    assert_no_value_shown(w, outcome, caplog)

    w.writes.clear()
    again = await w.reconcile()
    assert again.ok and again.action is Action.NONE and w.writes == []


async def test_an_orphan_on_the_service_principal_is_removed_there() -> None:
    w = make_world()
    seed_sp(w)
    orphan, _ = w.directory.add_credential(
        w.app_id, on=SP, display_name=rotator_display_name(HOST, SECRET, "crashed"), start=NOW - 2 * DAY
    )
    w.writes.clear()

    outcome = await w.reconcile()

    assert outcome.ok and outcome.removed_orphans == (orphan.key_id,), outcome.to_dict()
    assert orphan.key_id not in w.directory.key_ids(w.app_id, on=SP)
    assert w.key_id in w.directory.key_ids(w.app_id, on=SP)


async def test_a_credential_deleted_from_the_service_principal_makes_the_secret_due_now() -> None:
    w = make_world()
    w.env["ROTATION_GRACE_HOURS"] = "0"
    seed_sp(w, expires_in=80 * DAY)
    w.directory.remove_password_now(w.app_id, w.key_id, on=SP)

    outcome = await w.reconcile()

    assert outcome.ok and outcome.action is Action.ROTATED, outcome.to_dict()
    assert outcome.created_key_id in w.directory.key_ids(w.app_id, on=SP)


# ------------------------------------------------------------------------------ the binding's object


async def test_a_vault_writer_cannot_turn_an_app_binding_into_a_service_principal_password() -> None:
    """The attack: the app's owners bound the secret on the app; a vault writer adds
    CredentialObject=servicePrincipal. The service principal's tags do not bind it: nothing happens."""
    w = make_world()
    seed_sp(w, bind_sp=False, bind_app=True)
    before = (w.directory.key_ids(w.app_id), w.directory.key_ids(w.app_id, on=SP))
    w.writes.clear()

    outcome = await w.reconcile("emergency")

    assert outcome.error_code == "NotBound", outcome.to_dict()
    assert "service principal" in (outcome.error_message or "")
    assert "--service-principal" in outcome.to_dict()["error"]["message"]
    assert w.writes == [] and (w.directory.key_ids(w.app_id), w.directory.key_ids(w.app_id, on=SP)) == before


async def test_a_service_principal_binding_does_not_authorise_the_apps_password() -> None:
    """The reverse: bound on the service principal only, a secret without CredentialObject (or with
    `application`) names the app registration, whose tags do not bind it."""
    for credential_object in (None, "application"):
        w = make_world()
        seed_sp(w, bind_sp=True, credential_object=credential_object)
        before = (w.directory.key_ids(w.app_id), w.directory.key_ids(w.app_id, on=SP))
        w.writes.clear()

        outcome = await w.reconcile("emergency")

        assert outcome.error_code == "NotBound", outcome.to_dict()
        assert "--service-principal" not in (outcome.error_message or "")
        assert w.writes == [] and (w.directory.key_ids(w.app_id), w.directory.key_ids(w.app_id, on=SP)) == before


async def test_an_unknown_credential_object_changes_nothing() -> None:
    w = make_world()
    seed_sp(w, credential_object="both", bind_app=True)
    w.writes.clear()
    reads = w.directory.reads

    outcome = await w.reconcile("emergency")

    assert outcome.error_code == "BadTags", outcome.to_dict()
    assert "application or servicePrincipal" in (outcome.error_message or "")
    assert w.writes == [] and w.directory.reads == reads  # refused before Graph is asked anything


# ------------------------------------------------------------------------------ status, sweep, adopt


async def test_status_says_where_the_credential_lives_and_reads_the_service_principals_binding() -> None:
    w = make_world()
    seed_sp(w)
    status = assess(w.vault.latest(SECRET), NOW, w.settings)
    assert status.to_dict(NOW)["credentialObject"] == SP
    assert (await bindings_of(w.settings, w.directory, [status]))[(VAULT, SECRET)] is True
    w.directory.set_tags(w.app_id, [], on=SP)
    w.directory.set_tags(w.app_id, [binding_tag(HOST, SECRET)])  # bound on the app does not count
    assert (await bindings_of(w.settings, w.directory, [status]))[(VAULT, SECRET)] is False
    assert not_bound_note(status).endswith("--service-principal")


def test_the_sweep_does_not_take_a_service_principal_credential_for_deleted() -> None:
    """The sweep's listing holds the app registrations' passwords: an SP's keyId is never in it."""
    w = make_world()
    seed_sp(w, expires_in=80 * DAY)
    status = assess(w.vault.latest(SECRET), NOW, w.settings)
    live = {w.app_id: frozenset(w.directory.key_ids(w.app_id))}
    assert marked_if_deleted(status, live) is status
    # The service principals' listing does decide it: present, nothing to do; gone, due now.
    principals = {w.app_id: frozenset(w.directory.key_ids(w.app_id, on=SP))}
    assert marked_if_deleted(status, principals, on=SP) is status
    w.directory.remove_password_now(w.app_id, w.key_id, on=SP)
    principals = {w.app_id: frozenset(w.directory.key_ids(w.app_id, on=SP))}
    due = marked_if_deleted(status, principals, on=SP)
    assert due.needs_work is not None and "service principal" in due.needs_work
    # ...and an app registration's secret is never judged by a service principal's keyIds.
    app_status = assess(
        SecretVersion(VAULT, SECRET, "v", tags={Tag.ProviderAddress: w.app_id, Tag.CredentialId: w.human_key_id}),
        NOW,
        w.settings,
    )
    assert marked_if_deleted(app_status, principals, on=SP) is app_status


async def test_adopt_with_service_principal_binds_on_the_service_principal_and_tags_the_secret() -> None:
    w = make_world()
    seed_sp(w, bind_sp=False, credential_object=None)
    w.vault.update_now(SECRET, w.version, {})  # not managed yet
    app_tags = w.directory.tags(w.app_id)
    w.writes.clear()

    adoption = await adopt_secret(
        w.settings, w.directory, w.vault, AdoptionRequest(VAULT, SECRET, w.app_id, service_principal=True)
    )

    assert adoption.credential_id == w.key_id and adoption.to_dict()["credentialObject"] == SP
    assert w.directory.tags(w.app_id, on=SP) == [binding_tag(HOST, SECRET, w.key_id, on=SP)]
    assert w.directory.tags(w.app_id) == app_tags
    assert w.tags()[Tag.CredentialObject] == SP and w.tags()[Tag.CredentialId] == w.key_id
    assert w.ops() == ["setServicePrincipalTags", "tag"]

    outcome = await w.reconcile("forced")
    assert outcome.ok and outcome.created_key_id in w.directory.key_ids(w.app_id, on=SP), outcome.to_dict()


async def test_adopt_refused_on_the_service_principal_writes_nothing() -> None:
    w = make_world()
    seed_sp(w, bind_sp=False, credential_object=None)
    w.vault.update_now(SECRET, w.version, {})
    w.directory.set_tags(w.app_id, [], writable=False, on=SP)
    w.writes.clear()

    with pytest.raises(BindingDeniedError) as refused:
        await adopt_secret(
            w.settings, w.directory, w.vault, AdoptionRequest(VAULT, SECRET, w.app_id, service_principal=True)
        )

    assert refused.value.code == "BindingDenied"
    assert "service principal" in str(refused.value) and "az ad sp update" in str(refused.value)
    assert w.writes == [] and w.tags() == {}


# ------------------------------------------------------------------------------------------ diagnose


async def test_diagnose_says_the_password_lives_on_the_service_principal_and_checks_its_binding() -> None:
    w = make_world()
    seed_sp(w, bind_sp=True)
    version = w.vault.latest(SECRET)
    seen = DiagnoseFacts(settings=w.settings, vault=VAULT, secret=SECRET, now=NOW, version=version)
    seen.app_id, seen.credential_object = w.app_id, SP
    seen.app = await w.directory.get_application(w.app_id, on=SP)
    seen.app_lookup = AppLookup.FOUND

    checks = {c.id: c for c in judge(seen).checks}

    assert "lives on the service principal" in checks["app.exists"].evidence
    assert checks["binding"].status is Status.PASS and "the service principal's tags" in checks["binding"].evidence

    w.directory.set_tags(w.app_id, [], on=SP)
    w.directory.set_tags(w.app_id, [binding_tag(HOST, SECRET)])  # the app's binding does not count
    seen.app = await w.directory.get_application(w.app_id, on=SP)
    binding = {c.id: c for c in judge(seen).checks}["binding"]
    assert binding.status is Status.WARN and "service principal" in binding.evidence
    assert binding.remedy.endswith("--service-principal")


# ----------------------------------------------------------------------------------------- inventory


async def test_the_inventory_lists_a_managed_service_principal_password_as_managed_not_dangling() -> None:
    w = make_world()
    seed_sp(w)
    app = ListedApplication(await w.directory.get_application(w.app_id))
    sp = ListedServicePrincipal(await w.directory.get_application(w.app_id, on=SP))
    secrets = [w.vault.latest(SECRET)]

    rows = classify([app], secrets, NOW, vault_hosts={VAULT: HOST}, service_principals=[sp])

    managed = [r for r in rows if r.key_id == w.key_id]
    assert [(r.standing, r.credential_object, r.vault, r.secret) for r in managed] == [
        (Standing.MANAGED, SP, VAULT, SECRET)
    ]
    assert "not bound" not in managed[0].note and "CredentialObject" not in managed[0].note
    assert render_fields(managed[0], NOW)["credentialObject"] == SP
    assert {r.credential_object for r in rows if r.key_id == w.human_key_id} == {"application"}
    assert not [r for r in rows if r.standing is Standing.DANGLING]

    # Bound on the app only: the row says so, with the command that binds it on the service principal.
    w.directory.set_tags(w.app_id, [], on=SP)
    unbound = ListedServicePrincipal(await w.directory.get_application(w.app_id, on=SP))
    (row,) = [
        r
        for r in classify([app], secrets, NOW, vault_hosts={VAULT: HOST}, service_principals=[unbound])
        if r.key_id == w.key_id
    ]
    assert row.note.endswith("--service-principal"), row.note

    # A secret that names a service principal's keyId without CredentialObject=servicePrincipal: said.
    untagged = w.vault.put(SECRET, w.value, {Tag.ProviderAddress: w.app_id, Tag.CredentialId: w.key_id})
    del untagged
    (row,) = [
        r
        for r in classify([app], [w.vault.latest(SECRET)], NOW, vault_hosts={VAULT: HOST}, service_principals=[sp])
        if r.key_id == w.key_id
    ]
    assert "CredentialObject tag does not name the service principal" in row.note, row.note


# ------------------------------------------------------------------------------ emergency, back-off


async def test_an_emergency_retires_the_leaked_service_principal_password_at_once() -> None:
    w = make_world()  # grace 24 h: only the emergency makes it immediate
    seed_sp(w, expires_in=80 * DAY)

    outcome = await w.reconcile("emergency")

    assert outcome.ok and outcome.retired_key_ids == (w.key_id,), outcome.to_dict()
    assert w.key_id not in w.directory.key_ids(w.app_id, on=SP)
    assert Tag.Emergency not in w.tags() and Tag.RetireCredentialId not in w.tags()


async def test_a_service_principal_password_that_never_signs_in_is_removed_and_backs_off() -> None:
    w = make_world()
    seed_sp(w)
    w.probe.refuse(7000215, times=10_000)
    before = w.directory.key_ids(w.app_id, on=SP)

    outcome = await w.reconcile()

    assert outcome.error_code == "ValidationFailed", outcome.to_dict()
    assert w.directory.key_ids(w.app_id, on=SP) == before  # the unproven credential is gone again
    assert w.tags()[Tag.Backoff].startswith("1/") and w.vault.value(SECRET) == w.value
