"""The `governor` policy calls the daemon's `decide` with observed snapshots and applies its plan."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import controller.sim.policies.governor as governor_module
from controller.decide import TickDecision, decide
from controller.sim.capacity import EPOCH
from controller.sim.engine import simulate
from controller.sim.policies.governor import GovernorPolicy
from controller.sim.trace import Trace
from controller.snapshot import Snapshot
from tests.controller.sim import world


def ramp(seconds: float = 400.0) -> Trace:
    """4 req/s rising evenly to 25 req/s over 200 s, then 25 req/s."""
    times, t = [], 0.0
    while t < seconds:
        times.append(t)
        t += 1.0 / (4.0 + 21.0 * min(t, 200.0) / 200.0)
    ones = np.ones(len(times), dtype=np.int64)
    return Trace(np.asarray(times), ones, ones, EPOCH)


def test_every_tick_decides_on_a_snapshot_and_the_plan_becomes_the_fleet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[Snapshot, TickDecision]] = []

    def spy(snapshot: Snapshot, states: Mapping[str, Any], config: Any,
            agents: Any = None) -> TickDecision:
        tick = decide(snapshot, states, config, agents)
        seen.append((snapshot, tick))
        return tick

    monkeypatch.setattr(governor_module, "decide", spy)
    # 100 ms per request: 10 req/s per replica, planned at 60% -> 6 req/s per replica.
    config = world.config(slo_ms=300.0, max_replicas=10, initial=1, scaling={
        "capacity_rps_per_replica": 10.0, "target_utilization": 0.6, "upscale_delay_s": 0,
        "max_upscale_step": 4, "default_startup_s": 10})
    app = config.applications[0]
    result = simulate(ramp(), world.encoder(service_ms=100.0, startup_s=10.0), app,
                      GovernorPolicy(config))
    # Called every interval_s of simulated time, never per request.
    assert len(seen) == pytest.approx(result.end_s / config.interval_s, abs=2)
    times = [snap.now for snap, _ in seen]
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(times)} == {5.0}
    # Each plan's replica count is the fleet's target right after its tick.
    for snap, tick in seen:
        t = (snap.now - EPOCH).total_seconds()
        sample = result.obs.at("v1", t + 0.5)
        planned = tick.plan.replicas_for("app", "v1")
        assert sample is not None and planned is not None
        assert sample.target == planned, t
    # The snapshots carry what the pipeline observed: the ramp's rising rate.
    rates = [snap.apps[0].versions[0].request_rate for snap, _ in seen]
    assert rates[2] is not None and rates[-1] is not None and rates[-1] > 4 * rates[2]
    assert result.obs.samples["v1"][-1].target >= 4
