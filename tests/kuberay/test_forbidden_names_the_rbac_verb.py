"""A 403 is permanent, is not retried, and says which verb on which resource is missing."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from kuberay.leader import LeaderElector
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAME, NAMESPACE
from tests.kuberay.fake_apiserver import FakeApiServer


def test_forbidden_patch_names_the_patch_verb(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    rayservice: dict[str, Any],
    sleeps: list[float],
) -> None:
    apiserver.add_fault("PATCH", NAME, status=403)

    with pytest.raises(PermanentError) as err:
        rs_client.patch_serve_config(NAME, lambda cur: "applications: []\n")

    message = str(err.value)
    assert "may not 'patch' 'rayservices' (apiGroup ray.io)" in message
    assert f"in namespace {NAMESPACE!r}" in message
    assert apiserver.count("PATCH", NAME) == 1
    assert sleeps == []


def test_forbidden_list_names_the_list_verb(
    apiserver: FakeApiServer, rs_client: RayServiceClient
) -> None:
    apiserver.add_fault("GET", r"/rayservices$", status=403)

    with pytest.raises(PermanentError, match="may not 'list' 'rayservices'"):
        rs_client.list()


def test_forbidden_status_read_names_the_status_subresource(
    apiserver: FakeApiServer, rs_client: RayServiceClient, rayservice: dict[str, Any]
) -> None:
    apiserver.add_fault("GET", r"/status$", status=403)

    with pytest.raises(PermanentError, match="may not 'get' 'rayservices/status'"):
        rs_client.get_status(NAME)


def test_a_missing_rayservice_is_permanent(
    apiserver: FakeApiServer, rs_client: RayServiceClient, sleeps: list[float]
) -> None:
    with pytest.raises(PermanentError, match="not found"):
        rs_client.get("nope")
    assert sleeps == []


def test_forbidden_lease_create_stops_the_elector_with_the_verb(
    apiserver: FakeApiServer, api: k8s.ApiClient, clock: ManualClock
) -> None:
    apiserver.add_fault("POST", r"/leases$", status=403)
    elector = LeaderElector(k8s.CoordinationV1Api(api), NAMESPACE, "governor-leader", "a", clock)

    assert not elector.try_acquire_or_renew()
    assert elector.last_error is not None
    assert "may not 'create' 'leases' (apiGroup coordination.k8s.io)" in elector.last_error
