"""Every Serve config shipped in configs/ passes Ray's own ServeDeploySchema.

`governor.*.yaml` are the daemon's own configs (they also have `applications:`), not
Serve configs, and are left to the daemon's tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from serving.spec import AppArgs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _serve_configs() -> list[Path]:
    found = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        if path.name.startswith("governor."):
            continue
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and "applications" in document:
            found.append(path)
    return found


SERVE_CONFIGS = _serve_configs()


def test_the_shipped_serve_configs_are_found() -> None:
    names = {p.name for p in SERVE_CONFIGS}
    assert {"serve.local.yaml", "serve.gpu.yaml"} <= names


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_config_passes_serve_deploy_schema(path: Path) -> None:
    ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_governor_apps_have_valid_args_and_scaler_enabled(path: Path) -> None:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    for app in document["applications"]:
        if app.get("import_path") != "serving.app:build_app":
            continue
        args = AppArgs.model_validate(app["args"])
        assert app.get("external_scaler_enabled") is True, app["name"]
        deployments = {d["name"]: d for d in app.get("deployments", [])}
        expected = {"router", *(v.deployment_name for v in args.versions)}
        assert set(deployments) == expected, app["name"]
        assert all(d.get("num_replicas", 1) >= 1 for d in deployments.values())
