"""A fleet spread over several RayServices (shards), for the sharding tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from controller.config import GovernorConfig
from controller.decisions import Plan, ReplicaDecision
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from tests.controller.sample_config import governor_config
from tests.kuberay.conftest import NAMESPACE, NOW, RUNNING_STATUS, SERVE_CONFIG, rayservice_object
from tests.kuberay.fake_apiserver import FakeApiServer

SELECTOR = "governor.ray.io/fleet=test"
LABELS = {"governor.ray.io/fleet": "test"}
SHARDS: dict[str, tuple[str, ...]] = {"fleet-a": ("embed",), "fleet-b": ("chat", "rank")}
APPS = tuple(a for apps in SHARDS.values() for a in apps)


def app_doc(name: str) -> dict[str, Any]:
    """A Serve application like the conftest's `embed`, named `name`, as rendered."""
    doc = copy.deepcopy(SERVE_CONFIG["applications"][0])
    doc["name"] = name
    doc["route_prefix"] = f"/{name}"
    doc["external_scaler_enabled"] = True
    return doc


def shard_status(apps: tuple[str, ...], gpus: str = "2") -> dict[str, Any]:
    """A running shard whose applications are all RUNNING and HEALTHY."""
    status = copy.deepcopy(RUNNING_STATUS)
    healthy = {"status": "HEALTHY"}
    status["activeServiceStatus"]["applicationStatuses"] = {
        a: {
            "status": "RUNNING",
            "serveDeploymentStatuses": {
                d: dict(healthy) for d in ("router", "model_v1", "model_v2")
            },
        }
        for a in apps
    }
    status["activeServiceStatus"]["rayClusterStatus"]["desiredGPU"] = gpus
    return status


def shard_object(name: str, apps: tuple[str, ...], labels: bool = True) -> dict[str, Any]:
    """One shard RayService holding `apps`."""
    return rayservice_object(
        serve_config={"applications": [app_doc(a) for a in apps]},
        status=shard_status(apps),
        name=name,
        labels=LABELS if labels else None,
    )


def seed_fleet(apiserver: FakeApiServer) -> None:
    """Both shards, and a RayService of someone else that the selector leaves out."""
    for name, apps in SHARDS.items():
        apiserver.seed(shard_object(name, apps))
    apiserver.seed(shard_object("not-ours", ("other",), labels=False))


def fleet_config(**kuberay: Any) -> GovernorConfig:
    """A KubeRay config governing every application of the fleet."""
    section = {"namespace": NAMESPACE, "rayservice_selector": SELECTOR, **kuberay}
    apps = [
        {
            "name": a,
            "slo": {"latency_p95_ms": 200},
            "versions": [
                {"name": "v1", "deployment": "model_v1", "min_replicas": 1, "max_replicas": 4},
                {"name": "v2", "deployment": "model_v2", "min_replicas": 0, "max_replicas": 4},
            ],
        }
        for a in APPS
    ]
    return governor_config(target="kuberay", kuberay=section, applications=apps)


def fleet_plan(**changed: int) -> Plan:
    """Every version at 1 replica, but v1 of each application named in `changed`."""
    return Plan(
        replicas=tuple(
            ReplicaDecision(a, v, changed.get(a, 1) if v == "v1" else 1, ("test",))
            for a in APPS
            for v in ("v1", "v2")
        )
    )


def fleet_snapshot() -> Snapshot:
    """Every version observed at 1 replica."""
    return Snapshot(
        now=NOW,
        apps=tuple(
            AppSnapshot(
                a,
                tuple(VersionSnapshot(a, v, f"model_{v}", target_replicas=1) for v in ("v1", "v2")),
            )
            for a in APPS
        ),
    )


def serve_config_of(apiserver: FakeApiServer, name: str) -> dict[str, Any]:
    """The Serve config now in shard `name`."""
    return yaml.safe_load(apiserver.get("rayservices", NAMESPACE, name)["spec"]["serveConfigV2"])


def replicas_of(apiserver: FakeApiServer, shard: str, app: str, deployment: str) -> int:
    """`num_replicas` of one deployment in shard `shard`."""
    (doc,) = [a for a in serve_config_of(apiserver, shard)["applications"] if a["name"] == app]
    (dep,) = [d for d in doc["deployments"] if d["name"] == deployment]
    return int(dep["num_replicas"])
