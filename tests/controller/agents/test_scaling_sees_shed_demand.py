"""Requests shed for overload are demand the version failed to serve: the scaling agent adds
them to demand and scales up at once, though the latency of the answered ones, kept near
normal by the bounded queue, shows no breach."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.decide import decide
from tests.controller.agents.test_scaling_agent import (
    alerts,
    one_version,
    proposals,
    replica_proposal,
)
from tests.controller.fleet import T0, snapshot, version

WEIGHTS = {"v1": 100}


def test_shed_requests_scale_up_at_once_where_latency_alone_would_hold() -> None:
    # 50 req/s per replica planned at 0.7: 70 req/s answered on 2 replicas within the SLO.
    config = one_version(upscale_delay_s=60)
    calm = snapshot(version(replicas=2, rate=70.0, p95_ms=100.0), weights=WEIGHTS)
    assert replica_proposal(proposals(calm, config)).replicas == 2
    shedding = snapshot(
        version(replicas=2, rate=70.0, p95_ms=100.0, shed_rate=60.0), weights=WEIGHTS
    )
    p = replica_proposal(proposals(shedding, config))
    # 70 + 60 = 130 req/s at 35 per replica: 3.7, and no upscale delay while requests are refused.
    assert p.replicas == 4
    assert "130.00 req/s" in p.reason and "shed 60.00 req/s" in p.reason
    assert "60.00 req/s shed for overload: scale up now" in p.reason


def test_a_little_shedding_adds_a_replica_even_inside_the_hysteresis_band() -> None:
    config = one_version(upscale_delay_s=60, hysteresis=0.5)
    snap = snapshot(version(replicas=3, rate=70.0, p95_ms=100.0, shed_rate=1.0), weights=WEIGHTS)
    p = replica_proposal(proposals(snap, config))
    assert p.replicas == 4
    assert "1.00 req/s shed for overload: one more now" in p.reason


def test_shedding_while_replicas_start_waits_for_them() -> None:
    config = one_version()
    starting = version(
        replicas=2, rate=70.0, p95_ms=100.0, shed_rate=30.0, starting_replicas=2, target_replicas=4
    )
    p = replica_proposal(proposals(snapshot(starting, weights=WEIGHTS), config))
    assert p.replicas == 4  # 100 req/s needs 2.9: the 4 already on their way are enough


def test_without_a_seed_the_load_served_while_shedding_proves_a_capacity_to_scale_on() -> None:
    config = one_version(capacity_rps_per_replica=None, upscale_delay_s=0)
    states: dict[str, Any] = {}
    counts = []
    for i in range(10):
        snap = snapshot(
            version(replicas=2, rate=60.0, p95_ms=80.0, shed_rate=40.0, request_count=1800.0),
            weights=WEIGHTS,
            now=T0 + timedelta(seconds=5 * i),
        )
        decision = decide(snap, states, config)
        states = decision.states
        counts.append(decision.plan.replicas_for("embed", "v1"))
    # Served 30 req/s per replica within the SLO: proven. 100 req/s offered needs 4.
    assert counts[0] == 2 and counts[-1] == 4, counts
    reason = replica_proposal(list(decision.proposals)).reason
    assert "proven capacity 30" in reason and "shed for overload" in reason


def test_shedding_at_max_replicas_raises_an_alert() -> None:
    config = one_version(max_replicas=2)
    snap = snapshot(version(replicas=2, rate=70.0, p95_ms=100.0, shed_rate=30.0), weights=WEIGHTS)
    out = proposals(snap, config)
    assert replica_proposal(out).replicas == 2
    assert "30.00 req/s shed for overload at max_replicas 2" in alerts(out)


def test_requests_shed_at_zero_replicas_start_the_version() -> None:
    config = one_version(min_replicas=0, scale_to_zero=True)
    cold = version(replicas=0, rate=0.0, p95_ms=None, shed_rate=5.0)
    p = replica_proposal(proposals(snapshot(cold, weights=WEIGHTS), config))
    assert p.replicas >= 1
    assert "requests arrived at zero replicas" in p.reason


def test_a_shedding_version_is_never_idle() -> None:
    config = one_version(min_replicas=0, scale_to_zero=True, idle_before_zero_s=0)
    busy = version(replicas=1, rate=0.0, p95_ms=None, shed_rate=5.0)
    assert replica_proposal(proposals(snapshot(busy, weights=WEIGHTS), config)).replicas >= 1
