# Server: the stand-in (tests/kuberay/fake_apiserver.py), which counts the patches sent,
# with an in-memory Serve for the scale API; the same actuator on the real server:
# test_the_actuator_writes_the_real_rayservice.py.
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
