"""The scaling agent, alone and in a closed loop over a queueing-like latency model."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from controller.agents.scaling import Capacity, ScalingAgent, learn_capacity
from controller.config import GovernorConfig
from controller.decide import decide
from controller.decisions import ReplicaProposal
from controller.snapshot import Snapshot
from tests.controller.fleet import T0, Loop, app_doc, make_config, snapshot, version


def one_version(min_replicas: int = 1, **scaling: Any) -> GovernorConfig:
    """One app with one version; scaling knobs overridden."""
    knobs = {"capacity_rps_per_replica": 50.0, "downscale_delay_s": 60} | scaling
    return make_config(
        app_doc(versions=("v1",), min_replicas=min_replicas, max_replicas=20, scaling=knobs)
    )


@dataclass
class LoadWorld:
    """p95 = base / (1 - utilization), floored; `rate(t)` is the offered load at t seconds."""

    rate: Callable[[float], float]
    capacity: float = 50.0
    base_ms: float = 40.0
    startup_s: float | None = None

    def __call__(self, loop: Loop) -> Snapshot:
        t = (loop.now - T0).total_seconds()
        r = self.rate(t)
        n = loop.replicas[("embed", "v1")]
        rho = r / (n * self.capacity) if n else 1.0
        p95 = self.base_ms / max(1 - rho, 0.05)
        v = version("embed", "v1", n, rate=r, p95_ms=p95, startup_s=self.startup_s)
        return snapshot(v, weights={"v1": 100})


def scaling_proposals(loop: Loop) -> list[ReplicaProposal]:
    """The scaling agent's replica proposals of the last tick."""
    return [
        p
        for p in loop.history[-1].proposals
        if isinstance(p, ReplicaProposal) and p.agent == "scaling"
    ]


def test_scale_up_within_one_tick_when_p95_breaches_and_demand_rises() -> None:
    config = one_version(upscale_delay_s=120)
    loop = Loop(config, LoadWorld(lambda t: 60.0 if t < 30 else 100.0))
    loop.replicas[("embed", "v1")] = 2
    loop.run(30)
    assert loop.replicas[("embed", "v1")] == 2
    decision = loop.tick()
    assert decision.plan.replicas_for("embed", "v1") > 2
    (proposal,) = scaling_proposals(loop)
    assert "> SLO 200 ms and demand rising" in proposal.reason


def test_no_flapping_under_noisy_steady_load() -> None:
    rng = random.Random(7)
    noise = {int(t): 100 * (1 + rng.uniform(-0.15, 0.15)) for t in range(0, 4000, 5)}
    loop = Loop(one_version(), LoadWorld(lambda t: noise[int(t)]))
    loop.run(60)
    settled = loop.replicas[("embed", "v1")]
    counts = [loop.tick().plan.replicas_for("embed", "v1") for _ in range(600)]
    changes = sum(1 for a, b in itertools.pairwise([settled, *counts]) if a != b)
    assert changes <= 2, f"{changes} replica changes in 50 minutes of steady load"


def test_scale_down_is_delayed_and_gradual() -> None:
    config = one_version(downscale_delay_s=60, max_downscale_step=1)
    loop = Loop(config, LoadWorld(lambda t: 300.0 if t < 300 else 40.0))
    loop.run(300)
    high = loop.replicas[("embed", "v1")]
    assert high >= 8
    drops: list[tuple[float, int]] = []
    last = high
    for _ in range(200):
        at = (loop.now - T0).total_seconds()
        n = loop.tick().plan.replicas_for("embed", "v1")
        assert n is not None and n >= last - 1, "at most one replica down per step"
        if n < last:
            drops.append((at, n))
        last = n
    assert drops, "load fell, replicas must follow"
    assert drops[0][0] >= 300 + 60, "no scale-down before the delay"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(drops)]
    assert all(g >= 60 for g in gaps), gaps
    assert last == 2


def test_hold_when_the_request_rate_is_missing() -> None:
    config = one_version()
    snap = snapshot(version(replicas=4, rate=None, p95_ms=None), weights={"v1": 100})
    decision = decide(snap, {}, config)
    assert decision.plan.replicas_for("embed", "v1") == 4
    (p,) = [x for x in decision.proposals if isinstance(x, ReplicaProposal)]
    assert p.replicas == 4 and "missing" in p.reason


def test_never_scale_down_when_p95_is_missing() -> None:
    config = one_version(downscale_delay_s=0)
    states: dict[str, Any] = {}
    for i in range(20):
        snap = snapshot(
            version(replicas=6, rate=10.0, p95_ms=None),
            weights={"v1": 100},
            now=T0 + timedelta(seconds=5 * i),
        )
        decision = decide(snap, states, config)
        states = decision.states
        assert decision.plan.replicas_for("embed", "v1") == 6


def test_scale_down_when_traffic_stops_even_though_no_latency_was_recorded() -> None:
    config = one_version(downscale_delay_s=0, capacity_rps_per_replica=10.0)
    states: dict[str, Any] = {}
    counts = []
    for i in range(20):
        snap = snapshot(
            version(replicas=3, rate=0.0, p95_ms=None),
            weights={"v1": 100},
            now=T0 + timedelta(seconds=5 * i),
        )
        decision = decide(snap, states, config)
        states = decision.states
        counts.append(decision.plan.replicas_for("embed", "v1"))
    assert counts[-1] == 2, counts  # one step down from the observed 3 (max_downscale_step)


def test_hold_when_the_version_or_its_replica_count_is_unobserved() -> None:
    config = one_version()
    snap = snapshot(version(replicas=None, rate=50.0), weights={"v1": 100})
    proposals, _ = ScalingAgent().propose(snap, {}, config)
    assert proposals == []


def test_headroom_grows_with_startup_time() -> None:
    config = one_version(max_upscale_step=20, forecast_window_s=60)
    loop = Loop(config, LoadWorld(lambda t: 50 + 2.0 * t, startup_s=10))
    loop.replicas[("embed", "v1")] = 3
    loop.run(60)
    rate = 50 + 2.0 * (loop.now - T0).total_seconds()
    n = loop.replicas[("embed", "v1")]

    def planned(startup_s: float) -> int:
        v = version(replicas=n, rate=rate, p95_ms=100.0, startup_s=startup_s)
        snap = snapshot(v, weights={"v1": 100}, now=loop.now)
        result = decide(snap, loop.states, config).plan.replicas_for("embed", "v1")
        assert result is not None
        return result

    fast, slow = planned(10), planned(120)
    assert slow > fast, (fast, slow)


def test_default_startup_time_is_used_when_none_is_measured() -> None:
    short = one_version(default_startup_s=5, max_upscale_step=20)
    long = one_version(default_startup_s=300, max_upscale_step=20)
    states: dict[str, Any] = {
        "scaling": {
            "versions": {
                "embed/v1": {
                    "level_rps": 100.0,
                    "trend_rps_per_s": 1.0,
                    "observed_at": T0.isoformat(),
                }
            }
        }
    }
    snap = snapshot(
        version(replicas=3, rate=105.0, p95_ms=100.0), weights={"v1": 100}, now=T0.replace(second=5)
    )
    fast = decide(snap, states, short).plan.replicas_for("embed", "v1")
    slow = decide(snap, states, long).plan.replicas_for("embed", "v1")
    assert fast is not None and slow is not None and slow > fast


def test_scale_to_zero_only_after_the_idle_period() -> None:
    config = one_version(min_replicas=0, scale_to_zero=True, idle_before_zero_s=60)
    loop = Loop(config, LoadWorld(lambda t: 0.0))
    loop.replicas[("embed", "v1")] = 2
    loop.run(55)
    assert loop.replicas[("embed", "v1")] >= 1
    loop.run(10)
    assert loop.replicas[("embed", "v1")] == 0


def test_no_scale_to_zero_unless_the_config_allows_it() -> None:
    loop = Loop(one_version(min_replicas=0), LoadWorld(lambda t: 0.0))
    loop.run(600)
    assert loop.replicas[("embed", "v1")] == 1


def test_immediate_scale_up_from_zero_when_requests_arrive() -> None:
    config = one_version(
        min_replicas=0, capacity_rps_per_replica=10, scale_to_zero=True, upscale_delay_s=300
    )
    queued = snapshot(version(replicas=0, rate=0.0, queue_length=3.0), weights={"v1": 100})
    assert decide(queued, {}, config).plan.replicas_for("embed", "v1") == 1
    busy = snapshot(version(replicas=0, rate=25.0), weights={"v1": 100})
    assert decide(busy, {}, config).plan.replicas_for("embed", "v1") == 4


def test_a_version_without_traffic_share_is_left_to_the_rollout_agent() -> None:
    config = make_config(app_doc(scaling={"capacity_rps_per_replica": 50}))
    snap = snapshot(
        version(name="v1", replicas=2, rate=60.0),
        version(name="v2", replicas=3, rate=0.0),
        weights={"v1": 100, "v2": 0},
    )
    proposals, _ = ScalingAgent().propose(snap, {}, config)
    assert {p.version for p in proposals if isinstance(p, ReplicaProposal)} == {"v1"}


def test_capacity_is_only_a_lower_bound_within_the_slo() -> None:
    seen = learn_capacity(None, 5.0, 50.0, 200.0)
    assert seen == Capacity(5.0, "proven")
    assert learn_capacity(seen, 3.0, 50.0, 200.0) == seen
    assert learn_capacity(seen, 8.0, 50.0, 200.0) == Capacity(8.0, "proven")


def test_a_breach_under_load_measures_the_knee() -> None:
    configured = Capacity(50.0, "configured")
    measured = learn_capacity(configured, 40.0, 400.0, 200.0)
    assert measured == Capacity(20.0, "measured")
    assert learn_capacity(configured, 10.0, 400.0, 200.0) == configured, "breach at low load"


def test_capacity_known_only_as_a_lower_bound_does_not_scale_up() -> None:
    config = make_config(app_doc(versions=("v1",), max_replicas=20))
    states: dict[str, Any] = {}
    for i, rate in enumerate([10.0, 10.0, 30.0, 60.0]):
        snap = snapshot(
            version(replicas=1, rate=rate, p95_ms=80.0),
            weights={"v1": 100},
            now=T0 + timedelta(seconds=5 * i),
        )
        decision = decide(snap, states, config)
        states = decision.states
        assert decision.plan.replicas_for("embed", "v1") == 1
