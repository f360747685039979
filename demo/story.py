"""The demo's story: a tenant, two app registrations, a vault with three managed secrets, and the real
function objects of `function_app.py` driven with real `azure.functions` trigger types.

1. Key Vault emits `SecretNearExpiry` for the secret that expires in days; the Event Grid function
   enqueues it and the queue worker rotates it (waiting out a few seconds of propagation).
2. The hourly timer sweep finds nothing left to do, from one list call.
3. A secret holds the Secret ID instead of the value; `diagnose` says so, and an operator's HTTP
   emergency roll replaces it.
4. Days pass (on the local cloud's clock, which the rotator reads too): a consumer that cached the
   old payments-api value still signs in with it, so the sign-in report holds its retirement; once
   the consumer moves to the new value and the report shows a quiet period, it is retired.
5. A managed Key Vault certificate: an operator rolls it over HTTP by name; the rotator creates the
   next version from its policy, adds it with Graph addKey (the proof signed in Key Vault by the
   current version's key), proves it with client assertions signed in Key Vault by the new key, and
   the payments service signs in with the certificate it reads from Key Vault. No private key leaves it.
6. Every managed secret's latest value is proven with a token request, and the printed output is
   checked against every secret value the local cloud issued: none may appear.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from emulator.rotator_profile import OPERATOR_ROLE, RotatorCloud
from functions.config import EdgeConfig
from localcloud.azurite import AzuriteMissing, running_azurite
from localcloud.cloud import LocalCloud
from localcloud.tls import LocalTLS
from rotation.adapters.graph import GraphDirectory
from rotation.domain.model import vault_host
from rotation.runtime import Runtime, open_runtime
from rotation.service.adoption import bind_secret
from rotation.settings import Settings

VAULT = "kv-local"
# Azurite comes from the repository's npm packages (`npm ci`); AZURITE_BIN overrides it.
NODE_BIN = Path(__file__).resolve().parents[1] / "node_modules" / ".bin"
QUEUE = "rotation-requests"
STORAGE_SETTING = "AzureWebJobsStorage"  # the host's own (mixed-case) name
# Settings the demo runs with (every other setting keeps its default; see local.settings.sample.json).
DEMO_SETTINGS = {
    "ROTATION_SCHEDULE": "0 0 * * * *",
    "ROTATION_VALIDATION_SUCCESSES": "3",
    "ROTATION_VALIDATION_DEADLINE_SECONDS": "60",
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "ROTATION_CERTIFICATES": "true",
}
CERTIFICATE = "payments-signing"
CERTIFICATE_ROLES = ("Key Vault Certificates Officer", "Key Vault Crypto User")


class Story:
    """Prints the narrative and keeps a copy of everything printed, for the leak check at the end."""

    def __init__(self) -> None:
        self.transcript = io.StringIO()
        self.started = time.monotonic()

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.transcript.write(text + "\n")

    def chapter(self, title: str) -> None:
        self.say()
        self.say(f"== {title} " + "=" * max(0, 72 - len(title)))

    def step(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:5.1f}s] {text}")


@dataclass
class Seeded:
    name: str
    app_name: str
    app_id: str
    object_id: str
    note: str


@dataclass
class Ledger:
    """What the worker did, per secret, from the rotator's own structured log events."""

    created: dict[str, str] = field(default_factory=dict)
    retired: dict[str, list[str]] = field(default_factory=dict)


class Narrator(logging.Handler):
    """Turns the rotator's decision log (`rotation.observability.event`) into the demo's narrative."""

    LINES = {
        "RotationEnqueued": "queued a reconcile request ({source}: {reason})",
        "LockAcquired": "worker took the blob lease rotation-locks/{lockKey}",
        "RotationStarted": "rotation {rotationId} starts: {reason}",
        "CredentialCreated": "Graph addPassword -> new credential {keyId} (hint {hint}), valid until {end}",
        "SecretStored": "Key Vault: new version {vaultVersion} holds the proven value (state '{state}')",
        "ValidationPassed": "proven: {attempts} sign-in attempt(s) with the value read back from Key Vault, "
        "until enough succeeded in a row (propagation waited out)",
        "CredentialRetired": "Graph removePassword -> retired credential {keyId}",
        "RetirementHeld": "retirement held: {reason}",
        "SecretActivated": "state 'active'; old credential {retireCredentialId} retires after {retireAfter}",
        "VersionDisabled": "Key Vault: disabled version {vaultVersion}, whose value no longer signs in",
        "EventIgnored": "ignored: the rotator's own writes fire this type; it is never a trigger",
        "ReconcileCompleted": "{vault}/{secret}: nothing to do - the secret is already in its desired state",
        "CertificateVersionCreated": "Key Vault: new certificate version {vaultVersion} from the certificate's own "
        "policy (thumbprint {thumbprint})",
        "KeyAdded": "Graph addKey -> new certificate {keyId}, the proof signed in Key Vault by version {signedBy}",
        "CertificateActivated": "state 'active'; the old certificate retires after {retireAfter}",
        "WorkerCompleted": "worker done: {vault}/{secret} {action} in {seconds}s",
    }

    def __init__(self, story: Story, ledger: Ledger) -> None:
        super().__init__(logging.INFO)
        self.story = story
        self.ledger = ledger
        self.held = False  # the last event was RetirementHeld

    def emit(self, record: logging.LogRecord) -> None:
        name, _, facts_text = record.getMessage().partition(" ")
        try:
            facts: dict[str, Any] = json.loads(facts_text) if facts_text.startswith("{") else {}
        except ValueError:
            return
        if name == "CredentialCreated":
            self.ledger.created[facts.get("secret", "")] = facts.get("keyId", "")
        if name == "CredentialRetired":
            self.ledger.retired.setdefault(facts.get("secret", ""), []).append(facts.get("keyId", ""))
        line = self.LINES.get(name)
        if name == "ReconcileCompleted" and self.held:
            line = "{vault}/{secret}: the old credential stays; the sweep looks again next hour"
        self.held = name == "RetirementHeld"
        if name == "ValidationPassed" and facts.get("kind") == "certificate":
            line = (
                "proven: {attempts} client-assertion sign-in(s), each assertion signed in Key Vault by the new "
                "key, until enough succeeded in a row (propagation waited out)"
            )
        if name == "SecretActivated" and not facts.get("retireCredentialId"):
            line = "state 'active'; nothing left to retire"
        if line is None:
            if record.levelno >= logging.WARNING and name not in ("CredentialExpiring", "RotationRollingBack"):
                self.story.step(f"! {name}: {facts.get('error') or facts.get('reason') or facts_text[:160]}")
            return
        try:
            self.story.step("  " + line.format_map(_Defaults(facts)))
        except (KeyError, ValueError):
            self.story.step(f"  {name}")


class _Defaults(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


class Out(func.Out[Any]):
    """An output binding as the host provides it: what the function sets is written after it returns."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value

    def messages(self) -> list[str]:
        if self.value is None:
            return []
        return [self.value] if isinstance(self.value, str) else list(self.value)


# --- setting the scene ---------------------------------------------------------------------------
def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Scene:
    seeded: list[Seeded]
    operator: dict[str, str]
    #: The value a payments service cached before the rotation (it only ever travels to Entra).
    cached_payments_value: str = field(repr=False)


def seed(cloud: RotatorCloud, story: Story) -> Scene:
    """Two apps owned by the rotator, their human-made secrets, and an operator who stores them."""
    # The price of retirement on evidence: the rotator may read the sign-in report (granted before
    # its first token: a token carries the roles its identity had when it was issued).
    cloud.admin("POST", f"/applications/{cloud.rotator.app_id}/graph-app-roles", {"role": "AuditLog.Read.All"})
    # Managed certificates (ROTATION_CERTIFICATES): what rotationCertificates=true assigns on each vault.
    for role in CERTIFICATE_ROLES:
        cloud.admin("POST", "/role-assignments", {"objectId": cloud.rotator.sp_object_id, "vault": VAULT, "role": role})
    now = cloud.now()
    apps: dict[str, dict[str, Any]] = {}
    for display in ("payments-api", "reports-worker"):
        app = cloud.admin("POST", "/applications", {"displayName": display})
        cloud.admin("POST", f"/applications/{app['id']}/owners", {"objectId": cloud.rotator.sp_object_id})
        apps[display] = app
    payments = cloud.admin(
        "POST",
        f"/applications/{apps['payments-api']['id']}/passwords",
        # Dana set the vault's expiry well before the credential's own, so the rotator starts early.
        {"displayName": "set up by Dana, January", "endDateTime": _iso(now + timedelta(days=20))},
    )
    reports = cloud.admin(
        "POST",
        f"/applications/{apps['reports-worker']['id']}/passwords",
        {"displayName": "set up by Sam", "endDateTime": _iso(now + timedelta(days=200))},
    )
    batch = cloud.admin(
        "POST",
        f"/applications/{apps['reports-worker']['id']}/passwords",
        {"displayName": "batch job", "endDateTime": _iso(now + timedelta(days=120))},
    )
    operator = cloud.admin("POST", "/identities", {"displayName": "platform-operator"})
    cloud.admin(
        "POST",
        "/role-assignments",
        {"objectId": operator["objectId"], "vault": VAULT, "role": "Key Vault Secrets Officer"},
    )
    plan = [
        ("payments-api", "payments-api", payments["secretText"], payments, 5, "expires in 5 days"),
        ("reports-worker", "reports-worker", reports["secretText"], reports, 200, "healthy (200 days left)"),
        # The classic mistake: the Secret ID was copied from the portal instead of the Value.
        ("reports-batch", "reports-worker", batch["keyId"], batch, 120, "holds the Secret ID, not the value"),
    ]

    async def store() -> None:
        async with (
            AsyncClientSecretCredential(
                cloud.tenant_id, operator["appId"], operator["clientSecret"], authority=cloud.authority
            ) as credential,
            SecretClient(cloud.vault_url(VAULT), credential, verify_challenge_resource=False) as client,
        ):
            for name, app_name, value, credential_info, days, _ in plan:
                await client.set_secret(
                    name,
                    value,
                    expires_on=(now + timedelta(days=days)).replace(microsecond=0),
                    tags={"ProviderAddress": apps[app_name]["appId"], "CredentialId": credential_info["keyId"]},
                )

    asyncio.run(store())

    async def bind_all() -> list[str]:
        # The documented binding: the apps' owner (here the rotator's identity, which owns both apps)
        # writes `rotator-binding:{vault host}/{secret}#{keyId}` into the app's tags, as `adopt` does.
        host = vault_host(cloud.vault_url(VAULT))
        async with ManagedIdentityCredential() as credential:
            directory = GraphDirectory(credential, cloud.graph_url)
            try:
                written = []
                for name, app_name, _, credential_info, _, _ in plan:
                    app = await directory.get_application(apps[app_name]["appId"])
                    written.append(await bind_secret(directory, app, host, name, credential_info["keyId"]))
                return written
            finally:
                await directory.close()

    bindings = asyncio.run(bind_all())
    seeded = [Seeded(name, app, apps[app]["appId"], apps[app]["id"], note) for name, app, _, _, _, note in plan]
    story.chapter("The scene")
    story.say(f"Local cloud: Entra ID {cloud.authority}, Graph {cloud.graph_url}, vault {cloud.vault_url(VAULT)}")
    story.say(f"Tenant {cloud.tenant_id}; the rotator is a managed identity that owns both apps")
    story.say("Each app's owners bound its secrets in the app's tags (what `python -m rotation adopt` writes):")
    for tag in bindings:
        story.say(f"  {tag}")
    story.say("Entra propagates a new secret to each of 3 replicas within 4 seconds, so validation must wait.")
    story.say("The rotator may read the sign-in report (AuditLog.Read.All): old credentials retire on evidence.")
    for item in seeded:
        story.say(f"  {VAULT}/{item.name:<16} app {item.app_name:<15} ({item.app_id})  {item.note}")
    return Scene(seeded, {"appId": operator["appId"], "secret": operator["clientSecret"]}, payments["secretText"])


# --- the function app, driven like the host would ------------------------------------------------
@contextmanager
def quiet_stdout() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        yield buffer


async def drain_queue(handlers: dict[str, Any], story: Story) -> None:
    """Deliver every queued request to `rotate_worker`, as the queue trigger would."""
    async with QueueClient.from_connection_string(
        os.environ[STORAGE_SETTING],
        QUEUE,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    ) as queue:
        while True:
            batch = [m async for m in queue.receive_messages(messages_per_page=16, visibility_timeout=300)]
            if not batch:
                return
            for message in batch:
                story.step(f"queue trigger: delivering message {message.id[:8]} to rotate_worker")
                await handlers["rotate_worker"](func.QueueMessage(id=message.id, body=str(message.content)))
                await queue.delete_message(message)


async def enqueue(messages: list[str]) -> None:
    """The host writes a queue output binding's messages after the function returns."""
    async with QueueClient.from_connection_string(
        os.environ[STORAGE_SETTING], QUEUE, message_encode_policy=TextBase64EncodePolicy()
    ) as queue:
        with suppress(ResourceExistsError):
            await queue.create_queue()
        for message in messages:
            await queue.send_message(message)


def event_from_wire(body: Mapping[str, Any]) -> func.EventGridEvent:
    """What the host's converter makes of an Event Grid schema delivery (azure.functions.eventgrid)."""
    raw_time = body.get("eventTime")
    return func.EventGridEvent(
        id=body["id"],
        data=body["data"],
        topic=body["topic"],
        subject=body["subject"],
        event_type=body["eventType"],
        event_time=datetime.fromisoformat(raw_time.replace("Z", "+00:00")) if raw_time else None,
        data_version=body.get("dataVersion", "1"),
    )


async def chapter_event(cloud: LocalCloud, handlers: dict[str, Any], story: Story) -> None:
    story.chapter("1. Key Vault: SecretNearExpiry -> Event Grid -> queue -> worker")
    events = cloud.admin("GET", "/events?since=0")["events"]
    for body in events:
        story.step(f"Event Grid delivers {body['eventType'].rsplit('.', 1)[-1]} for {body['subject']}")
        out = Out()
        await handlers["on_key_vault_event"](event_from_wire(body), out)
        await enqueue(out.messages())
    await drain_queue(handlers, story)


async def chapter_sweep(handlers: dict[str, Any], story: Story) -> None:
    story.chapter("2. The hourly timer sweep (list calls only)")
    out = Out()
    await handlers["sweep"](func.timer.TimerRequest(past_due=False), out)
    messages = out.messages()
    story.step(f"sweep enqueued {len(messages)} request(s)" + (" - everything is up to date" if not messages else ""))
    await enqueue(messages)
    await drain_queue(handlers, story)


async def chapter_emergency(cloud: RotatorCloud, handlers: dict[str, Any], story: Story, broken: Seeded) -> None:
    story.chapter(f"3. 3 a.m.: {broken.name} fails with AADSTS7000215")
    story.step(f"on-call runs: python -m rotation diagnose {VAULT} {broken.name} --probe")
    from rotation.cli import main as rotation_cli

    with quiet_stdout() as captured:
        # The command line runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(rotation_cli, ["diagnose", VAULT, broken.name, "--probe"])
    for line in captured.getvalue().splitlines():
        if line.startswith(("Most likely cause", "What to do")):
            story.say("    " + line)
    # The on-call engineer's tool signs in to Entra ID as an app holding Rotation.Operator on the
    # rotator's API (the function key alone is not enough) and sends that token.
    on_call = await asyncio.to_thread(cloud.api_client, "on-call tooling", OPERATOR_ROLE)
    token = await asyncio.to_thread(cloud.api_token, on_call)
    story.step(f"operator (app {on_call.app_id[:8]}..., app role {OPERATOR_ROLE}): signed in to Entra ID")
    story.step(f"operator: POST /api/secrets/{VAULT}/{broken.name}/rotate (emergency)")
    request = func.HttpRequest(
        "POST",
        f"https://func-rotator.example.net/api/secrets/{VAULT}/{broken.name}/rotate",
        headers={
            "content-type": "application/json",
            "x-functions-key": "demo",
            "Authorization": f"Bearer {token}",
        },
        route_params={"vault": VAULT, "name": broken.name},
        body=json.dumps({"reason": "AADSTS7000215 in production: Secret ID stored", "emergency": True}).encode(),
    )
    out = Out()
    response = await handlers["rotate_secret"](request, out)
    story.step(
        f"HTTP {response.status_code} {json.loads(response.get_body())} Location: {response.headers.get('Location')}"
    )
    await enqueue(out.messages())
    await drain_queue(handlers, story)


async def chapter_certificate(cloud: RotatorCloud, handlers: dict[str, Any], story: Story, scene: Scene) -> bool:
    story.chapter("5. A certificate whose private key never leaves Key Vault")
    payments = next(s for s in scene.seeded if s.name == "payments-api")
    first = cloud.create_certificate(VAULT, CERTIFICATE, validity_months=12, tags={"ProviderAddress": payments.app_id})
    cloud.add_key_credential(payments.app_id, first.der, display_name="payments signing (added by Dana)")
    binding = f"rotator-binding:{vault_host(cloud.vault_url(VAULT))}/{CERTIFICATE}"
    cloud.set_application_tags(payments.app_id, [*cloud.application_tags(payments.app_id), binding])
    story.step(f"Dana created {VAULT}/{CERTIFICATE} (Self issuer, 12 months, ProviderAddress=payments-api), put it")
    story.say(
        f"    on the app once (az ad app credential reset --cert {CERTIFICATE} --keyvault ... --append) and bound it"
    )
    on_call = await asyncio.to_thread(cloud.api_client, "release tooling", OPERATOR_ROLE)
    token = await asyncio.to_thread(cloud.api_token, on_call)
    story.step(f"operator: POST /api/secrets/{VAULT}/{CERTIFICATE}/rotate (a planned roll, by the certificate's name)")
    request = func.HttpRequest(
        "POST",
        f"https://func-rotator.example.net/api/secrets/{VAULT}/{CERTIFICATE}/rotate",
        headers={"content-type": "application/json", "x-functions-key": "demo", "Authorization": f"Bearer {token}"},
        route_params={"vault": VAULT, "name": CERTIFICATE},
        body=json.dumps({"reason": "planned certificate roll", "emergency": False}).encode(),
    )
    out = Out()
    response = await handlers["rotate_secret"](request, out)
    story.step(f"HTTP {response.status_code} {json.loads(response.get_body())}")
    await enqueue(out.messages())
    await drain_queue(handlers, story)
    versions = cloud.certificate_versions(VAULT, CERTIFICATE)
    on_app = {k.thumbprint for k in cloud.key_credentials(payments.app_id)}
    both = {first.thumbprint, versions[-1].thumbprint} <= on_app
    story.step(
        f"payments-api holds both certificates for the grace period: {first.thumbprint[:8]}... (old) and "
        f"{versions[-1].thumbprint[:8]}... (new): {'yes' if both else 'NO'}"
    )
    outcome = await asyncio.to_thread(consumer_signs_in_with_certificate, cloud, scene.operator, payments.app_id)
    story.step(f"the payments service reads {CERTIFICATE} from Key Vault and signs in with it: {outcome}")
    return len(versions) == 2 and both and outcome == "signed in"


def consumer_signs_in_with_certificate(cloud: LocalCloud, operator: dict[str, str], app_id: str) -> str:
    """What a consumer of the certificate does: read its latest version (the PKCS#12 behind it) from Key
    Vault and sign in with azure-identity's CertificateCredential; the outcome only."""

    async def pfx() -> bytes:
        async with (
            AsyncClientSecretCredential(
                cloud.tenant_id, operator["appId"], operator["secret"], authority=cloud.authority
            ) as credential,
            SecretClient(cloud.vault_url(VAULT), credential, verify_challenge_resource=False) as client,
        ):
            return base64.b64decode((await client.get_secret(CERTIFICATE)).value or "")

    credential = CertificateCredential(
        cloud.tenant_id,
        app_id,
        certificate_data=asyncio.run(pfx()),
        authority=cloud.authority,
        disable_instance_discovery=True,
    )
    try:
        credential.get_token("https://graph.microsoft.com/.default")
        return "signed in"
    except ClientAuthenticationError as error:
        code = next((w for w in str(error).replace(":", " ").split() if w.startswith("AADSTS")), "refused")
        return f"refused ({code})"


def consumer_signs_in(cloud: LocalCloud, app_id: str, value: str) -> str:
    """One client-credentials sign-in, as the payments service makes it; the outcome without the value."""
    credential = ClientSecretCredential(
        cloud.tenant_id, app_id, value, authority=cloud.authority, disable_instance_discovery=True
    )
    try:
        credential.get_token("https://graph.microsoft.com/.default")
        return "signed in"
    except ClientAuthenticationError as error:
        code = next((w for w in str(error).replace(":", " ").split() if w.startswith("AADSTS")), "refused")
        return f"refused ({code})"


async def latest_value(cloud: LocalCloud, operator: dict[str, str], name: str) -> str:
    async with (
        AsyncClientSecretCredential(
            cloud.tenant_id, operator["appId"], operator["secret"], authority=cloud.authority
        ) as credential,
        SecretClient(cloud.vault_url(VAULT), credential, verify_challenge_resource=False) as client,
    ):
        return (await client.get_secret(name)).value or ""


async def chapter_evidence(cloud: RotatorCloud, handlers: dict[str, Any], story: Story, scene: Scene) -> None:
    story.chapter("4. Retirement on evidence: a consumer that did not move")
    payments = next(s for s in scene.seeded if s.name == "payments-api")

    async def days_later(days: int, what: str) -> None:
        cloud.advance_clock(days * 86400, emit_events=False)
        story.step(f"{days} days later ({cloud.now():%Y-%m-%d}): {what}")

    await days_later(2, "the payments service still uses the value it cached before the rotation")
    outcome = await asyncio.to_thread(consumer_signs_in, cloud, payments.app_id, scene.cached_payments_value)
    story.step(f"  payments service, old value: {outcome}")
    await days_later(4, "the grace period (24 h) is long over; the hourly sweep runs")
    await chapter_sweep_quietly(handlers, story)

    new_value = await latest_value(cloud, scene.operator, payments.name)
    outcome = await asyncio.to_thread(consumer_signs_in, cloud, payments.app_id, new_value)
    story.step(f"the payments service restarts and reads the latest version from Key Vault: {outcome}")
    await days_later(6, "the report shows no sign-in with the old credential for 72 h; the sweep runs")
    await chapter_sweep_quietly(handlers, story)
    outcome = await asyncio.to_thread(consumer_signs_in, cloud, payments.app_id, scene.cached_payments_value)
    story.step(f"  the old value now: {outcome}")


async def chapter_sweep_quietly(handlers: dict[str, Any], story: Story) -> None:
    out = Out()
    await handlers["sweep"](func.timer.TimerRequest(past_due=False), out)
    messages = out.messages()
    story.step(f"  sweep enqueued {len(messages)} request(s)")
    await enqueue(messages)
    await drain_queue(handlers, story)


# --- the proof -----------------------------------------------------------------------------------
def prove(cloud: LocalCloud, operator: dict[str, str], seeded: list[Seeded], ledger: Ledger, story: Story) -> bool:
    story.chapter("6. Proof: every managed secret's latest value signs in")

    async def latest() -> dict[str, Any]:
        async with (
            AsyncClientSecretCredential(
                cloud.tenant_id, operator["appId"], operator["secret"], authority=cloud.authority
            ) as credential,
            SecretClient(cloud.vault_url(VAULT), credential, verify_challenge_resource=False) as client,
        ):
            return {item.name: await client.get_secret(item.name) for item in seeded}

    bundles = asyncio.run(latest())
    ok = True
    rows = []
    for item in seeded:
        bundle = bundles[item.name]
        tags = bundle.properties.tags or {}
        credential = ClientSecretCredential(
            cloud.tenant_id, item.app_id, bundle.value or "", authority=cloud.authority, disable_instance_discovery=True
        )
        try:
            credential.get_token("https://graph.microsoft.com/.default")
            proof = "signs in"
        except Exception as error:  # the reason is printed without the value
            ok = False
            proof = f"FAILS ({type(error).__name__})"
        expires = bundle.properties.expires_on
        retiring = tags.get("RetireCredentialId")
        rows.append(
            [
                item.name,
                item.app_name,
                ledger.created.get(item.name, "-"),
                ", ".join(ledger.retired.get(item.name, [])) or "-",
                f"{retiring[:8]}... after {tags.get('RetireAfter', '')[:16]}" if retiring else "-",
                expires.strftime("%Y-%m-%d") if expires else "never",
                tags.get("RotationState", "-"),
                proof,
            ]
        )
    headers = ["secret", "app", "new keyId", "retired keyIds", "pending retirement", "expires", "state", "latest value"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    story.say("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    story.say("  ".join("-" * w for w in widths))
    for row in rows:
        story.say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return ok


def leak_check(cloud: LocalCloud, story: Story) -> bool:
    issued = cloud.admin("GET", "/issued-secrets")["secrets"]
    leaked = [value for value in issued if value and value in story.transcript.getvalue()]
    story.say()
    if leaked:
        story.say(f"LEAK: {len(leaked)} secret value(s) appeared in this output.")
        return False
    story.say(f"No secret value appeared in this output (checked against all {len(issued)} values the cloud issued).")
    return True


# --- main ----------------------------------------------------------------------------------------
def run(tls: LocalTLS, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m rotation demo", description=__doc__)
    parser.add_argument("--propagation-seconds", type=float, default=4.0, help="Entra propagation window")
    args = parser.parse_args(argv)
    if not 0 <= args.propagation_seconds <= 30:
        parser.error("--propagation-seconds must be between 0 and 30")
    story = Story()
    ledger = Ledger()
    story.say("Entra ID client-secret rotator - demo on the local cloud (no Azure tenant needed)")
    try:
        storage = running_azurite(search=[NODE_BIN])
        azurite = storage.__enter__()
    except AzuriteMissing as missing:
        print(f"error: {missing} In this repository `make demo` runs `npm ci`.")
        return 1
    try:
        with RotatorCloud(tls=tls, vaults=(VAULT,)) as cloud:
            os.environ.update(cloud.env)
            os.environ.update(DEMO_SETTINGS)
            story.say(f"Storage: Azurite blob {azurite.blob_endpoint}, queue {azurite.queue_endpoint}")
            cloud.admin("PUT", "/config", {"propagationSeconds": args.propagation_seconds, "replicas": 3})
            scene = seed(cloud, story)
            import function_app

            # The real function objects, on the local cloud's clock: days pass in seconds, and the
            # rotator must see the same days as Entra and its sign-in report.
            # (`LocalCloud.now()` is that clock, so the cloud itself is the rotator's `Clock`.)
            def runtime(settings: Settings) -> AbstractAsyncContextManager[Runtime]:
                return open_runtime(settings, clock=cloud)

            app = function_app.create_app(EdgeConfig(clock=cloud.now, runtime=runtime))
            handlers: dict[str, Any] = {str(f.get_function_name()): f.get_user_function() for f in app.get_functions()}
            narrator = Narrator(story, ledger)
            rotation_log = logging.getLogger("rotation")
            rotation_log.addHandler(narrator)
            rotation_log.setLevel(logging.INFO)
            rotation_log.propagate = False  # the narrator tells the story; no raw log lines in between
            for noisy in ("azure", "httpx", "msal", "kiota_http"):
                logging.getLogger(noisy).setLevel(logging.CRITICAL)
            try:
                asyncio.run(chapter_event(cloud, handlers, story))
                asyncio.run(chapter_sweep(handlers, story))
                broken = next(s for s in scene.seeded if s.name == "reports-batch")
                asyncio.run(chapter_emergency(cloud, handlers, story, broken))
                asyncio.run(chapter_evidence(cloud, handlers, story, scene))
                certificate_rotated = asyncio.run(chapter_certificate(cloud, handlers, story, scene))
            finally:
                rotation_log.removeHandler(narrator)
                rotation_log.propagate = True
            proven = prove(cloud, scene.operator, scene.seeded, ledger, story)
            clean = leak_check(cloud, story)
    finally:
        storage.__exit__(None, None, None)
    story.say(f"Done in {time.monotonic() - story.started:.0f} s.")
    return 0 if proven and clean and certificate_rotated else 1
