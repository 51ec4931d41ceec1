# Server: none; rendering and `kubectl kustomize`.
"""The generated manifests are rendered from the config files, not copied: they agree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from controller.actuators.serve_config import check_serve_config_covers, load_serve_config
from controller.config import load_config
from kuberay.render import (
    CONFIG_KEY,
    GOVERNOR_CONFIG,
    MANIFESTS,
    SERVE_CONFIG,
    build_kustomization,
    render_manifests_command,
    write_manifests,
)
from tests.kuberay.conftest import REPO, rendered, rendered_manifests


def test_the_committed_manifests_are_up_to_date() -> None:
    assert write_manifests(REPO, check=True) == [], "run `governor render-manifests`"


def test_the_rayservice_serve_config_is_configs_serve_gpu_yaml() -> None:
    embedded = yaml.safe_load(rendered("RayService")["spec"]["serveConfigV2"])

    assert embedded == yaml.safe_load((REPO / SERVE_CONFIG).read_text())


def test_the_configmap_carries_configs_governor_kuberay_yaml_verbatim() -> None:
    configmap = rendered("ConfigMap")

    assert configmap["data"][CONFIG_KEY] == (REPO / GOVERNOR_CONFIG).read_text()


def test_the_daemon_config_matches_the_rendered_manifests() -> None:
    config = load_config(REPO / GOVERNOR_CONFIG)
    assert config.target == "kuberay" and config.kuberay is not None
    kr = config.kuberay
    rayservice = rendered("RayService")
    deployment = rendered("Deployment")
    role = rendered("Role")

    assert (
        kr.namespace == rayservice["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    )
    # The daemon selects every rendered RayService as a shard of the fleet.
    assert kr.rayservice_selector is not None
    key, value = kr.rayservice_selector.split("=")
    assert rayservice["metadata"]["labels"][key] == value
    assert kr.dashboard_url is not None
    # KubeRay's head service for a RayService follows the active cluster.
    name = rayservice["metadata"]["name"]
    dashboard = kr.dashboard_url.replace("{rayservice}", name)
    assert urlparse(dashboard).hostname == f"{name}-head-svc"
    lease_rules = [r for r in role["rules"] if "leases" in r["resources"] and "resourceNames" in r]
    assert all(kr.lease_name in r["resourceNames"] for r in lease_rules)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == config.metrics.port
    assert config.metrics.host == "0.0.0.0", "probes and Prometheus reach it from outside the pod"
    assert container["args"][-1] == f"/etc/governor/{CONFIG_KEY}"
    assert kr.lease_duration_s > 2 * kr.renew_period_s
    check_serve_config_covers(load_serve_config(REPO / SERVE_CONFIG), config)


def test_the_daemon_writes_only_where_the_pod_has_a_volume() -> None:
    config = load_config(REPO / GOVERNOR_CONFIG)
    spec = rendered("Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert any(Path(config.state_path).is_relative_to(m) for m in mounts)


def test_the_images_are_set_by_the_kustomization() -> None:
    images = {c["image"] for d in rendered_manifests() for c in _containers(d)}
    assert images == {"ghcr.io/example/governor:0.1.0", "ghcr.io/example/governor-ray:0.1.0-gpu"}


def _containers(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers":
                found.extend(value)
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_containers(item))
    return found


def test_render_manifests_rewrites_stale_files_and_check_reports_them(tmp_path: Path) -> None:
    for part in ("configs", "kuberay/templates", "kuberay/manifests"):
        shutil.copytree(REPO / part, tmp_path / part)
    serve = load_serve_config(tmp_path / SERVE_CONFIG)
    serve["applications"][0]["deployments"][0]["num_replicas"] = 5
    (tmp_path / SERVE_CONFIG).write_text(yaml.safe_dump(serve))

    assert render_manifests_command(tmp_path, check=True) == 1
    assert render_manifests_command(tmp_path) == 0
    assert render_manifests_command(tmp_path, check=True) == 0
    rendered = build_kustomization(tmp_path / MANIFESTS)
    (rs,) = [d for d in rendered if d["kind"] == "RayService"]
    assert yaml.safe_load(rs["spec"]["serveConfigV2"]) == serve


def test_an_invalid_serve_config_is_refused(tmp_path: Path) -> None:
    for part in ("configs", "kuberay/templates", "kuberay/manifests"):
        shutil.copytree(REPO / part, tmp_path / part)
    serve = load_serve_config(tmp_path / SERVE_CONFIG)
    serve["applications"][0]["deployments"][0]["num_replicas"] = "many"
    (tmp_path / SERVE_CONFIG).write_text(yaml.safe_dump(serve))

    assert render_manifests_command(tmp_path) == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_our_kustomize_build_equals_kubectl_kustomize() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / MANIFESTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    theirs = sorted((d for d in yaml.safe_load_all(out) if d), key=key)
    assert sorted(rendered_manifests(), key=key) == theirs


def test_governor_render_manifests_check_passes_on_the_repository() -> None:
    from typer.testing import CliRunner

    from controller.cli import app

    result = CliRunner().invoke(app, ["render-manifests", "--check", "--root", str(REPO)])

    assert result.exit_code == 0, result.output
