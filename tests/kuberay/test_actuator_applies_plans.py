"""The KubeRay actuator: a plan becomes a serveConfigV2 patch; idempotent, level-triggered."""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import ConfigError, PermanentError
from controller.transports.ray_dashboard import RayDashboardClient
from kuberay.actuator import KubeRayActuator
from kuberay.client import RayServiceClient
from kuberay.shards import RayServiceShards
from tests.controller.fake_serve import FakeServe
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import (
    PATCH,
    SERVE_CONFIG,
    deployed,
    deployments,
    plan,
    rayservice_object,
    snapshot,
)
from tests.kuberay.fake_apiserver import FakeApiServer


def test_a_plan_lands_in_the_serve_config(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    result = actuator.apply(plan(3, 2, {"v1": 90, "v2": 10}), snapshot(1, 1))

    doc = deployed(apiserver)
    deps = deployments(doc)
    assert deps["model_v1"]["num_replicas"] == 3
    assert deps["model_v2"]["num_replicas"] == 2
    assert deps["router"]["user_config"]["weights"] == {"v1": 90, "v2": 10}
    assert doc["applications"][0]["external_scaler_enabled"] is True
    assert result.held is None
    assert "serveConfigV2: embed/model_v1 num_replicas 1 -> 3" in result.changes
    assert "serveConfigV2: embed weights {'v1': 100, 'v2': 0} -> {'v1': 90, 'v2': 10}" in (
        result.changes
    )
    # Everything the plan does not govern is left as it was.
    assert deps["model_v1"]["ray_actor_options"] == {"num_gpus": 1}
    assert doc["applications"][0]["import_path"] == "serving.app:build_app"


def test_applying_the_same_plan_twice_patches_once(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    first = actuator.apply(plan(3, 1, {"v1": 90, "v2": 10}), snapshot(1, 1))
    second = actuator.apply(plan(3, 1, {"v1": 90, "v2": 10}), snapshot(3, 1))

    assert first.changes and not second.changes
    assert apiserver.count("PATCH", PATCH) == 1


def test_a_config_changed_by_someone_else_is_brought_back(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    actuator.apply(plan(3, 1), snapshot(1, 1))
    # `kubectl apply` of the original manifest resets the replica counts.
    apiserver.seed(rayservice_object())

    result = actuator.apply(plan(3, 1), snapshot(1, 1))

    assert deployments(deployed(apiserver))["model_v1"]["num_replicas"] == 3
    assert result.changes
    assert apiserver.count("PATCH", PATCH) == 2


def test_zero_replicas_keep_one_in_the_config_without_a_scale_api(
    apiserver: FakeApiServer, actuator: KubeRayActuator, rayservice: dict[str, Any]
) -> None:
    actuator.apply(plan(2, 0), snapshot(1, 1))

    assert deployments(deployed(apiserver))["model_v2"]["num_replicas"] == 1


def test_the_scale_api_sets_live_counts_and_zero_once_the_config_is_in_place(
    apiserver: FakeApiServer,
    rs_client: RayServiceClient,
    shards: RayServiceShards,
    rayservice: dict[str, Any],
) -> None:
    serve = FakeServe()
    serve._deploy(SERVE_CONFIG)
    dashboard = RayDashboardClient("http://head:8265", transport=serve.transport(), token="")
    actuator = KubeRayActuator(rs_client, shards, governor_config(), scaler=lambda name: dashboard)

    first = actuator.apply(plan(3, 0), snapshot(1, 1))
    assert serve.scales == [], "KubeRay has not submitted the new config yet"
    assert any("num_replicas 1 -> 3" in c for c in first.changes)

    second = actuator.apply(plan(3, 0), snapshot(1, 1))
    assert serve.scales == [("embed", "model_v1", 3), ("embed", "model_v2", 0)]
    assert "scale API: embed/model_v2 1 -> 0" in second.changes
    assert deployments(deployed(apiserver))["model_v2"]["num_replicas"] == 1

    third = actuator.apply(plan(3, 0), snapshot(3, 0))
    assert not third.changes and len(serve.scales) == 2


def test_a_rayservice_without_the_governed_application_is_a_config_error(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    other = {"applications": [{"name": "other", "import_path": "x:y"}]}
    apiserver.seed(rayservice_object(serve_config=other))

    with pytest.raises(ConfigError, match="embed"):
        actuator.apply(plan(1, 1), snapshot(1, 1))
    assert apiserver.count("PATCH", PATCH) == 0


def test_a_rayservice_without_a_serve_config_is_permanent(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    obj = rayservice_object()
    obj["spec"]["serveConfigV2"] = ""
    apiserver.seed(obj)

    with pytest.raises(PermanentError, match="render-manifests"):
        actuator.apply(plan(1, 1), snapshot(1, 1))
