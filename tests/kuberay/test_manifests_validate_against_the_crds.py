# Server: none but one test on the stand-in; KubeRay's CRD schemas checked in Python.
# The real server's validation: test_manifests_apply_to_the_real_api_server.py.
"""Every RayService (and the RayCluster it makes) the project writes or renders validates
against KubeRay v1.7's own CRD schemas, and its serveConfigV2 against Ray's ServeDeploySchema.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from kuberay.actuator import KubeRayActuator
from kuberay.render import TEMPLATE, load_yaml
from tests.kuberay.conftest import (
    NAMESPACE,
    PEERS,
    REPO,
    plan,
    rayservice_object,
    rendered_manifests,
    snapshot,
    upgrading_status,
)
from tests.kuberay.crd_schema import as_raycluster, crd_errors, load_documents
from tests.kuberay.fake_apiserver import FakeApiServer


def rendered_rayservices() -> list[dict[str, Any]]:
    """The RayServices `kubectl kustomize kuberay/manifests` emits."""
    found = [d for d in rendered_manifests() if d.get("kind") in ("RayService", "RayCluster")]
    assert found, "the manifests render no RayService"
    return found


def test_the_rendered_rayservice_validates_against_the_crd() -> None:
    for obj in rendered_rayservices():
        assert crd_errors(obj) == []
        if obj["kind"] == "RayService":
            assert crd_errors(as_raycluster(obj)) == []


def test_the_rendered_serve_config_validates_against_ray_serve() -> None:
    for obj in rendered_rayservices():
        ServeDeploySchema.model_validate(yaml.safe_load(obj["spec"]["serveConfigV2"]))


def test_the_rayservice_has_ray_autoscaling_and_a_gpu_worker_group() -> None:
    (obj,) = [o for o in rendered_rayservices() if o["kind"] == "RayService"]
    cluster = obj["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    gpu_groups = [
        g
        for g in cluster["workerGroupSpecs"]
        if any(
            "nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {})
            for c in g["template"]["spec"]["containers"]
        )
    ]
    assert gpu_groups and all(g["maxReplicas"] > g["minReplicas"] for g in gpu_groups)
    assert obj["metadata"]["namespace"] == NAMESPACE


def test_the_template_validates_against_the_crd() -> None:
    assert crd_errors(load_yaml(REPO / TEMPLATE)) == []


def test_a_rayservice_after_the_actuator_applied_a_plan_still_validates(
    apiserver: FakeApiServer, actuator: KubeRayActuator
) -> None:
    (obj,) = [o for o in rendered_rayservices() if o["kind"] == "RayService"]
    obj = copy.deepcopy(obj)
    obj["metadata"]["name"] = "governor-fleet"
    # The actuator here governs `embed`; give the rendered service that application.
    obj["spec"]["serveConfigV2"] = rayservice_object()["spec"]["serveConfigV2"]
    apiserver.seed(obj)

    result = actuator.apply(plan(4, 2, {"v1": 75, "v2": 25}), snapshot(1, 1))

    assert result.changes
    written = apiserver.get("rayservices", NAMESPACE, "governor-fleet")
    written.pop("status", None)
    assert crd_errors(written) == []
    ServeDeploySchema.model_validate(yaml.safe_load(written["spec"]["serveConfigV2"]))


def test_the_statuses_the_tests_play_back_are_valid_kuberay_statuses() -> None:
    running = rayservice_object()
    upgrading = rayservice_object(status=upgrading_status())
    for obj in (running, upgrading):
        assert crd_errors(obj) == []


def test_kuberay_samples_validate_so_the_validator_is_not_too_strict() -> None:
    for path in sorted((PEERS / "samples").glob("*.yaml")):
        for obj in load_documents(path):
            assert crd_errors(obj) == [], path.name


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda s: s["rayClusterConfig"].update(enableInTreeAutoscalling=True), "enableInTree"),
        (lambda s: s["rayClusterConfig"]["workerGroupSpecs"][0].update(maxReplicas="8"), "'8'"),
        (
            lambda s: s["rayClusterConfig"].update(autoscalerOptions={"upscalingMode": "Fast"}),
            "Fast",
        ),
        (lambda s: s.pop("rayClusterConfig"), "rayClusterConfig"),
    ],
)
def test_a_broken_rayservice_is_refused(mutate: Any, complaint: str) -> None:
    obj = copy.deepcopy(load_yaml(REPO / TEMPLATE))
    mutate(obj["spec"])

    errors = crd_errors(obj)

    assert errors and any(complaint in e for e in errors), errors
