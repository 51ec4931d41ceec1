"""A constant load needs exactly the replicas its service time says, no more, no fewer."""

from __future__ import annotations

from controller.sim.capacity import constant_trace, fewest_replicas, static_attainment
from tests.controller.sim import world


def test_25_per_second_at_100_ms_each_needs_3_replicas() -> None:
    # 100 ms per request, one at a time: each replica serves 10 req/s.
    profile = world.encoder(service_ms=100.0)
    app = world.app(slo_ms=150.0)
    trace = constant_trace(rate=25.0, duration_s=120.0)

    def ok(n: int) -> bool:
        overall, _, _ = static_attainment(trace, profile, app, n)
        return overall >= 0.99

    assert fewest_replicas(ok, upper=8) == 3
    overall, worst, result = static_attainment(trace, profile, app, 3)
    assert overall == 1.0
    assert worst == 1.0
    latency = (result.done_s - trace.arrival_s) * 1000.0
    assert latency.max() == 100.0 or abs(latency.max() - 100.0) < 1e-6


def test_two_replicas_fall_behind_and_requests_wait() -> None:
    profile = world.encoder(service_ms=100.0)
    app = world.app(slo_ms=150.0)
    trace = constant_trace(rate=25.0, duration_s=120.0)
    overall, _, result = static_attainment(trace, profile, app, 2)
    assert overall < 0.5
    waits = (result.done_s - trace.arrival_s)[-10:]
    # Demand 25/s against capacity 20/s: the backlog grows by 5 requests a second.
    assert waits.min() > 10.0


def test_fewest_replicas_reports_none_when_even_the_upper_bound_fails() -> None:
    assert fewest_replicas(lambda n: n >= 10, upper=8) is None
    assert fewest_replicas(lambda n: n >= 5, upper=8) == 5
