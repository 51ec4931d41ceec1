"""Runs repeat exactly for a seed; replicas cost from start to stop; weights split traffic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from controller.config import AppConfig, parse_config
from controller.sim.capacity import constant_trace, poisson_trace
from controller.sim.engine import simulate
from controller.sim.metrics import Pricing, replica_seconds, summarize
from controller.sim.policies.base import Action, PolicyState, PolicyView
from controller.sim.policies.static import StaticPolicy
from controller.sim.slo import request_slo
from controller.sim.trace import scale_trace
from tests.controller.sim import world


def test_the_same_seed_gives_the_same_run() -> None:
    base = poisson_trace(rate=8.0, duration_s=120.0, seed=3)
    app, profile = world.app(), world.encoder(service_ms=50.0, max_batch=4, wait_ms=2.0)
    runs = [simulate(scale_trace(base, rate_scale=1.5, seed=11), profile, app, StaticPolicy(2))
            for _ in range(2)]
    assert np.array_equal(runs[0].done_s, runs[1].done_s)
    other = simulate(scale_trace(base, rate_scale=1.5, seed=12), profile, app, StaticPolicy(2))
    assert len(other.trace) != len(runs[0].trace) or not np.array_equal(
        other.trace.arrival_s, runs[0].trace.arrival_s)


def test_static_replicas_cost_the_whole_run() -> None:
    trace = constant_trace(rate=5.0, duration_s=360.0)
    app, profile = world.app(), world.encoder(service_ms=100.0)
    result = simulate(trace, profile, app, StaticPolicy(3))
    assert replica_seconds(result) == pytest.approx(3 * result.end_s)
    summary = summarize(result, request_slo(app, profile), Pricing(1.0, 2.0))
    assert summary["gpu_hours"] == pytest.approx(3 * result.end_s / 3600)
    assert summary["cost_usd"] == pytest.approx(2.0 * 3 * result.end_s / 3600)
    assert summary["slo_attainment"] == 1.0
    assert summary["scaling_actions"] == 0
    assert summary["goodput_per_gpu_hour"] == pytest.approx(len(trace) / summary["gpu_hours"])


@dataclass(frozen=True)
class Split:
    """Two versions, one replica each, 75/25 weights from the first tick."""

    name: str = "split"
    interval_s: float = 0.1

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        return {"v1": 1, "v2": 1}

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        return Action({"v1": 1, "v2": 1}, weights={"v1": 75, "v2": 25}), state


def test_weights_split_traffic_between_versions_exactly() -> None:
    config = parse_config({
        "prices": {"gpu": 1.0},
        "applications": [{
            "name": "app", "slo": {"latency_p95_ms": 500},
            "versions": [{"name": "v1", "deployment": "d1"}, {"name": "v2", "deployment": "d2"}],
            "resources": {"gpu_type": "gpu"},
        }],
    })
    app = config.applications[0]

    result = simulate(constant_trace(rate=4.0, duration_s=100.0), world.encoder(service_ms=10.0),
                      app, Split())
    late = result.trace.arrival_s > 1.0
    share = (result.version_of[late] == 1).mean()
    assert share == pytest.approx(0.25, abs=0.01)
