"""Canaries on a real local Ray Serve: a slower version is rolled back, a healthy one promoted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RayServeCluster
from tests.integration.governed_fleet import (
    APP,
    RUNNING,
    Load,
    RunningDaemon,
    daemon_running,
    describe,
    governor_config,
    serve_config,
    wait_until,
)

pytestmark = pytest.mark.integration

ROLLOUT = {
    "steps": [50, 100],
    "step_min_duration_s": 6,
    "min_requests": 40,
    "max_latency_ratio": 1.5,
    "deadline_s": 120,
    "drain_s": 2,
}
# Requests of many short inputs, where batching pays most: one request is one forward pass
# for a batching version and INPUTS passes for one without, which falls behind at half the
# traffic while the batching version carries all of it with room to spare.
WORDS = 4
INPUTS = 16
RATE = 10.0


def deployed(cluster: RayServeCluster, v2_batching: dict[str, Any] | None) -> dict[str, Any]:
    doc = serve_config(cluster.http_port, v2_batching=v2_batching)
    for d in [d for a in doc["applications"] for d in a["deployments"]]:
        if d["name"] == "model_v1":
            d["user_config"] = {"max_batch_size": 32, "batch_wait_timeout_s": 0.01}
        # A slower canary should show as latency, which the analysis reads, not as
        # back-pressure refusals: give the models room to queue.
        d["max_ongoing_requests"] = 512
    cluster.deploy(doc)
    cluster.wait_for_status(RUNNING)
    return doc


@pytest.fixture
def cleanup(ray_serve: RayServeCluster) -> Iterator[RayServeCluster]:
    yield ray_serve
    with ray_serve.rest() as client:
        client.delete("/api/serve/applications/")


def rollout_of(running: RunningDaemon) -> dict[str, Any]:
    return running.daemon.rollouts()[APP]


def run_canary(
    cluster: RayServeCluster, tmp_path: Path, v2_batching: dict[str, Any] | None
) -> tuple[RunningDaemon, list[Any], dict[str, Any]]:
    doc = deployed(cluster, v2_batching)
    config, _ = governor_config(
        cluster,
        tmp_path,
        serve=doc,
        candidate="v2",
        rollout=ROLLOUT,
        scaling={"capacity_rps_per_replica": 1000.0},
    )
    with daemon_running(config) as running:
        load = Load(cluster, rate=RATE, seconds=70, words=WORDS, inputs=INPUTS).start()
        wait_until(
            lambda: rollout_of(running)["phase"] in ("promoted", "rolled-back", "aborted"),
            120,
            "the rollout's verdict",
            running,
        )
        results = load.wait()
        final = dict(rollout_of(running))
    return running, results, final


def test_a_canary_without_batching_is_rolled_back_and_nothing_fails_but_overload(
    cleanup: RayServeCluster, tmp_path: Path
) -> None:
    running, results, final = run_canary(
        cleanup, tmp_path, {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}
    )
    assert final["phase"] == "rolled-back", f"{final}\n{describe(running.reports[-1])}"
    # Slower than its stable, the canary shows it as latency or, once it holds what it
    # answers within the SLO, as requests its router sheds: either rolls it back.
    reason = final["reason"]
    assert "latency" in reason or "p95" in reason or "shed rate" in reason, reason
    assert running.reports[-1].plan.weights_for(APP) == {"v1": 100, "v2": 0}
    # The canary's backlog also takes the stable's cores on this host: what either then
    # cannot answer within the SLO is refused as overload (503, Retry-After), and nothing
    # fails otherwise.
    failed = [r for r in results if not r.ok and not r.shed]
    assert failed == [], [r.error for r in failed][:3]
    assert sum(r.ok for r in results) >= len(results) / 2


def test_a_healthy_canary_is_promoted_with_no_failed_request(
    cleanup: RayServeCluster, tmp_path: Path
) -> None:
    running, results, final = run_canary(cleanup, tmp_path, None)
    assert final["phase"] == "promoted", f"{final}\n{describe(running.reports[-1])}"
    assert final["stable"] == "v2"
    assert running.reports[-1].plan.weights_for(APP) == {"v1": 0, "v2": 100}
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
