"""max_batch_size and batch_wait_timeout_s change live from the model's user_config."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.samples import Sample

from serving.spec import ModelUserConfig
from tests.conftest import METRICS_REPORT_INTERVAL_MS
from tests.serving.conftest import V1_APP, ServingApps, samples

pytestmark = pytest.mark.integration

SHIPPED = {"max_batch_size": 32, "batch_wait_timeout_s": 0.005}
UNBATCHED = {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}


def in_force(user_config: dict[str, Any]) -> dict[str, Any]:
    """What a replica reports in force for `user_config`: every setting, defaults included."""
    return ModelUserConfig(**user_config).model_dump()


V1_BATCHES = {"application": V1_APP, "deployment": "model_v1", "version": "v1"}


def _wait_for_v1(apps: ServingApps, key: str, wanted: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while apps.versions()["v1"].get(key) != wanted:
        assert time.monotonic() < deadline, f"v1 {key} never became {wanted}"
        time.sleep(0.5)


def _batch_counts(apps: ServingApps) -> tuple[float, float]:
    """Batches of v1 so far: all of them, and those with more than one input."""
    by_bound: dict[float, float] = defaultdict(float)
    found: list[Sample] = samples(apps.cluster, "ray_governor_batch_size_bucket")
    for sample in found:
        if all(sample.labels.get(k) == v for k, v in V1_BATCHES.items()):
            by_bound[float(sample.labels["le"])] += sample.value
    total = by_bound.get(float("inf"), 0.0)
    return total, total - by_bound.get(1.0, 0.0)


def _settled_batch_counts(apps: ServingApps, timeout_s: float = 30.0) -> tuple[float, float]:
    """Batch counts once every earlier batch has reached the exporter (two equal reads)."""
    deadline = time.monotonic() + timeout_s
    previous = _batch_counts(apps)
    while True:
        time.sleep(METRICS_REPORT_INTERVAL_MS / 1000 + 0.5)
        current = _batch_counts(apps)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


async def _fire(url: str, count: int) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        requests = [
            client.post(url, json={"model": "minilm", "input": f"s{i}"}) for i in range(count)
        ]
        assert all(r.status_code == 200 for r in await asyncio.gather(*requests))


@pytest.fixture
def restore_batching(serving_apps: ServingApps) -> Iterator[None]:
    yield
    serving_apps.cluster.deploy(serving_apps.config())
    _wait_for_v1(serving_apps, "batching", in_force(SHIPPED))


@pytest.mark.usefixtures("restore_batching")
def test_max_batch_size_one_stops_batching_without_restart(serving_apps: ServingApps) -> None:
    cluster = serving_apps.cluster
    v1_pids = cluster.replica_pids(V1_APP, "model_v1")
    cluster.deploy(serving_apps.config(v1_batching=UNBATCHED))
    _wait_for_v1(serving_apps, "batching", in_force(UNBATCHED))
    total_before, multi_before = _settled_batch_counts(serving_apps)

    asyncio.run(_fire(serving_apps.embeddings_url, 24))
    deadline = time.monotonic() + 30
    total_after, multi_after = _batch_counts(serving_apps)
    while total_after < total_before + 24 and time.monotonic() < deadline:
        time.sleep(1.0)
        total_after, multi_after = _batch_counts(serving_apps)
    assert total_after >= total_before + 24
    assert multi_after == multi_before
    assert cluster.replica_pids(V1_APP, "model_v1") == v1_pids


@pytest.mark.usefixtures("restore_batching")
def test_bad_batching_config_is_refused_and_the_old_one_stays(serving_apps: ServingApps) -> None:
    cluster = serving_apps.cluster
    v1_pids = cluster.replica_pids(V1_APP, "model_v1")
    cluster.deploy(serving_apps.config(v1_batching={"max_batch_size": 0}))
    deadline = time.monotonic() + 60
    while not serving_apps.versions()["v1"].get("last_config_error"):
        assert time.monotonic() < deadline, "the bad batching config was not refused"
        time.sleep(0.5)
    v1 = serving_apps.versions()["v1"]
    assert "user_config.max_batch_size" in v1["last_config_error"]
    assert v1["batching"] == in_force(SHIPPED)
    assert cluster.replica_pids(V1_APP, "model_v1") == v1_pids
