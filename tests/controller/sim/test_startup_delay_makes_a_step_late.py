"""A load step is served late by exactly the start-up delay of the replicas it needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.config import AppConfig
from controller.sim.capacity import EPOCH
from controller.sim.engine import simulate
from controller.sim.metrics import outcomes
from controller.sim.policies.base import Action, PolicyState, PolicyView
from controller.sim.slo import request_slo
from controller.sim.trace import Trace
from tests.controller.sim import world


@dataclass(frozen=True)
class ScaleAt:
    """Asks for `after` replicas from `at_s` on (a perfect, instant decision)."""

    at_s: float
    after: int
    name: str = "scale-at"
    interval_s: float = 1.0

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        return {"v1": 1}

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        return Action({"v1": self.after if view.t >= self.at_s else 1}), state


def step_trace() -> Trace:
    """5 req/s for 60 s, then 25 req/s for 120 s, evenly spaced."""
    low = np.arange(0.0, 60.0, 1 / 5)
    high = 60.0 + np.arange(0.0, 120.0, 1 / 25)
    arrival = np.concatenate([low, high])
    ones = np.ones(arrival.size, dtype=np.int64)
    return Trace(arrival, ones * 10, ones, EPOCH)


def late(startup_s: float) -> tuple[float, float, np.ndarray]:
    trace = step_trace()
    app = world.app(slo_ms=150.0)
    profile = world.encoder(service_ms=100.0, startup_s=startup_s)
    result = simulate(trace, profile, app, ScaleAt(at_s=60.0, after=5))
    met = outcomes(result, request_slo(app, profile)).met
    missed = trace.arrival_s[~met]
    ready = [r for _, _, r, _ in result.replica_spans if r is not None and r > 0]
    return (min(ready) if ready else 0.0), (missed.max() if missed.size else 0.0), missed


def test_without_startup_delay_the_step_is_served_at_once() -> None:
    _, _, missed = late(startup_s=0.0)
    assert missed.size == 0


def test_a_30s_startup_leaves_the_step_unserved_for_30s_then_recovers() -> None:
    ready_at, last_miss, missed = late(startup_s=30.0)
    assert ready_at == 90.0
    assert missed.min() >= 60.0
    # 30 s at 25 req/s against 10 req/s of capacity leaves 450 waiting; five replicas
    # (50 req/s) drain that at 25 req/s of spare in 18 s.
    assert 105.0 <= last_miss <= 112.0
    assert missed.size > 450
