# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh), RBAC authorization on.
"""A 403 from the real authorizer is permanent, is not retried, and says which verb on
which resource is missing. The caller is a user granted only the rules each test gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from kuberay.leader import LeaderElector
from kuberay.retry import Backoff
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAME, NAMESPACE, rayservice_object
from tests.kuberay.control_plane import ControlPlane, seed_rayservice

pytestmark = pytest.mark.k8s

USER = "nobody"


def grant(admin: k8s.ApiClient, rules: list[dict[str, Any]]) -> None:
    """Bind a Role with `rules` to USER in NAMESPACE."""
    rbac = k8s.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(NAMESPACE, {"metadata": {"name": "partial"}, "rules": rules})
    rbac.create_namespaced_role_binding(
        NAMESPACE,
        {
            "metadata": {"name": "partial"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "partial"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        },
    )


def rule(group: str, resource: str, *verbs: str) -> dict[str, Any]:
    """One RBAC rule."""
    return {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}


@pytest.fixture
def user_api(cluster: ControlPlane, admin_api: k8s.ApiClient) -> Iterator[k8s.ApiClient]:
    """A client for USER, which authenticates and is granted nothing by itself."""
    seed_rayservice(admin_api, rayservice_object())
    client = cluster.client(cluster.nobody_token, user=USER)
    yield client
    client.close()


def rs_client(api: k8s.ApiClient, sleeps: list[float]) -> RayServiceClient:
    """A RayService client whose back-off sleeps are recorded, not slept."""
    return RayServiceClient(
        k8s.CustomObjectsApi(api), NAMESPACE, backoff=Backoff(attempts=3), sleep=sleeps.append
    )


def test_forbidden_patch_names_the_patch_verb(
    admin_api: k8s.ApiClient, user_api: k8s.ApiClient, sleeps: list[float]
) -> None:
    grant(admin_api, [rule("ray.io", "rayservices", "get")])

    with pytest.raises(PermanentError) as err:
        rs_client(user_api, sleeps).patch_serve_config(NAME, lambda cur: "applications: []\n")

    message = str(err.value)
    assert "may not 'patch' 'rayservices' (apiGroup ray.io)" in message
    assert f"in namespace {NAMESPACE!r}" in message
    assert f'User "{USER}" cannot patch resource "rayservices"' in message
    assert sleeps == [], "a 403 is not retried"


def test_forbidden_list_names_the_list_verb(user_api: k8s.ApiClient, sleeps: list[float]) -> None:
    with pytest.raises(PermanentError, match="may not 'list' 'rayservices'"):
        rs_client(user_api, sleeps).list()


def test_forbidden_status_read_names_the_status_subresource(
    admin_api: k8s.ApiClient, user_api: k8s.ApiClient, sleeps: list[float]
) -> None:
    grant(admin_api, [rule("ray.io", "rayservices", "get")])

    with pytest.raises(PermanentError) as err:
        rs_client(user_api, sleeps).get_status(NAME)

    assert "may not 'get' 'rayservices/status'" in str(err.value)
    assert 'cannot get resource "rayservices/status"' in str(err.value)


def test_a_missing_rayservice_is_permanent(admin_api: k8s.ApiClient, sleeps: list[float]) -> None:
    with pytest.raises(PermanentError, match="not found"):
        rs_client(admin_api, sleeps).get("nope")
    assert sleeps == []


def test_forbidden_lease_create_stops_the_elector_with_the_verb(
    admin_api: k8s.ApiClient, user_api: k8s.ApiClient, clock: ManualClock
) -> None:
    grant(admin_api, [rule("coordination.k8s.io", "leases", "get", "update")])
    elector = LeaderElector(
        k8s.CoordinationV1Api(user_api), NAMESPACE, "governor-leader", "a", clock
    )

    assert not elector.try_acquire_or_renew()
    assert elector.last_error is not None
    assert "may not 'create' 'leases' (apiGroup coordination.k8s.io)" in elector.last_error
    assert 'cannot create resource "leases"' in elector.last_error
