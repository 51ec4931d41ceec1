"""static-peak is the fewest fixed replicas meeting the SLO in every minute; what a miss is."""

from __future__ import annotations

import numpy as np

from controller.sim.capacity import EPOCH, constant_trace
from controller.sim.command import with_initial_replicas
from controller.sim.runner import run_policies, scenario, static_peak
from controller.sim.slo import request_slo
from controller.sim.trace import Trace
from tests.controller.sim import world


def test_static_peak_sizes_for_the_busiest_minute_not_the_average() -> None:
    # 5 req/s for 4 minutes with one minute at 25 req/s; 100 ms per request.
    quiet = constant_trace(rate=5.0, duration_s=240.0)
    busy = 120.0 + np.arange(0.0, 60.0, 1 / 25)
    arrival = np.sort(np.concatenate([quiet.arrival_s[(quiet.arrival_s < 120)
                                                      | (quiet.arrival_s >= 180)], busy]))
    ones = np.ones(arrival.size, dtype=np.int64)
    trace = Trace(arrival, ones, ones, EPOCH)
    s = scenario(world.config(slo_ms=150.0), world.encoder(service_ms=100.0), trace)
    n, _, setup = static_peak(s)
    assert n == 3
    assert setup["replicas"] == 3
    runs = run_policies(s, ["static-peak"])
    assert runs["static-peak"].summary["slo_attainment"] == 1.0
    assert runs["static-peak"].summary["mean_replicas"] == 3.0


def test_generation_requests_are_held_to_per_token_targets_when_set() -> None:
    profile = world.generation()
    per_token = request_slo(world.app(slo_ms=8000.0, ttft_p95_ms=500.0, tpot_p95_ms=40.0),
                            profile)
    assert (per_token.latency_ms, per_token.ttft_ms, per_token.tpot_ms) == (None, 500.0, 40.0)
    met = per_token.met(np.array([20_000.0, 100.0, 100.0, np.nan]),
                        np.array([400.0, 600.0, 100.0, np.nan]),
                        np.array([30.0, 30.0, 45.0, np.nan]))
    assert met.tolist() == [True, False, False, False]
    end_to_end = request_slo(world.app(slo_ms=8000.0), profile)
    assert (end_to_end.latency_ms, end_to_end.ttft_ms) == (8000.0, None)
    encoder = request_slo(world.app(slo_ms=300.0, ttft_p95_ms=5.0), world.encoder())
    assert (encoder.latency_ms, encoder.ttft_ms) == (300.0, None)


def test_initial_replicas_can_be_overridden_for_every_policy() -> None:
    config = with_initial_replicas(world.config(initial=1), "app", 5)
    assert config.applications[0].version("v1").initial_replicas == 5
