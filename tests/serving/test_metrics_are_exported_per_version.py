"""The router and the models export their metrics with the version as a label."""

from __future__ import annotations

import httpx
import pytest

from serving.metrics import LATENCY_BUCKETS_MS
from tests.serving.conftest import V1_APP, ServingApps, wait_for_samples

pytestmark = pytest.mark.integration


def test_router_and_model_metrics_carry_version_and_serve_tags(serving_apps: ServingApps) -> None:
    cluster = serving_apps.cluster
    for i in range(3):
        ok = httpx.post(serving_apps.embeddings_url, json={"model": "minilm", "input": f"m{i}"})
        assert ok.status_code == 200
    bad = httpx.post(serving_apps.embeddings_url, json={"model": "minilm", "input": []})
    assert bad.status_code == 400
    generated = httpx.post(
        serving_apps.completions_url,
        json={"model": "tiny-lm", "prompt": "hello", "max_tokens": 3, "temperature": 0},
        timeout=60,
    )
    assert generated.status_code == 200

    router = {"application": "embeddings", "deployment": "router", "model": "minilm"}
    requests = wait_for_samples(
        cluster,
        "ray_governor_requests_total",
        {**router, "version": "v1", "endpoint": "embeddings"},
    )
    assert requests[0].value >= 3
    assert requests[0].labels["replica"]
    wait_for_samples(
        cluster,
        "ray_governor_request_errors_total",
        {**router, "version": "none", "kind": "invalid_request", "status": "400"},
    )
    buckets = wait_for_samples(
        cluster, "ray_governor_request_latency_ms_bucket", {**router, "version": "v1"}
    )
    bounds = sorted({float(s.labels["le"]) for s in buckets})
    assert bounds == [*LATENCY_BUCKETS_MS, float("inf")]
    weights = wait_for_samples(cluster, "ray_governor_route_weight", router)
    assert {s.labels["version"]: s.value for s in weights} == {"v1": 100.0, "v2": 0.0}

    model = {"application": V1_APP, "deployment": "model_v1", "version": "v1"}
    wait_for_samples(cluster, "ray_governor_input_tokens_total", model)
    wait_for_samples(cluster, "ray_governor_batched_inputs_total", model)
    wait_for_samples(cluster, "ray_governor_batch_compute_ms_bucket", model)
    wait_for_samples(cluster, "ray_governor_model_load_seconds", model)

    generation = {"application": "generation", "deployment": "model_v1", "model": "tiny-lm"}
    wait_for_samples(cluster, "ray_governor_output_tokens_total", generation)
    wait_for_samples(cluster, "ray_governor_time_per_output_token_ms_bucket", generation)
