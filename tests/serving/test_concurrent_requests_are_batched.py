"""Concurrent requests share forward passes: the exported batch-size histogram shows it."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
import pytest
from prometheus_client.samples import Sample

from tests.serving.conftest import V1_APP, ServingApps, wait_for_samples

pytestmark = pytest.mark.integration

CONCURRENT = 48


async def _fire(url: str, count: int) -> list[tuple[int, str]]:
    async with httpx.AsyncClient(timeout=120) as client:
        requests = [
            client.post(url, json={"model": "minilm", "input": f"sentence number {i}"})
            for i in range(count)
        ]
        return [(r.status_code, r.text[:300]) for r in await asyncio.gather(*requests)]


def _batches_larger_than_one(buckets: list[Sample]) -> float:
    by_bound: dict[float, float] = defaultdict(float)
    for sample in buckets:
        by_bound[float(sample.labels["le"])] += sample.value
    return by_bound.get(float("inf"), 0.0) - by_bound.get(1.0, 0.0)


def test_concurrent_requests_are_batched(serving_apps: ServingApps) -> None:
    # A burst is admitted whole unless the version was late recently (docs/reliability.md,
    # "Load shedding"): start from a version whose admission has nothing against it.
    serving_apps.wait_for_open_admission()
    answers = asyncio.run(_fire(serving_apps.embeddings_url, CONCURRENT))
    refused = [answer for answer in answers if answer[0] != 200]
    assert refused == []
    wait_for_samples(
        serving_apps.cluster,
        "ray_governor_batch_size_bucket",
        {"version": "v1", "deployment": "model_v1", "application": V1_APP},
        accept=lambda buckets: _batches_larger_than_one(buckets) > 0,
    )
