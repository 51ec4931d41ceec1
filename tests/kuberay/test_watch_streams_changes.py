# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""Watching a RayService yields its current state, then each change.

The daemon itself holds no watch (each tick reads afresh: see
test_the_daemon_reads_again_after_an_api_server_restart.py); the client's watch is for
tools and the tests.
"""

from __future__ import annotations

import threading

import pytest
from kubernetes import client as k8s

from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from tests.kuberay.conftest import NAME, NAMESPACE, rayservice_object, upgrading_status
from tests.kuberay.control_plane import ControlPlane, seed_rayservice, set_rayservice_status

pytestmark = pytest.mark.k8s


def client_on(api: k8s.ApiClient) -> RayServiceClient:
    """A RayService client in NAMESPACE."""
    return RayServiceClient(k8s.CustomObjectsApi(api), NAMESPACE, request_timeout_s=5)


def test_a_watch_sees_the_object_then_its_status_change(admin_api: k8s.ApiClient) -> None:
    seed_rayservice(admin_api, rayservice_object())
    seen = []
    for event in client_on(admin_api).watch(NAME, timeout_s=10):
        seen.append(event)
        if len(seen) == 1:
            threading.Thread(
                target=set_rayservice_status,
                args=(admin_api, NAMESPACE, NAME, upgrading_status()),
            ).start()
        if len(seen) == 2:
            break

    assert [e.type for e in seen] == ["ADDED", "MODIFIED"]
    assert not seen[0].service.status.upgrade_in_progress
    assert seen[1].service.status.upgrade_in_progress


def test_a_watch_from_a_resource_version_sees_only_later_changes(
    admin_api: k8s.ApiClient,
) -> None:
    seed_rayservice(admin_api, rayservice_object())
    client = client_on(admin_api)
    since = client.get(NAME).resource_version
    set_rayservice_status(admin_api, NAMESPACE, NAME, upgrading_status())

    events = list(client.watch(NAME, timeout_s=2, resource_version=since))

    assert [e.type for e in events] == ["MODIFIED"]
    assert events[0].service.status.upgrade_in_progress


def test_a_forbidden_watch_names_the_watch_verb(
    cluster: ControlPlane, admin_api: k8s.ApiClient
) -> None:
    nobody = cluster.client(cluster.nobody_token, user="nobody")
    try:
        with pytest.raises(PermanentError) as err:
            list(client_on(nobody).watch(NAME, timeout_s=1))
    finally:
        nobody.close()

    assert "may not 'watch' 'rayservices'" in str(err.value)
    assert 'User "nobody" cannot watch resource "rayservices"' in str(err.value)
