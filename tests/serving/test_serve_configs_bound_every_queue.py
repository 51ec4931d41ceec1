"""Every shipped Serve config bounds the queues in front of each version and of the router by
the data plane's rule, so overload is shed with 503 + Retry-After instead of queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.spec import (
    RETRY_AFTER_S,
    AppArgs,
    ModelUserConfig,
    router_queue_bounds,
    version_queue_bounds,
)
from tests.serving.test_serve_configs_pass_ray_schema import SERVE_CONFIGS

QUEUE_KEYS = ("max_ongoing_requests", "max_queued_requests", "backpressure_config")


def _governed_apps(path: Path) -> list[tuple[AppArgs, dict[str, dict[str, Any]]]]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    apps = []
    for app in document["applications"]:
        if app.get("import_path") == "serving.app:build_app":
            deployments = {d["name"]: d for d in app.get("deployments", [])}
            apps.append((AppArgs.model_validate(app["args"]), deployments))
    return apps


def _queue(deployment: dict[str, Any]) -> dict[str, Any]:
    return {k: deployment.get(k) for k in QUEUE_KEYS}


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_each_version_holds_two_batches_per_replica_and_queues_one(path: Path) -> None:
    for args, deployments in _governed_apps(path):
        for version in args.versions:
            deployment = deployments[version.deployment_name]
            batch = ModelUserConfig.model_validate(deployment.get("user_config") or {})
            assert _queue(deployment) == version_queue_bounds(batch.max_batch_size), (
                path.name,
                version.deployment_name,
            )


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_each_router_admits_what_its_versions_hold(path: Path) -> None:
    for args, deployments in _governed_apps(path):
        versions = [_queue(deployments[v.deployment_name]) for v in args.versions]
        assert _queue(deployments["router"]) == router_queue_bounds(versions), path.name


def test_the_rule_for_the_local_batch_size() -> None:
    version = version_queue_bounds(32)
    assert version == {
        "max_ongoing_requests": 64,
        "max_queued_requests": 32,
        "backpressure_config": {"retry_after_s": RETRY_AFTER_S},
    }
    router = router_queue_bounds([version, version])
    assert (router["max_ongoing_requests"], router["max_queued_requests"]) == (192, 192)
