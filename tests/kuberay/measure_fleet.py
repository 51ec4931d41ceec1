"""Measure the KubeRay target at fleet size against the stand-in API server.

    python -m tests.kuberay.measure_fleet observe 100 1000
    python -m tests.kuberay.measure_fleet writes 10000

`observe N...`: seconds of RayServiceSource.observe() over N applications, all in one
RayService and split into shards under the default serveConfigV2 bound: the first call
(every shard parsed) and the next (configs unchanged, nothing parsed).
`writes N`: bytes of the request bodies one tick writes when one application changes in a
fleet of N: the Serve config patch and the state patch. Prints a table; asserts nothing.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from typing import Any

from kubernetes import client as k8s

from controller.config import GovernorConfig, parse_config
from controller.decisions import Plan, ReplicaDecision
from controller.snapshot import AppSnapshot, Snapshot, VersionSnapshot
from kuberay.actuator import DEFAULT_MAX_SERVE_CONFIG_BYTES, KubeRayActuator
from kuberay.client import RayServiceClient
from kuberay.configmaps import ConfigMapClient
from kuberay.connect import api_client_for_host
from kuberay.sharding import ShardNames, split_serve_config
from kuberay.shards import RayServiceShards
from kuberay.signals import RayServiceSource
from kuberay.state_store import ConfigMapStateStore
from tests.controller.clock import ManualClock
from tests.kuberay.conftest import NAMESPACE, NOW, RUNNING_STATUS, rayservice_object
from tests.kuberay.fake_apiserver import FakeApiServer

SELECTOR = "governor.ray.io/fleet=measure"
VERSIONS = ("v1", "v2")


def app_doc(name: str) -> dict[str, Any]:
    """A Serve application the size of configs/serve.gpu.yaml's embeddings (about 1.1 KB)."""
    return {
        "name": name,
        "route_prefix": f"/{name}",
        "import_path": "serving.app:build_app",
        "external_scaler_enabled": True,
        "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
        "args": {
            "task": "embeddings",
            "model_name": "minilm",
            "max_inputs": 256,
            "max_input_chars": 8192,
            "versions": [
                {
                    "name": v,
                    "model": "bundled:all-MiniLM-L6-v2",
                    "device": "cuda",
                    "dtype": "float16",
                }
                for v in VERSIONS
            ],
        },
        "deployments": [
            {
                "name": "router",
                "num_replicas": 2,
                "max_ongoing_requests": 512,
                "user_config": {"weights": {"v1": 100, "v2": 0}},
                "ray_actor_options": {"num_cpus": 1},
            },
            *(
                {
                    "name": f"model_{v}",
                    "num_replicas": 1,
                    "max_ongoing_requests": 256,
                    "user_config": {"max_batch_size": 128, "batch_wait_timeout_s": 0.005},
                    "ray_actor_options": {"num_cpus": 1, "num_gpus": 0.25},
                }
                for v in VERSIONS
            ),
        ],
    }


def status_of(apps: list[str]) -> dict[str, Any]:
    """A running RayService status listing every application as KubeRay does."""
    status = copy.deepcopy(RUNNING_STATUS)
    deps = {d: {"status": "HEALTHY"} for d in ("router", "model_v1", "model_v2")}
    status["activeServiceStatus"]["applicationStatuses"] = {
        a: {"status": "RUNNING", "serveDeploymentStatuses": copy.deepcopy(deps)} for a in apps
    }
    return status


def governor_config(names: list[str], kuberay: dict[str, Any]) -> GovernorConfig:
    """A KubeRay config governing `names`."""
    apps = [
        {
            "name": n,
            "slo": {"latency_p95_ms": 200},
            "versions": [
                {"name": v, "deployment": f"model_{v}", "min_replicas": 1, "max_replicas": 4}
                for v in VERSIONS
            ],
        }
        for n in names
    ]
    section = {"namespace": NAMESPACE, **kuberay}
    return parse_config(
        {"target": "kuberay", "kuberay": section, "prices": {"cpu": 0.5}, "applications": apps}
    )


def seed(server: FakeApiServer, names: list[str], sharded: bool) -> list[str]:
    """Seed the fleet; the RayService names."""
    serve = {"applications": [app_doc(n) for n in names]}
    if sharded:
        shards = split_serve_config(
            serve,
            ShardNames(base="fleet", labels={"governor.ray.io/fleet": "measure"}),
            DEFAULT_MAX_SERVE_CONFIG_BYTES,
            {},
        )
    else:
        shards = {"fleet": serve}
    for name, doc in shards.items():
        apps = [a["name"] for a in doc["applications"]]
        labels = {"governor.ray.io/fleet": "measure"}
        server.seed(rayservice_object(doc, status_of(apps), name=name, labels=labels))
    return list(shards)


def clients(server: FakeApiServer) -> tuple[k8s.ApiClient, RayServiceClient, ConfigMapClient]:
    """The real kubernetes clients on the stand-in."""
    api = api_client_for_host(server.url)
    rs = RayServiceClient(k8s.CustomObjectsApi(api), NAMESPACE, request_timeout_s=120)
    cm = ConfigMapClient(k8s.CoreV1Api(api), NAMESPACE, request_timeout_s=120)
    return api, rs, cm


def measure_observe(n: int, sharded: bool) -> tuple[int, float, float]:
    """(shards, seconds of the first observe, of the next one) for a fleet of `n`."""
    names = [f"app-{i:05d}" for i in range(n)]
    with FakeApiServer() as server:
        shard_names = seed(server, names, sharded)
        api, rs, _ = clients(server)
        shards = RayServiceShards(rs, selector=SELECTOR)
        config = governor_config(names, {"rayservice_selector": SELECTOR})
        source = RayServiceSource(shards, config, ManualClock())
        began = time.perf_counter()
        snap = source.observe()
        first = time.perf_counter() - began
        began = time.perf_counter()
        source.observe()
        second = time.perf_counter() - began
        api.close()
    assert not snap.problems, snap.problems[:3]
    return len(shard_names), first, second


def version_state(demand: int) -> dict[str, Any]:
    """A scaling agent's state of one version with every field in use."""
    at = "2026-01-01T00:00:00+00:00"
    return {
        "level": 1.2345678,
        "trend_per_s": 0.0012345,
        "observed_at": at,
        "capacity": 0.987654,
        "capacity_kind": "measured",
        "capacity_at": at,
        "in_flight": 3.25,
        "running_seen": 2,
        "changed_at": at,
        "changed_up": True,
        "watched_since": at,
        "demand": [round(1 + 0.01 * i, 4) for i in range(demand)],
        "demand_at": at,
        "queue": [{"at": at, "queue": 0.0}],
    }


def fleet_state(names: list[str]) -> dict[str, dict[str, Any]]:
    """Agent state of a steady fleet: an hour of demand history per version, idle rollouts."""
    return {
        "scaling": {"versions": {f"{n}/{v}": version_state(60) for n in names for v in VERSIONS}},
        "rollout": {
            "apps": {n: {"phase": "idle", "stable": "v1", "config_stable": "v1"} for n in names}
        },
        "budget": {"capped_since": {}},
    }


def plan(names: list[str], changed: str) -> Plan:
    """Every version at 1 replica but `changed`'s v1 at 2."""
    return Plan(
        replicas=tuple(
            ReplicaDecision(n, v, 2 if (n, v) == (changed, "v1") else 1, ("measure",))
            for n in names
            for v in VERSIONS
        )
    )


def snapshot(names: list[str]) -> Snapshot:
    """Every version observed at 1 replica."""
    return Snapshot(
        now=NOW,
        apps=tuple(
            AppSnapshot(
                n, tuple(VersionSnapshot(n, v, f"model_{v}", target_replicas=1) for v in VERSIONS)
            )
            for n in names
        ),
    )


def measure_writes(n: int) -> None:
    """Print what one tick writes when one application changes in a fleet of `n`."""
    names = [f"app-{i:05d}" for i in range(n)]
    changed = names[n // 2]
    clock = ManualClock()
    with FakeApiServer() as server:
        shard_names = seed(server, names, sharded=True)
        api, rs, cm = clients(server)
        config = governor_config(names, {"rayservice_selector": SELECTOR})
        shards = RayServiceShards(rs, selector=SELECTOR)
        source = RayServiceSource(shards, config, clock)
        actuator = KubeRayActuator(rs, shards, config)
        store = ConfigMapStateStore(cm, names, clock)
        store.load()
        state = fleet_state(names)
        store.save(state)
        state_total = sum(r.size for r in server.requests if r.method in ("POST", "PATCH"))
        source.observe()  # the daemon's first tick parses every shard once
        first = len(server.requests)

        seconds = {}
        began = time.perf_counter()
        source.observe()
        seconds["observe"] = time.perf_counter() - began
        began = time.perf_counter()
        actuator.apply(plan(names, changed), snapshot(names))
        seconds["serveConfigV2"] = time.perf_counter() - began
        after = json.loads(json.dumps(state))
        after["scaling"]["versions"][f"{changed}/v1"]["level"] = 2.5
        began = time.perf_counter()
        store.save(after)
        seconds["agent state"] = time.perf_counter() - began
        writes = [r for r in server.requests[first:] if r.method in ("PATCH", "POST")]
        api.close()
    print(f"fleet: {n} applications in {len(shard_names)} RayServices")
    print(f"agent state: {state_total} bytes on the first save")
    print("| step | write requests | body bytes | seconds |")
    print("|---|---|---|---|")
    for step, part in (
        ("observe", None),
        ("serveConfigV2", "/rayservices/"),
        ("agent state", "/configmaps"),
    ):
        mine = [r for r in writes if part is not None and part in r.path]
        print(f"| {step} | {len(mine)} | {sum(r.size for r in mine)} | {seconds[step]:.2f} |")


def main(argv: list[str]) -> None:
    """Run the measurement named on the command line."""
    what, sizes = argv[0], [int(a) for a in argv[1:]]
    if what == "observe":
        print("| applications | RayServices | first observe s | next observe s |")
        print("|---|---|---|---|")
        for n in sizes:
            for sharded in (False, True):
                count, first, second = measure_observe(n, sharded)
                print(f"| {n} | {count} | {first:.2f} | {second:.2f} |")
    elif what == "writes":
        for n in sizes:
            measure_writes(n)
    else:
        raise SystemExit(f"unknown measurement {what!r}: observe or writes")


if __name__ == "__main__":
    main(sys.argv[1:])
