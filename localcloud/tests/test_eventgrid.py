"""Event Grid custom topics: the unmodified azure-eventgrid `EventGridPublisherClient` (aio) publishes
CloudEvents 1.0 batches with a managed identity's token, and plain HTTPS pins what the SDK hides
(status codes, content types, error bodies, the audience and role checks)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid.aio import EventGridPublisherClient
from azure.identity.aio import ManagedIdentityCredential

from localcloud.admin import AdminError
from localcloud.cloud import LocalCloud, ManagedIdentity
from localcloud.tests.test_graph import trust

BATCH = "application/cloudevents-batch+json; charset=utf-8"


def _topic(cloud: LocalCloud) -> str:
    name = f"tp-{uuid.uuid4().hex[:10]}"
    cloud.create_topic(name)
    return name


def _mi_token(cloud: LocalCloud, identity: ManagedIdentity, resource: str = "https://eventgrid.azure.net") -> str:
    response = httpx.get(
        cloud.identity_endpoint,
        params={"resource": resource, "api-version": "2019-08-01", "client_id": identity.app_id},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        verify=trust(cloud),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _post(
    cloud: LocalCloud, name: str, body: Any, token: str | None, content_type: str = BATCH, **params: str
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else httpx.Request("POST", "http://x", json=body).content
    return httpx.post(
        cloud.topic_url(name),
        params={"api-version": "2018-01-01", **params},
        content=content,
        headers=headers,
        verify=trust(cloud),
    )


def _event(**extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "source": "/rotator", "type": "Rotation.Test", "specversion": "1.0", **extra}


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message.endswith("to our forums for assistance or raise a support ticket.")
    return message


@pytest.fixture
def sender(cloud: LocalCloud) -> Iterator[ManagedIdentity]:
    yield cloud.create_managed_identity(f"sender-{uuid.uuid4().hex[:6]}")


async def test_the_sdk_publishes_a_cloudevents_batch_with_a_managed_identity(
    cloud: LocalCloud, workload: ManagedIdentity
) -> None:
    name = _topic(cloud)
    cloud.assign_topic_role(name, workload.sp_object_id)
    events = [
        CloudEvent(source="/secret-rotator", type="SecretRotator.RotationCompleted", data={"app": "a1"}, subject="a1"),
        CloudEvent(source="/secret-rotator", type="SecretRotator.RetirementHeld", data={"keyId": "k"}),
    ]
    async with (
        ManagedIdentityCredential() as credential,
        EventGridPublisherClient(cloud.topic_url(name), credential) as client,
    ):
        await client.send(events)
        await client.send(CloudEvent(source="/secret-rotator", type="SecretRotator.NotBound", data=None))
    published = cloud.published_events(name)
    assert [e["type"] for e in published] == [
        "SecretRotator.RotationCompleted",
        "SecretRotator.RetirementHeld",
        "SecretRotator.NotBound",
    ]
    first = published[0]
    assert first["specversion"] == "1.0" and first["id"] == events[0].id and first["subject"] == "a1"
    assert first["data"] == {"app": "a1"} and first["source"] == "/secret-rotator" and "time" in first
    # The admin route pages with `since`, and the cloud's request log names the publisher.
    assert [e["type"] for e in cloud.admin("GET", f"/topics/{name}/events?since=2")["events"]] == [
        "SecretRotator.NotBound"
    ]
    posts = [r for r in cloud.admin("GET", "/requests")["requests"] if r["service"] == "eventgrid"]
    assert posts[-1]["status"] == 200 and posts[-1]["caller"] == workload.app_id
    assert posts[-1]["path"].startswith("/api/events?api-version=2018-01-01")


async def test_the_sdk_without_the_role_is_refused_and_nothing_is_kept(
    cloud: LocalCloud, sender: ManagedIdentity
) -> None:
    name = _topic(cloud)
    async with (
        ManagedIdentityCredential(client_id=sender.app_id) as credential,
        EventGridPublisherClient(cloud.topic_url(name), credential) as client,
    ):
        with pytest.raises(ClientAuthenticationError) as refused:
            await client.send([CloudEvent(source="/s", type="T", data={})])
        assert refused.value.status_code == 401
        cloud.assign_topic_role(name, sender.sp_object_id)
        await client.send([CloudEvent(source="/s", type="T", data={})])  # the role counts at once
        cloud.admin(
            "DELETE",
            f"/topics/{name}/role-assignments",
            {"objectId": sender.sp_object_id, "role": "EventGrid Data Sender"},
        )
        with pytest.raises(ClientAuthenticationError):
            await client.send([CloudEvent(source="/s", type="T", data={})])
    assert len(cloud.published_events(name)) == 1


def test_success_is_200_with_an_empty_body(cloud: LocalCloud, sender: ManagedIdentity) -> None:
    name = _topic(cloud)
    cloud.assign_topic_role(name, sender.sp_object_id)
    token = _mi_token(cloud, sender)
    response = _post(cloud, name, [_event(data={"n": 1}), _event(data_base64="aGk=", myext="x")], token)
    assert (response.status_code, response.content) == (200, b"")
    single = _post(cloud, name, _event(), token, "application/cloudevents+json; charset=utf-8")
    assert single.status_code == 200
    assert [e.get("myext") for e in cloud.published_events(name)] == [None, "x", None]


def test_authentication_and_authorisation_answer_401(cloud: LocalCloud, sender: ManagedIdentity) -> None:
    name = _topic(cloud)
    assert "Microsoft Entra" in _error(_post(cloud, name, [_event()], None), 401, "Unauthorized")
    _error(_post(cloud, name, [_event()], "not-a-token"), 401, "Unauthorized")
    vault_token = _mi_token(cloud, sender, "https://vault.azure.net")
    assert "audience" in _error(_post(cloud, name, [_event()], vault_token), 401, "Unauthorized")
    token = _mi_token(cloud, sender)
    denied = _error(_post(cloud, name, [_event()], token), 401, "Unauthorized")
    assert "EventGrid Data Sender" in denied and sender.sp_object_id in denied
    cloud.admin("POST", "/tokens/expire", {"token": token})
    cloud.assign_topic_role(name, sender.sp_object_id)
    assert "expired" in _error(_post(cloud, name, [_event()], token), 401, "Unauthorized")
    # A role on one topic is not a role on another.
    other = _topic(cloud)
    _error(_post(cloud, other, [_event()], _mi_token(cloud, sender)), 401, "Unauthorized")
    assert cloud.published_events(name) == [] and cloud.published_events(other) == []


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        ([_event()], "application/json; charset=utf-8", "Content-Type"),  # the Event Grid schema's type
        (_event(), BATCH, "StartArray"),  # a batch must be an array
        ([], BATCH, "no events"),
        (b"[{not json", BATCH, "not valid JSON"),
        ([_event(), {"source": "/s", "type": "T", "specversion": "1.0"}], BATCH, "'id'"),
        ([_event(specversion="0.3")], BATCH, "specversion"),
        ([_event(type="")], BATCH, "'type'"),
        ([_event(data={}, data_base64="aGk=")], BATCH, "data_base64"),
        ([_event(time="yesterday")], BATCH, "'time'"),
        ([_event(time="2024-01-01")], BATCH, "'time'"),
        ([_event(**{"Bad-Name": 1})], BATCH, "Bad-Name"),
        (["just a string"], BATCH, "JSON object"),
    ],
)
def test_malformed_cloudevents_answer_400_and_nothing_is_kept(
    cloud: LocalCloud, sender: ManagedIdentity, body: Any, content_type: str, needle: str
) -> None:
    name = _topic(cloud)
    cloud.assign_topic_role(name, sender.sp_object_id)
    response = _post(cloud, name, body, _mi_token(cloud, sender), content_type)
    assert needle in _error(response, 400, "BadRequest")
    assert cloud.published_events(name) == []  # a batch is accepted whole or not at all


def test_api_version_size_and_unknown_paths(cloud: LocalCloud, sender: ManagedIdentity) -> None:
    name = _topic(cloud)
    cloud.assign_topic_role(name, sender.sp_object_id)
    token = _mi_token(cloud, sender)
    no_version = httpx.post(
        cloud.topic_url(name),
        content=b"[]",
        headers={"Content-Type": BATCH, "Authorization": f"Bearer {token}"},
        verify=trust(cloud),
    )
    assert "api-version" in _error(no_version, 400, "BadRequest")
    huge = [_event(data="x" * (1024 * 1024))]
    _error(_post(cloud, name, huge, token), 413, "RequestEntityTooLarge")
    lost = httpx.get(cloud.topic_url(name).replace("/api/events", "/elsewhere"), verify=trust(cloud))
    _error(lost, 404, "NotFound")


def test_topics_are_admin_resources(cloud: LocalCloud, sender: ManagedIdentity) -> None:
    name = _topic(cloud)
    url = cloud.topic_url(name)
    assert url.startswith("https://127.0.0.1:") and url.endswith("/api/events")
    assert url not in {v for v in cloud.vault_urls.values()}
    [state] = [t for t in cloud.admin("GET", "/state")["topics"] if t["name"] == name]
    assert state["endpoint"] == url and state["resourceId"].endswith(f"/Microsoft.EventGrid/topics/{name}")
    cloud.assign_topic_role(name, sender.sp_object_id)
    [state] = [t for t in cloud.admin("GET", "/state")["topics"] if t["name"] == name]
    assert state["roleAssignments"] == {sender.sp_object_id: ["EventGrid Data Sender"]}
    with pytest.raises(AdminError) as taken:
        cloud.create_topic(name)
    assert taken.value.status == 409
    for bad in ({"name": "x"}, {"name": "has space"}):
        with pytest.raises(AdminError) as invalid:
            cloud.admin("POST", "/topics", bad)
        assert invalid.value.status == 400
    with pytest.raises(AdminError) as role:
        cloud.assign_topic_role(name, sender.sp_object_id, "EventGrid Contributor")
    assert role.value.status == 400
    with pytest.raises(AdminError) as missing:
        cloud.published_events("no-such-topic")
    assert missing.value.status == 404
    with pytest.raises(KeyError):
        cloud.topic_url("no-such-topic")


async def test_injected_faults_reach_the_sdk(cloud: LocalCloud, workload: ManagedIdentity) -> None:
    name = _topic(cloud)
    cloud.assign_topic_role(name, workload.sp_object_id)
    cloud.admin("POST", "/faults", {"service": "eventgrid", "status": 500, "count": 1})
    async with (
        ManagedIdentityCredential() as credential,
        EventGridPublisherClient(cloud.topic_url(name), credential, retry_total=0) as client,
    ):
        with pytest.raises(HttpResponseError) as failed:
            await client.send([CloudEvent(source="/s", type="T", data={})])
        assert failed.value.status_code == 500
        await client.send([CloudEvent(source="/s", type="T", data={})])
    assert len(cloud.published_events(name)) == 1
