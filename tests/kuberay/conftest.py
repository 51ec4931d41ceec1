"""Shared fixtures: the stand-in API server, the real `kubernetes` client pointed at it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from controller.decisions import Plan, ReplicaDecision, WeightDecision
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from kuberay.actuator import KubeRayActuator
from kuberay.client import RayServiceClient
from kuberay.configmaps import ConfigMapClient
from kuberay.connect import api_client_for_host
from kuberay.retry import Backoff
from kuberay.shards import RayServiceShards
from tests.controller.clock import ManualClock
from tests.controller.sample_config import governor_config
from tests.kuberay.control_plane import (
    ControlPlane,
    MissingBinariesError,
    binaries_dir,
    empty_namespace,
    ensure_namespace,
)
from tests.kuberay.fake_apiserver import FakeApiServer

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO.parent / "shared" / "peers" / "kuberay"
NAMESPACE = "governor"
NAME = "governor-fleet"
PATCH = rf"/rayservices/{NAME}$"
"""The path of the RayService, as a regex for the stand-in's request counts."""

SERVE_CONFIG: dict[str, Any] = {
    "applications": [
        {
            "name": "embed",
            "route_prefix": "/",
            "import_path": "serving.app:build_app",
            "args": {"versions": [{"name": "v1"}, {"name": "v2"}]},
            "deployments": [
                {"name": "router", "user_config": {"weights": {"v1": 100, "v2": 0}}},
                {"name": "model_v1", "num_replicas": 1, "ray_actor_options": {"num_gpus": 1}},
                {"name": "model_v2", "num_replicas": 1, "ray_actor_options": {"num_gpus": 1}},
            ],
        }
    ],
}

RUNNING_STATUS: dict[str, Any] = {
    "serviceStatus": "Running",
    "numServeEndpoints": 2,
    "observedGeneration": 1,
    "activeServiceStatus": {
        "rayClusterName": "governor-fleet-abc12",
        "applicationStatuses": {
            "embed": {
                "status": "RUNNING",
                "serveDeploymentStatuses": {
                    "router": {"status": "HEALTHY"},
                    "model_v1": {"status": "HEALTHY"},
                    "model_v2": {"status": "UPDATING"},
                },
            }
        },
        "rayClusterStatus": {"state": "ready", "desiredCPU": "20", "desiredGPU": "2"},
    },
    "pendingServiceStatus": {},
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "NonZeroServeEndpoints",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "UpgradeInProgress",
            "status": "False",
            "reason": "NoPendingCluster",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
    ],
}


def rayservice_object(
    serve_config: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    name: str = NAME,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A RayService as the operator would have it: spec, generation and status."""
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "generation": 1}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": meta,
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config or SERVE_CONFIG, sort_keys=False),
            "rayClusterConfig": {
                "headGroupSpec": {
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [{"name": "ray-head", "image": "x"}]}},
                }
            },
        },
        "status": copy.deepcopy(RUNNING_STATUS if status is None else status),
    }


def upgrading_status() -> dict[str, Any]:
    """A status while KubeRay runs a zero-downtime upgrade to a pending cluster."""
    status = copy.deepcopy(RUNNING_STATUS)
    status["pendingServiceStatus"] = {
        "rayClusterName": "governor-fleet-def34",
        "applicationStatuses": {"embed": {"status": "DEPLOYING"}},
    }
    status["conditions"][1].update(status="True", reason="BothActivePendingClustersExist")
    return status


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def plan(v1: int, v2: int, weights: dict[str, int] | None = None) -> Plan:
    """A plan for the one application `embed`."""
    return Plan(
        replicas=(
            ReplicaDecision("embed", "v1", v1, ("test",)),
            ReplicaDecision("embed", "v2", v2, ("test",)),
        ),
        weights=(WeightDecision("embed", weights, ("test",)),) if weights else (),
    )


def snapshot(v1: int | None, v2: int | None) -> Snapshot:
    """Observed target replicas of the two versions."""
    return Snapshot(
        now=NOW,
        apps=(
            AppSnapshot(
                "embed",
                (
                    VersionSnapshot("embed", "v1", "model_v1", target_replicas=v1),
                    VersionSnapshot("embed", "v2", "model_v2", target_replicas=v2),
                ),
            ),
        ),
    )


def deployed(apiserver: FakeApiServer) -> dict[str, Any]:
    """The Serve config now in the RayService's spec."""
    obj = apiserver.get("rayservices", NAMESPACE, NAME)
    return yaml.safe_load(obj["spec"]["serveConfigV2"])


def deployments(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The embed application's deployments by name."""
    return {d["name"]: d for d in doc["applications"][0]["deployments"]}


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    """A running stand-in API server."""
    with FakeApiServer() as server:
        yield server


@pytest.fixture
def api(apiserver: FakeApiServer) -> Iterator[k8s.ApiClient]:
    """The real `kubernetes` ApiClient, configured for the stand-in."""
    client = api_client_for_host(apiserver.url)
    yield client
    client.close()


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand."""
    return ManualClock()


@pytest.fixture
def sleeps() -> list[float]:
    """Every back-off sleep the code under test asked for."""
    return []


@pytest.fixture
def rs_client(api: k8s.ApiClient, sleeps: list[float]) -> RayServiceClient:
    """A RayService client on the stand-in, with recorded (not real) back-off sleeps."""
    return RayServiceClient(
        k8s.CustomObjectsApi(api),
        NAMESPACE,
        request_timeout_s=0.5,
        backoff=Backoff(attempts=3, base_s=0.5, factor=2.0),
        sleep=sleeps.append,
    )


@pytest.fixture
def cm_client(api: k8s.ApiClient, sleeps: list[float]) -> ConfigMapClient:
    """A ConfigMap client on the stand-in, with recorded (not real) back-off sleeps."""
    return ConfigMapClient(
        k8s.CoreV1Api(api),
        NAMESPACE,
        request_timeout_s=0.5,
        backoff=Backoff(attempts=3, base_s=0.5, factor=2.0),
        sleep=sleeps.append,
    )


@pytest.fixture
def rayservice(apiserver: FakeApiServer) -> dict[str, Any]:
    """A running RayService seeded into the stand-in."""
    return apiserver.seed(rayservice_object())


@pytest.fixture
def shards(rs_client: RayServiceClient) -> RayServiceShards:
    """The fleet of one RayService, NAME."""
    return RayServiceShards(rs_client, names=[NAME])


@pytest.fixture
def actuator(rs_client: RayServiceClient, shards: RayServiceShards) -> KubeRayActuator:
    """An actuator on the one RayService, without the scale API."""
    return KubeRayActuator(rs_client, shards, governor_config())


def rendered_manifests() -> list[dict[str, Any]]:
    """What `kubectl kustomize kuberay/manifests` emits (the project's own build)."""
    from kuberay.render import MANIFESTS, build_kustomization

    return build_kustomization(REPO / MANIFESTS)


def rendered(kind: str) -> dict[str, Any]:
    """The single rendered manifest of `kind`."""
    (found,) = [d for d in rendered_manifests() if d["kind"] == kind]
    return found


# -- The real control plane: etcd and kube-apiserver built by scripts/build-k8s.sh --------


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that run against the real API server."""
    config.addinivalue_line(
        "markers", "k8s: runs against the real kube-apiserver and etcd (scripts/build-k8s.sh)"
    )


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd and kube-apiserver on loopback ports with KubeRay's CRDs, for the whole session."""
    try:
        folder = binaries_dir()
    except MissingBinariesError as err:
        pytest.fail(str(err), pytrace=False)
    plane = ControlPlane(folder, tmp_path_factory.mktemp("k8s"))
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """The real control plane with the namespace NAMESPACE, emptied after the test."""
    if "kube-apiserver" not in control_plane.processes:
        control_plane.start_apiserver()  # a test that stopped it failed before restarting it
    admin = control_plane.client()
    try:
        ensure_namespace(admin, NAMESPACE)
        yield control_plane
        empty_namespace(admin, NAMESPACE)
    finally:
        admin.close()


@pytest.fixture
def admin_api(cluster: ControlPlane) -> Iterator[k8s.ApiClient]:
    """The real `kubernetes` ApiClient, authenticated as the cluster's admin."""
    client = cluster.client()
    yield client
    client.close()
