"""Re-applying the config with new router weights moves traffic without restarting models."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.serving.conftest import EMBEDDINGS_APP, V1_APP, ServingApps

pytestmark = pytest.mark.integration

REQUESTS = 400


async def _served_by(url: str, count: int) -> list[tuple[str, int]]:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=120) as client:

        async def one(i: int) -> tuple[str, int]:
            async with limit:
                response = await client.post(url, json={"model": "minilm", "input": f"t{i}"})
            assert response.status_code == 200, response.text
            headers = response.headers
            return headers["x-governor-version"], int(headers["x-governor-replica-pid"])

        return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.fixture
def restore_weights(serving_apps: ServingApps) -> Iterator[None]:
    yield
    serving_apps.cluster.deploy(serving_apps.config())
    serving_apps.wait_for_health("weights", {"v1": 100, "v2": 0})


@pytest.mark.usefixtures("restore_weights")
def test_weights_100_0_to_50_50_split_traffic_and_keep_v1_processes(
    serving_apps: ServingApps,
) -> None:
    cluster = serving_apps.cluster
    v1_pids = cluster.replica_pids(V1_APP, "model_v1")
    router_pids = cluster.replica_pids(EMBEDDINGS_APP, "router")
    before = asyncio.run(_served_by(serving_apps.embeddings_url, 50))
    assert {version for version, _ in before} == {"v1"}

    cluster.deploy(serving_apps.config(weights={"v1": 50, "v2": 50}))
    serving_apps.wait_for_health("weights", {"v1": 50, "v2": 50})
    served = asyncio.run(_served_by(serving_apps.embeddings_url, REQUESTS))

    share_v2 = Counter(version for version, _ in served)["v2"] / REQUESTS
    assert 0.40 <= share_v2 <= 0.60, share_v2
    assert {pid for version, pid in served if version == "v1"} <= v1_pids
    assert cluster.replica_pids(V1_APP, "model_v1") == v1_pids
    assert cluster.replica_pids(EMBEDDINGS_APP, "router") == router_pids


@pytest.mark.usefixtures("restore_weights")
def test_bad_weights_are_refused_and_the_old_ones_stay(serving_apps: ServingApps) -> None:
    cluster = serving_apps.cluster
    router_pids = cluster.replica_pids(EMBEDDINGS_APP, "router")
    cluster.deploy(serving_apps.config(weights={"v1": 60, "v2": 30}))
    health = serving_apps.wait_for_health("weights", {"v1": 100, "v2": 0})
    deadline_health = health
    for _ in range(60):
        if deadline_health["last_config_error"]:
            break
        asyncio.run(asyncio.sleep(0.5))
        deadline_health = serving_apps.health()
    assert "weights must sum to 100" in deadline_health["last_config_error"]
    assert deadline_health["weights"] == {"v1": 100, "v2": 0}
    assert cluster.replica_pids(EMBEDDINGS_APP, "router") == router_pids
    served = asyncio.run(_served_by(serving_apps.embeddings_url, 20))
    assert {version for version, _ in served} == {"v1"}
