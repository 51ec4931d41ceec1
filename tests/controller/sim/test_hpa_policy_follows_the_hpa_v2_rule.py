"""`hpa`: the HPA v2 replica formula, tolerance, stabilization window and rate limits."""

from __future__ import annotations

import numpy as np

from controller.sim.capacity import EPOCH
from controller.sim.engine import simulate
from controller.sim.policies.hpa import (
    HpaPolicy,
    rate_limit,
    raw_recommendation,
    stabilize,
)
from controller.sim.trace import Trace
from tests.controller.sim import world


def test_desired_is_ceil_of_pods_times_metric_over_target_outside_the_tolerance() -> None:
    assert raw_recommendation(4, 4, 0, metric_total=4 * 10.5, target=10) == 4
    assert raw_recommendation(4, 4, 0, metric_total=4 * 25, target=10) == 10
    assert raw_recommendation(4, 4, 0, metric_total=4 * 2, target=10) == 1


def test_starting_pods_count_as_idle_when_scaling_up() -> None:
    # 2 ready pods at 30 each, 2 starting (no metric): (60 + 0) / (4 x 10) = 1.5 -> 6.
    assert raw_recommendation(4, 2, 2, metric_total=60, target=10) == 6
    # Counting the starting pods as idle brings the ratio inside the tolerance: no change.
    assert raw_recommendation(4, 2, 2, metric_total=42, target=10) == 4


def test_scale_down_waits_for_the_highest_recommendation_of_the_last_300s() -> None:
    history: list[list[float]] = []
    n, history = stabilize(10, 10, 0.0, history)
    n, history = stabilize(10, 3, 100.0, history)
    assert n == 10
    n, history = stabilize(10, 3, 301.0, history)
    assert n == 3


def test_scale_up_is_limited_to_double_or_plus_four_per_15s() -> None:
    assert rate_limit(2, 40, 0.0, []) == 6
    assert rate_limit(10, 40, 0.0, []) == 20
    assert rate_limit(10, 40, 10.0, [[5.0, 4.0]]) == 12


def test_hpa_scales_up_within_a_sync_and_down_only_after_five_minutes() -> None:
    # 100 ms per request; 30 req/s for 120 s, then 5 req/s; target 1 in flight per pod.
    high = np.arange(0.0, 120.0, 1 / 30)
    low = 120.0 + np.arange(0.0, 600.0, 1 / 5)
    arrival = np.concatenate([high, low])
    ones = np.ones(arrival.size, dtype=np.int64)
    app = world.app(max_replicas=20, initial=2)
    policy = HpaPolicy.for_app(app, target_in_flight=1.0)
    result = simulate(Trace(arrival, ones, ones, EPOCH), world.encoder(100.0, startup_s=5.0),
                      app, policy)
    target_at = {int(s.t): s.target for s in result.obs.samples["v1"]}
    # First sync at 15 s: the backlog asks for the maximum, the +4/100% limit gives 6.
    assert target_at[14] == 2
    assert target_at[16] == 6
    # Later syncs ask for fewer, but the 15 s recommendation holds for 300 s.
    assert all(target_at[t] == 6 for t in range(16, 315))
    assert target_at[316] < 6
