# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh), RBAC authorization on.
"""The daemon authenticates as its ServiceAccount with a token the API server issued (not
the admin's), under the rendered Role and RoleBinding: it can make every call it makes,
a call outside the Role is refused by the real authorizer (403), and a Role missing a
verb the daemon needs is named in the error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.config import incluster_config

from controller.decisions import Plan
from controller.errors import PermanentError
from kuberay.client import RayServiceClient
from kuberay.connect import api_client
from kuberay.errors import Operation, k8s_call
from kuberay.target import ClusterTarget, build_kuberay_target
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import NAME, NAMESPACE, plan, rayservice_object, rendered, snapshot
from tests.kuberay.control_plane import ControlPlane, seed_rayservice

pytestmark = pytest.mark.k8s

ACCOUNT = rendered("ServiceAccount")["metadata"]["name"]


def grant(admin: k8s.ApiClient, rules: list[dict[str, Any]] | None = None) -> None:
    """Create the rendered Role (or one with `rules`) and RoleBinding."""
    rbac = k8s.RbacAuthorizationV1Api(admin)
    role = dict(rendered("Role"))
    if rules is not None:
        role["rules"] = rules
    rbac.create_namespaced_role(NAMESPACE, role)
    rbac.create_namespaced_role_binding(NAMESPACE, rendered("RoleBinding"))


def issued_token(admin: k8s.ApiClient) -> str:
    """A token for the daemon's ServiceAccount from the API server's TokenRequest API."""
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    answer = k8s.CoreV1Api(admin).create_namespaced_service_account_token(
        ACCOUNT, NAMESPACE, request
    )
    return str(answer.status.token)


@pytest.fixture
def daemon_api(cluster: ControlPlane, admin_api: k8s.ApiClient) -> Iterator[k8s.ApiClient]:
    """An ApiClient authenticated as the daemon's ServiceAccount (granted nothing yet)."""
    seed_rayservice(admin_api, rayservice_object())
    k8s.CoreV1Api(admin_api).create_namespaced_service_account(
        NAMESPACE, rendered("ServiceAccount")
    )
    client = cluster.client(issued_token(admin_api), user=ACCOUNT)
    yield client
    client.close()


def target_for(api: k8s.ApiClient, clock: ManualClock) -> ClusterTarget:
    """The KubeRay target as the daemon builds it, on `api`."""
    config = governor_config(target="kuberay", kuberay={"namespace": NAMESPACE, "rayservice": NAME})
    return build_kuberay_target(config, clock, api=api, identity="a")


def test_the_token_is_the_service_accounts_not_the_admins(
    admin_api: k8s.ApiClient, daemon_api: k8s.ApiClient
) -> None:
    grant(admin_api)
    review = k8s.AuthenticationV1Api(daemon_api).create_self_subject_review(
        k8s.V1SelfSubjectReview()
    )

    user = review.status.user_info
    assert user.username == f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
    assert "system:masters" not in (user.groups or [])


def test_the_role_is_enough_for_everything_the_daemon_does(
    admin_api: k8s.ApiClient, daemon_api: k8s.ApiClient, clock: ManualClock
) -> None:
    grant(admin_api)
    target = target_for(daemon_api, clock)
    try:
        assert target.is_leader()  # creates the Lease
        target.source.observe()  # gets the RayService
        target.store.save({"scaling": {"x": 1}})  # creates, then patches ConfigMaps
        target.store.save({"scaling": {"x": 2}})
        assert target.store.load() == {"scaling": {"x": 2}}
        target.actuator.apply(plan(2, 1, {"v1": 90, "v2": 10}), snapshot(1, 1))  # patches
        target.actuator.apply(Plan(), snapshot(2, 1))
        client = target.actuator.client
        client.list(label_selector="governor.ray.io/fleet=governor-fleet")
        client.get_status(NAME)
        list(client.watch(NAME, timeout_s=1))
        clock.advance(5)
        assert target.elector is not None and target.elector.try_acquire_or_renew()  # updates
    finally:
        target.close()  # releases the Lease (an update)

    lease = k8s.CoordinationV1Api(admin_api).read_namespaced_lease("governor-leader", NAMESPACE)
    assert lease.spec.holder_identity is None, "released"
    stored = k8s.CustomObjectsApi(admin_api).get_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", NAME
    )
    assert "90" in stored["spec"]["serveConfigV2"], "the daemon's patch landed"
    managers = {m["manager"] for m in stored["metadata"]["managedFields"]}
    assert "governor" in managers


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        (
            Operation("list", "configmaps", "", NAMESPACE),
            lambda api: k8s.CoreV1Api(api).list_namespaced_config_map(NAMESPACE),
        ),
        (
            Operation("delete", "rayservices", "ray.io", NAMESPACE, NAME),
            lambda api: k8s.CustomObjectsApi(api).delete_namespaced_custom_object(
                "ray.io", "v1", NAMESPACE, "rayservices", NAME
            ),
        ),
        (
            Operation("get", "leases", "coordination.k8s.io", NAMESPACE, "someone-elses"),
            lambda api: k8s.CoordinationV1Api(api).read_namespaced_lease(
                "someone-elses", NAMESPACE
            ),
        ),
        (
            Operation("get", "secrets", "", NAMESPACE, "any"),
            lambda api: k8s.CoreV1Api(api).read_namespaced_secret("any", NAMESPACE),
        ),
        (
            Operation("list", "rayservices", "ray.io", "default"),
            lambda api: k8s.CustomObjectsApi(api).list_namespaced_custom_object(
                "ray.io", "v1", "default", "rayservices"
            ),
        ),
    ],
    ids=["list-configmaps", "delete-rayservice", "other-lease", "secret", "other-namespace"],
)
def test_a_call_outside_the_role_is_refused_by_the_authorizer(
    admin_api: k8s.ApiClient, daemon_api: k8s.ApiClient, operation: Operation, call: Any
) -> None:
    grant(admin_api)

    with pytest.raises(PermanentError) as err:
        k8s_call(operation, lambda: call(daemon_api))

    message = str(err.value)
    assert f"may not {operation.verb!r} {operation.resource!r}" in message
    user = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
    assert f'User "{user}" cannot {operation.verb} resource "{operation.resource}"' in message
    assert isinstance(err.value.__cause__, k8s.ApiException)
    assert err.value.__cause__.status == 403


def test_a_role_without_patch_fails_with_a_message_naming_it(
    admin_api: k8s.ApiClient, daemon_api: k8s.ApiClient, clock: ManualClock
) -> None:
    rules = [dict(r) for r in rendered("Role")["rules"]]
    rules[0]["verbs"] = ["get", "list", "watch"]
    grant(admin_api, rules)
    target = target_for(daemon_api, clock)
    try:
        with pytest.raises(PermanentError) as err:
            target.actuator.apply(plan(2, 1), snapshot(1, 1))
    finally:
        target.close()

    assert "may not 'patch' 'rayservices' (apiGroup ray.io)" in str(err.value)
    assert 'cannot patch resource "rayservices" in API group "ray.io"' in str(err.value)


def test_in_a_pod_the_mounted_token_authenticates_as_the_service_account(
    cluster: ControlPlane,
    admin_api: k8s.ApiClient,
    daemon_api: k8s.ApiClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    grant(admin_api)
    token = tmp_path / "token"
    token.write_text(issued_token(admin_api))
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(cluster.ca_file))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(cluster.api_port))

    api = api_client()  # what the daemon does in its pod: no kubeconfig
    try:
        review = k8s.AuthenticationV1Api(api).create_self_subject_review(k8s.V1SelfSubjectReview())
        service = RayServiceClient(k8s.CustomObjectsApi(api), NAMESPACE).get(NAME)
    finally:
        api.close()

    assert review.status.user_info.username == f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
    assert service.name == NAME
