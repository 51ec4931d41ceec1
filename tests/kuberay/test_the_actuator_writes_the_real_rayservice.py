# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh).
"""The KubeRay actuator against the real server: a plan lands in `spec.serveConfigV2` as
etcd stores it, the same plan again writes nothing, a config put back by someone else is
brought back, and while the status (written through the status subresource, as KubeRay
writes it) says KubeRay is upgrading, nothing is written, even when the upgrade starts
between our read and our patch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from kuberay.actuator import KubeRayActuator
from kuberay.client import RayServiceClient
from kuberay.shards import RayServiceShards
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import (
    NAME,
    NAMESPACE,
    RUNNING_STATUS,
    deployments,
    plan,
    rayservice_object,
    snapshot,
    upgrading_status,
)
from tests.kuberay.control_plane import seed_rayservice, set_rayservice_status

pytestmark = pytest.mark.k8s


class CustomObjectsBeforePatch(k8s.CustomObjectsApi):  # type: ignore[misc]
    """CustomObjectsApi that runs `before` once, just before its first patch is sent."""

    def __init__(self, api: k8s.ApiClient, before: Callable[[], object] | None = None) -> None:
        super().__init__(api)
        self.before = before
        self.patches = 0

    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        """Run `before` (once), then send the patch."""
        if self.before is not None:
            before, self.before = self.before, None
            before()
        self.patches += 1
        return super().patch_namespaced_custom_object(*args, **kwargs)


def actuator_on(custom: k8s.CustomObjectsApi) -> KubeRayActuator:
    """An actuator on the one RayService NAME, without the scale API."""
    client = RayServiceClient(custom, NAMESPACE, sleep=lambda s: None)
    return KubeRayActuator(client, RayServiceShards(client, names=[NAME]), governor_config())


def stored(api: k8s.ApiClient) -> dict[str, Any]:
    """The RayService as etcd has it."""
    return dict(
        k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "ray.io", "v1", NAMESPACE, "rayservices", NAME
        )
    )


def stored_deployments(api: k8s.ApiClient) -> dict[str, dict[str, Any]]:
    """The embed application's deployments in the stored serveConfigV2."""
    return deployments(yaml.safe_load(stored(api)["spec"]["serveConfigV2"]))


def test_a_plan_lands_once_and_the_same_plan_again_writes_nothing(
    admin_api: k8s.ApiClient,
) -> None:
    seed_rayservice(admin_api, rayservice_object())
    generation = stored(admin_api)["metadata"]["generation"]
    actuator = actuator_on(k8s.CustomObjectsApi(admin_api))

    first = actuator.apply(plan(3, 2, {"v1": 90, "v2": 10}), snapshot(1, 1))
    after_first = stored(admin_api)["metadata"]
    second = actuator.apply(plan(3, 2, {"v1": 90, "v2": 10}), snapshot(3, 2))

    assert first.changes and not second.changes
    deps = stored_deployments(admin_api)
    assert deps["model_v1"]["num_replicas"] == 3
    assert deps["model_v2"]["num_replicas"] == 2
    assert deps["router"]["user_config"]["weights"] == {"v1": 90, "v2": 10}
    assert deps["model_v1"]["ray_actor_options"] == {"num_gpus": 1}, "the rest is kept"
    assert after_first["generation"] == generation + 1
    assert stored(admin_api)["metadata"]["resourceVersion"] == after_first["resourceVersion"]


def test_a_config_put_back_by_someone_else_is_brought_back(admin_api: k8s.ApiClient) -> None:
    seed_rayservice(admin_api, rayservice_object())
    custom = k8s.CustomObjectsApi(admin_api)
    actuator = actuator_on(custom)
    actuator.apply(plan(3, 1), snapshot(1, 1))
    original = rayservice_object()["spec"]["serveConfigV2"]
    custom.patch_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", NAME, {"spec": {"serveConfigV2": original}}
    )

    result = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert result.changes
    assert stored_deployments(admin_api)["model_v1"]["num_replicas"] == 3


def test_upgrade_in_progress_holds_then_the_plan_lands_after_it(
    admin_api: k8s.ApiClient,
) -> None:
    seed_rayservice(admin_api, rayservice_object(status=upgrading_status()))
    actuator = actuator_on(k8s.CustomObjectsApi(admin_api))
    version = stored(admin_api)["metadata"]["resourceVersion"]

    held = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert held.held is not None and "UpgradeInProgress (BothActivePendingClustersExist)" in (
        held.held
    )
    assert stored(admin_api)["metadata"]["resourceVersion"] == version, "nothing written"
    set_rayservice_status(admin_api, NAMESPACE, NAME, copy.deepcopy(RUNNING_STATUS))
    applied = actuator.apply(plan(3, 1), snapshot(1, 1))
    assert applied.held is None
    assert stored_deployments(admin_api)["model_v1"]["num_replicas"] == 3


def test_an_upgrade_that_starts_between_read_and_patch_gets_a_409_and_holds(
    admin_api: k8s.ApiClient,
) -> None:
    seed_rayservice(admin_api, rayservice_object())
    # KubeRay writes the status after our read: a status write moves the object's
    # resourceVersion too, so our patch meets a 409 and the fresh read shows the upgrade.
    custom = CustomObjectsBeforePatch(
        admin_api,
        before=lambda: set_rayservice_status(admin_api, NAMESPACE, NAME, upgrading_status()),
    )

    result = actuator_on(custom).apply(plan(3, 1), snapshot(1, 1))

    assert custom.patches == 1 and custom.before is None
    assert result.held is not None and "UpgradeInProgress" in result.held
    assert stored_deployments(admin_api)["model_v1"]["num_replicas"] == 1
