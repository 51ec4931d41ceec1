"""One deployment of the data plane, shared by the serving integration tests.

The embeddings applications are the shipped `configs/serve.local.yaml`'s (a router
application and one application per version); a generation application serving the
test-made tiny causal LM, in the one-application layout (`build_app`), is added at `/gen`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import RayServeCluster
from tests.serve_configs import add_version

LOCAL_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "serve.local.yaml"
EMBEDDINGS_APP = "embeddings"
V1_APP = "embeddings-v1"
V2_APP = "embeddings-v2"
EMBEDDINGS_APPS = (EMBEDDINGS_APP, V1_APP, V2_APP)
GENERATION_APP = "generation"
GENERATION_PREFIX = "/gen"


def generation_app(model_path: Path) -> dict[str, Any]:
    """A generation application for the tiny causal LM, small enough for 2 cores."""
    return {
        "name": GENERATION_APP,
        "route_prefix": GENERATION_PREFIX,
        "import_path": "serving.app:build_app",
        "external_scaler_enabled": True,
        "args": {
            "task": "generation",
            "model_name": "tiny-lm",
            "max_inputs": 4,
            "max_input_chars": 200,
            "max_tokens_limit": 96,
            "default_max_tokens": 8,
            "versions": [{"name": "v1", "model": str(model_path), "device": "cpu"}],
        },
        "deployments": [
            {
                "name": "router",
                "num_replicas": 1,
                "user_config": {"weights": {"v1": 100}},
                "ray_actor_options": {"num_cpus": 0.25},
            },
            {
                "name": "model_v1",
                "num_replicas": 1,
                "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0.01},
                "ray_actor_options": {"num_cpus": 0.5},
            },
        ],
    }


@dataclass
class ServingApps:
    """The deployed test applications and helpers to change them."""

    cluster: RayServeCluster
    model_path: Path

    @property
    def embeddings_url(self) -> str:
        """POST here for embeddings."""
        return f"{self.cluster.http_url}/v1/embeddings"

    @property
    def completions_url(self) -> str:
        """POST here for completions of the tiny LM."""
        return f"{self.cluster.http_url}{GENERATION_PREFIX}/v1/completions"

    @property
    def generation_url(self) -> str:
        """The tiny LM's application: `/v1/...` below it."""
        return f"{self.cluster.http_url}{GENERATION_PREFIX}"

    def config(
        self,
        weights: dict[str, int] | None = None,
        v1_batching: dict[str, Any] | None = None,
        extra_apps: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """The full Serve config of the test apps; optionally other router weights or v1 batching."""
        config = copy.deepcopy(yaml.safe_load(LOCAL_CONFIG.read_text()))
        # The shipped embeddings applications and v2 beside v1, as a release adds it; the
        # tests bring their own generation application.
        add_version(config, EMBEDDINGS_APP, "v1", "v2")
        apps = {a["name"]: a for a in config["applications"]}
        config["applications"] = [apps[name] for name in EMBEDDINGS_APPS]
        (router,) = apps[EMBEDDINGS_APP]["deployments"]
        if weights is not None:
            router["user_config"] = {**router["user_config"], "weights": weights}
        if v1_batching is not None:
            (model_v1,) = apps[V1_APP]["deployments"]
            model_v1["user_config"] = v1_batching
        config["applications"] += [generation_app(self.model_path), *extra_apps]
        return config

    def versions(self) -> dict[str, Any]:
        """What one replica of each embeddings version reports (batching in force, pid)."""
        return dict(httpx.get(f"{self.cluster.http_url}/versions", timeout=30).json())

    def health(self) -> dict[str, Any]:
        """The embeddings router's health document."""
        return dict(httpx.get(f"{self.cluster.http_url}/health", timeout=30).json())

    def wait_for_open_admission(self, timeout_s: float = 60.0) -> None:
        """Wait until no version's admission limit is lowered (an earlier test made it slow),
        then send one request, so that the proxy learns it from the answer."""
        from serving.admission import CEILING

        deadline = time.monotonic() + timeout_s
        while any(
            limit["limit"] < CEILING for limit in self.health().get("admission", {}).values()
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"admission still limited: {self.health()['admission']}")
            time.sleep(0.5)
        answer = httpx.post(self.embeddings_url, json={"model": "minilm", "input": "x"}, timeout=60)
        assert answer.status_code == 200, answer.text

    def wait_for_health(self, key: str, value: Any, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until the router's health document shows `key == value`."""
        deadline = time.monotonic() + timeout_s
        health = self.health()
        while health.get(key) != value:
            if time.monotonic() > deadline:
                raise AssertionError(f"router health {key}={health.get(key)!r}, wanted {value!r}")
            time.sleep(0.5)
            health = self.health()
        return health


RUNNING = {**dict.fromkeys(EMBEDDINGS_APPS, "RUNNING"), GENERATION_APP: "RUNNING"}
"""Every test application, running."""


@pytest.fixture(scope="package")
def serving_apps(ray_serve: RayServeCluster, tiny_causal_lm: Path) -> Iterator[ServingApps]:
    """Deploy the test apps once for every serving integration test; remove them after."""
    apps = ServingApps(ray_serve, tiny_causal_lm)
    ray_serve.deploy(apps.config())
    ray_serve.wait_for_status(RUNNING)
    yield apps
    ray_serve.deploy({"applications": []})


def samples(cluster: RayServeCluster, name: str) -> list[Sample]:
    """Every exported sample whose name is `name`."""
    found = []
    for family in text_string_to_metric_families(cluster.metrics_text()):
        found.extend(s for s in family.samples if s.name == name)
    return found


def wait_for_samples(
    cluster: RayServeCluster,
    name: str,
    labels: dict[str, str],
    accept: Callable[[list[Sample]], bool] = bool,
    timeout_s: float = 60.0,
) -> list[Sample]:
    """Wait until the samples named `name` with these labels satisfy `accept`; return them."""
    deadline = time.monotonic() + timeout_s
    while True:
        matching = [
            s
            for s in samples(cluster, name)
            if all(s.labels.get(k) == v for k, v in labels.items())
        ]
        if accept(matching):
            return matching
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} with {labels} not as expected after {timeout_s}s")
        time.sleep(1.0)
