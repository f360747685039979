"""Fault injection of the admin API beyond statuses: a stalled endpoint that never answers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from localcloud.cloud import LocalCloud

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _token_request(cloud: LocalCloud, timeout: float | tuple[float, float]) -> requests.Response:
    app = cloud.admin("POST", "/applications", {"displayName": "svc-fault-test"})
    credential = cloud.admin("POST", f"/applications/{app['id']}/passwords", {})
    return requests.post(
        f"{cloud.authority}/{cloud.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": app["appId"],
            "client_secret": credential["secretText"],
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
        },
        verify=cloud.ca_bundle,
        timeout=timeout,
    )


def _statuses(cloud: LocalCloud, since: int) -> list[tuple[str, int]]:
    return [(r["service"], r["status"]) for r in cloud.admin("GET", f"/requests?since={since}")["requests"]]


def test_a_stall_fault_answers_nothing_until_the_caller_gives_up(cloud: LocalCloud) -> None:
    since = cloud.admin("GET", "/requests?since=0")["next"]
    cloud.admin("POST", "/faults", {"service": "entra", "stall": True, "delayMs": 60000, "pathRegex": "/token$"})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        _token_request(cloud, timeout=(5, 1))
    assert time.monotonic() - started < 30  # the caller's timeout ended it, not the stall's 60 s
    # The fault is spent: the next request is answered.
    assert _token_request(cloud, timeout=10).status_code == 200
    for _ in range(60):  # the stalled request is logged (status 0) once the cloud notices the hang-up
        if ("entra", 0) in _statuses(cloud, since):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the stalled request was never logged")


def test_a_bounded_stall_drops_the_connection_without_an_answer(cloud: LocalCloud) -> None:
    cloud.admin("POST", "/faults", {"service": "entra", "stall": True, "delayMs": 300, "pathRegex": "/token$"})
    with pytest.raises(requests.exceptions.ConnectionError):
        _token_request(cloud, timeout=10)
    assert cloud.admin("GET", "/faults")["faults"][0]["stall"] is True


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"service": "entra", "stall": True, "status": 500}, "'stall' never answers"),
        ({"service": "entra", "stall": True, "drop": True}, "'stall' never answers"),
        ({"service": "entra", "delayMs": -1}, "must not be negative"),
        ({"service": "entra", "stall": "yes"}, "wrong type"),
    ],
)
def test_bad_stall_faults_are_refused(cloud: LocalCloud, body: dict[str, Any], fragment: str) -> None:
    response = requests.post(cloud.admin_url + "/faults", json=body, verify=cloud.ca_bundle, timeout=10)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]
