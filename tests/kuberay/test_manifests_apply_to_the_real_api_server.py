# Server: the real kube-apiserver and etcd (scripts/build-k8s.sh) with KubeRay's CRDs.
"""The rendered manifests pass `kubectl apply --server-side --dry-run=server` and apply
server-side, with nothing pruned from the stored RayService; a RayService that breaks the
CRD's schema or its CEL rules is refused by the server's own validation.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from tests.kuberay.conftest import NAMESPACE, rendered_manifests
from tests.kuberay.control_plane import ControlPlane

pytestmark = pytest.mark.k8s

NEEDS_OTHER_CRDS = {"PodMonitor"}
"""Kinds of the Prometheus Operator, whose CRDs this cluster does not have."""


def manifests_file(folder: Path, *, other_crds: bool = False) -> Path:
    """The rendered manifests in one file: those this cluster knows, or only the others."""
    docs = [d for d in rendered_manifests() if (d["kind"] in NEEDS_OTHER_CRDS) == other_crds]
    path = folder / ("others.yaml" if other_crds else "manifests.yaml")
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def rendered_rayservice() -> dict[str, Any]:
    """The first rendered RayService."""
    return copy.deepcopy(next(d for d in rendered_manifests() if d["kind"] == "RayService"))


def stored_rayservices(api: k8s.ApiClient) -> list[dict[str, Any]]:
    """The RayServices etcd has in NAMESPACE."""
    doc = k8s.CustomObjectsApi(api).list_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices"
    )
    return list(doc["items"])


def contains(stored: Any, sent: Any) -> bool:
    """Whether every field of `sent` is in `stored` with the same value (nothing pruned)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(
            k in stored and contains(stored[k], v) for k, v in sent.items()
        )
    if isinstance(sent, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(sent)
            and all(contains(a, b) for a, b in zip(stored, sent, strict=True))
        )
    return bool(stored == sent)


def test_the_rendered_manifests_pass_a_server_side_dry_run(
    cluster: ControlPlane, admin_api: k8s.ApiClient, tmp_path: Path
) -> None:
    out = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", str(manifests_file(tmp_path))
    )

    assert out.returncode == 0, out.stderr
    assert "rayservice.ray.io/governor-fleet" in out.stdout and "dry run" in out.stdout
    assert stored_rayservices(admin_api) == [], "a dry run stores nothing"


def test_the_rendered_manifests_apply_server_side_and_nothing_is_pruned(
    cluster: ControlPlane, admin_api: k8s.ApiClient, tmp_path: Path
) -> None:
    path = manifests_file(tmp_path)
    out = cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    assert out.returncode == 0, out.stderr

    sent = {d["metadata"]["name"]: d for d in rendered_manifests() if d["kind"] == "RayService"}
    stored = {o["metadata"]["name"]: o for o in stored_rayservices(admin_api)}
    assert stored.keys() == sent.keys()
    for name, obj in sent.items():
        assert contains(stored[name]["spec"], obj["spec"]), f"{name}: the server pruned a field"
    again = cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    assert again.returncode == 0, again.stderr
    versions = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in stored.values()}
    assert {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"]
        for o in stored_rayservices(admin_api)
    } == versions, "applying the same manifests again changes nothing"


def test_the_podmonitors_need_the_prometheus_operators_crds(
    cluster: ControlPlane, tmp_path: Path
) -> None:
    out = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        str(manifests_file(tmp_path, other_crds=True)),
    )

    assert out.returncode != 0
    assert 'no matches for kind "PodMonitor" in version "monitoring.coreos.com/v1"' in out.stderr


def create(api: k8s.ApiClient, obj: dict[str, Any], **kwargs: Any) -> None:
    """Create a RayService in NAMESPACE."""
    k8s.CustomObjectsApi(api).create_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayservices", obj, **kwargs
    )


def refusal(api: k8s.ApiClient, obj: dict[str, Any], status: int = 422, **kwargs: Any) -> str:
    """The server's message for refusing to create `obj` with `status`."""
    with pytest.raises(k8s.ApiException) as err:
        create(api, obj, **kwargs)
    assert err.value.status == status, err.value.body
    return str(json.loads(err.value.body)["message"])


def test_a_managed_by_the_crds_cel_rule_refuses_is_refused(admin_api: k8s.ApiClient) -> None:
    obj = rendered_rayservice()
    obj["spec"]["rayClusterConfig"]["managedBy"] = "example.com/someone-else"

    message = refusal(admin_api, obj)

    assert "the managedBy field value must be either 'ray.io/kuberay-operator'" in message


def test_a_missing_head_group_is_refused_by_the_schema(admin_api: k8s.ApiClient) -> None:
    obj = rendered_rayservice()
    del obj["spec"]["rayClusterConfig"]["headGroupSpec"]

    assert "spec.rayClusterConfig.headGroupSpec: Required value" in refusal(admin_api, obj)


def test_an_unknown_field_is_refused_when_strict_and_pruned_otherwise(
    admin_api: k8s.ApiClient,
) -> None:
    obj = rendered_rayservice()
    obj["spec"]["serveConfigV3"] = "applications: []"

    message = refusal(admin_api, obj, 400, field_validation="Strict")
    assert 'strict decoding error: unknown field "spec.serveConfigV3"' in message

    create(admin_api, obj)
    (stored,) = stored_rayservices(admin_api)
    assert "serveConfigV3" not in stored["spec"], "the server prunes what its schema lacks"
