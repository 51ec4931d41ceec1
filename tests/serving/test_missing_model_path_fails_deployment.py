"""A model path that does not exist fails the deployment with a message naming the path."""

from __future__ import annotations

import json

import pytest

from tests.serving.conftest import EMBEDDINGS_APP, GENERATION_APP, ServingApps

pytestmark = pytest.mark.integration

MISSING = "/nonexistent/governor/model-v9"


def test_missing_model_path_is_named_in_the_deployment_status(serving_apps: ServingApps) -> None:
    broken = {
        "name": "broken",
        "route_prefix": "/broken",
        "import_path": "serving.app:build_app",
        "args": {
            "task": "embeddings",
            "model_name": "broken",
            "versions": [{"name": "v1", "model": MISSING}],
        },
        "deployments": [
            {"name": "model_v1", "ray_actor_options": {"num_cpus": 0.1}},
            {"name": "router", "ray_actor_options": {"num_cpus": 0.1}},
        ],
    }
    cluster = serving_apps.cluster
    cluster.deploy(serving_apps.config(extra_apps=[broken]))
    try:
        apps = cluster.wait_for_status(
            {"broken": "DEPLOY_FAILED", EMBEDDINGS_APP: "RUNNING", GENERATION_APP: "RUNNING"}
        )
        status = json.dumps(apps["broken"])
        assert f"model path does not exist: {MISSING}" in status
    finally:
        cluster.deploy(serving_apps.config())
        cluster.wait_for_status({EMBEDDINGS_APP: "RUNNING", GENERATION_APP: "RUNNING"})
