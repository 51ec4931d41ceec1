# Server: the real kube-apiserver and etcd, and the KubeRay operator v1.5 built from its
# Go module (scripts/build-k8s.sh), watching one namespace.
"""There is no kubelet and no scheduler: the operator's pods are stored but never run, so
no Ray head ever answers. What this proves: the operator accepts our rendered RayService,
reconciles it into a RayCluster (with its head pod and services), and writes status
conditions that `kuberay/status.py` parses, in the states a RayService passes through
before its first cluster serves; and what it does with an in-place `serveConfigV2`
change versus a `rayClusterConfig` change while that cluster is still pending. What it
cannot prove: anything that needs a running head (Serve submission, `RUNNING`
applications, promotion of a cluster to active, a `NewCluster` upgrade of an active one).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from kubernetes import client as k8s

from kuberay.actuator import hold_reason
from kuberay.client import RayServiceClient
from kuberay.status import READY, UPGRADE_IN_PROGRESS, RayService
from tests.kuberay.conftest import rendered_manifests
from tests.kuberay.control_plane import (
    ControlPlane,
    empty_namespace,
    ensure_namespace,
    free_port,
    stop_process,
    tail,
    wait_established,
)

pytestmark = pytest.mark.k8s

NAMESPACE = "kuberay-operator-test"
T = TypeVar("T")


def install_operator_crds(plane: ControlPlane, api: k8s.ApiClient) -> None:
    """The CRDs the operator watches that the cluster lacks (RayJob), from its own module."""
    extensions = k8s.ApiextensionsV1Api(api)
    for path in sorted((plane.binaries / "operator-crds").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(doc, _preload_content=False)
        except k8s.ApiException as err:
            if err.status != 409:  # RayCluster and RayService are installed already
                raise
        wait_established(extensions, doc["metadata"]["name"])


@pytest.fixture
def operator(cluster: ControlPlane, admin_api: k8s.ApiClient) -> Iterator[ControlPlane]:
    """The KubeRay operator running against the cluster, watching NAMESPACE."""
    install_operator_crds(cluster, admin_api)
    ensure_namespace(admin_api, NAMESPACE)
    probe = free_port()
    log = cluster.workdir / "ray-operator.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(cluster.binaries / "ray-operator"),
                f"--watch-namespace={NAMESPACE}",
                "--enable-leader-election=false",
                "--metrics-addr=0",
                f"--health-probe-bind-address=127.0.0.1:{probe}",
                "--log-stdout-encoder=console",
            ],
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(
            lambda: _healthy(probe, process, log), 60, "the operator answers its health probe"
        )
        yield cluster
    finally:
        stop_process(process)
        drop_finalizers(admin_api)
        empty_namespace(admin_api, NAMESPACE)


def _healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"ray-operator exited with {process.returncode}:\n{tail(log)}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def drop_finalizers(api: k8s.ApiClient) -> None:
    """Let the test's RayServices and RayClusters be deleted without the operator."""
    custom = k8s.CustomObjectsApi(api)
    for plural in ("rayservices", "rayclusters"):
        for obj in custom.list_namespaced_custom_object("ray.io", "v1", NAMESPACE, plural)["items"]:
            if obj["metadata"].get("finalizers"):
                custom.patch_namespaced_custom_object(
                    "ray.io",
                    "v1",
                    NAMESPACE,
                    plural,
                    obj["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )


def eventually(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll `probe` every 0.25 s until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def rendered_rayservice() -> dict[str, Any]:
    """The first rendered RayService, moved to NAMESPACE."""
    obj = copy.deepcopy(next(d for d in rendered_manifests() if d["kind"] == "RayService"))
    obj["metadata"]["namespace"] = NAMESPACE
    return obj


def rayclusters(api: k8s.ApiClient) -> list[dict[str, Any]]:
    """The RayClusters in NAMESPACE, oldest first."""
    items = k8s.CustomObjectsApi(api).list_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayclusters"
    )["items"]
    return sorted(items, key=lambda c: c["metadata"]["creationTimestamp"])


def conditions_written(client: RayServiceClient, name: str) -> RayService | None:
    """The RayService once the operator has written both conditions the daemon reads."""
    service = client.get(name)
    status = service.status
    if status.condition(READY) and status.condition(UPGRADE_IN_PROGRESS):
        return service
    return None


def more_replicas(current: RayService) -> str:
    """The Serve config with one more replica of the first deployment that sets a count."""
    doc = current.serve_config()
    deployment = next(
        d for a in doc["applications"] for d in a["deployments"] if "num_replicas" in d
    )
    deployment["num_replicas"] += 1
    return yaml.safe_dump(doc, sort_keys=False)


def head_env_patch(obj: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of `rayClusterConfig`: one more environment variable on the head."""
    cluster = copy.deepcopy(obj["spec"]["rayClusterConfig"])
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["env"] = [*(head.get("env") or []), {"name": "GOVERNOR_TEST", "value": "changed"}]
    return {"spec": {"rayClusterConfig": cluster}}


def settled(api: k8s.ApiClient, seconds: float = 6.0) -> list[dict[str, Any]]:
    """The RayClusters after the operator has had `seconds` to react."""
    time.sleep(seconds)
    return rayclusters(api)


def test_the_operator_reconciles_the_rendered_rayservice_and_reacts_to_each_kind_of_change(
    operator: ControlPlane, admin_api: k8s.ApiClient
) -> None:
    obj = rendered_rayservice()
    name = obj["metadata"]["name"]
    custom = k8s.CustomObjectsApi(admin_api)
    custom.create_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayservices", obj)
    client = RayServiceClient(custom, NAMESPACE)

    # Accepted and reconciled into one RayCluster, owned by the RayService.
    (first,) = eventually(lambda: rayclusters(admin_api), 60, "a RayCluster")
    owners = first["metadata"].get("ownerReferences") or []
    assert [(o["kind"], o["name"]) for o in owners] == [("RayService", name)]
    head_pods = eventually(
        lambda: (
            k8s.CoreV1Api(admin_api)
            .list_namespaced_pod(NAMESPACE, label_selector="ray.io/node-type=head")
            .items
        ),
        60,
        "the head pod",
    )
    assert all(p.status.phase == "Pending" for p in head_pods), "no kubelet runs pods"

    # The conditions the daemon reads, as status.py parses them: not ready, no upgrade;
    # the first cluster is pending until its Serve applications run.
    service = eventually(lambda: conditions_written(client, name), 60, "the conditions")
    ready = service.status.condition(READY)
    upgrade = service.status.condition(UPGRADE_IN_PROGRESS)
    assert ready is not None and not ready.is_true and ready.reason == "Initializing"
    assert upgrade is not None and not upgrade.is_true
    assert not service.status.active.exists
    assert service.status.pending.cluster_name == first["metadata"]["name"]
    reason = hold_reason(name, service.status)
    assert reason is not None and "pending RayCluster" in reason, "the daemon holds it"
    findings: dict[str, Any] = {
        "created": {
            "cluster": first["metadata"]["name"],
            "Ready": [ready.status, ready.reason],
            "UpgradeInProgress": [upgrade.status, upgrade.reason],
            "serviceStatus": service.status.service_status,
        }
    }

    # serveConfigV2 changed in place: the same cluster, its spec untouched, nothing new.
    generation = rayclusters(admin_api)[0]["metadata"]["generation"]
    client.patch_serve_config(name, more_replicas)
    after_serve = settled(admin_api)
    assert [c["metadata"]["name"] for c in after_serve] == [first["metadata"]["name"]]
    assert after_serve[0]["metadata"]["generation"] == generation, "the cluster is not touched"
    findings["serveConfigV2 change"] = [c["metadata"]["name"] for c in after_serve]

    # rayClusterConfig changed while the first cluster is still pending: a new pending
    # cluster replaces it; with no active cluster this is no upgrade.
    custom.patch_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", name, head_env_patch(obj)
    )
    after_cluster = settled(admin_api)
    service = client.get(name)
    findings["rayClusterConfig change"] = {
        "clusters": [c["metadata"]["name"] for c in after_cluster],
        "pending": service.status.pending.cluster_name,
        "active": service.status.active.cluster_name,
        "UpgradeInProgress": service.status.upgrade_in_progress,
    }
    print("operator findings:", json.dumps(findings))
    (second,) = [c for c in after_cluster if c["metadata"]["name"] != first["metadata"]["name"]]
    assert service.status.pending.cluster_name == second["metadata"]["name"]
    assert not service.status.active.exists
    assert not service.status.upgrade_in_progress
