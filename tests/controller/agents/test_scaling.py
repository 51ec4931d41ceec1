"""The scaling agent, alone and in a closed loop over a queueing-like latency model."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from controller.agents.scaling import (
    Capacity,
    ScalingAgent,
    anchored,
    learn_capacity,
    relaxed,
    steering_signal,
)
from controller.config import GovernorConfig
from controller.decide import decide
from controller.decisions import ReplicaProposal
from controller.snapshot import Snapshot, VersionSnapshot
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
    # The prior the world bears out: its p95 reaches the SLO at 40 req/s per replica. A
    # prior the fleet disproves is probed again as the estimate relaxes back to it (see
    # test_a_disproved_prior_is_probed_again_at_most_once_per_half_life).
    loop = Loop(one_version(capacity_rps_per_replica=40.0), LoadWorld(lambda t: noise[int(t)]))
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


def ticks(
    config: GovernorConfig, *observed: VersionSnapshot, every_s: float = 5.0
) -> list[tuple[ReplicaProposal, dict[str, Any]]]:
    """The scaling agent fed one snapshot per tick: its proposal and state after each."""
    state: dict[str, Any] = {}
    out = []
    for i, v in enumerate(observed):
        snap = snapshot(v, weights={"v1": 100}, now=T0 + timedelta(seconds=every_s * i))
        proposals, state = ScalingAgent().propose(snap, state, config)
        (proposal,) = [p for p in proposals if isinstance(p, ReplicaProposal)]
        out.append((proposal, state["versions"]["embed/v1"]))
    return out


@pytest.mark.parametrize(
    ("rate", "p95_ms"),
    [(36.0, 900.0), (30.0, 100.0)],
    ids=["a breach cuts nothing", "an overload within the SLO proves nothing"],
)
def test_capacity_is_not_learned_while_replicas_start(rate: float, p95_ms: float) -> None:
    config = one_version(capacity_rps_per_replica=10.0)
    # Two running replicas carry 15-18 req/s each while two more start.
    starting = version(
        replicas=4,
        rate=rate,
        p95_ms=p95_ms,
        starting_replicas=2,
        running_replicas=2,
        target_replicas=4,
    )
    ((proposal, state),) = ticks(config, starting)
    assert "capacity_rps" not in state, "the configured 10 req/s per replica stands"
    assert "configured capacity 10.0" in proposal.reason
    assert "not learned: 2 replica(s) starting" in proposal.reason


def test_the_backlog_after_a_breach_teaches_nothing_for_a_window() -> None:
    config = one_version(capacity_rps_per_replica=10.0)
    breach = version(replicas=4, rate=40.0, p95_ms=260.0)
    # The backlog drains at the replicas' full speed with latency back under the SLO.
    draining = version(replicas=4, rate=56.0, p95_ms=120.0)
    history = ticks(config, breach, *[draining] * 7)
    cut = history[0][1]["capacity_rps"]
    assert cut < 10.0, "a breach on a settled fleet still teaches"
    for proposal, state in history[1:6]:
        assert state["capacity_rps"] == pytest.approx(cut, abs=0.05), "only relaxed"
        assert "since the fleet last changed or breached (window 30s)" in proposal.reason
    assert history[-1][1]["capacity_rps"] == 14.0, "a settled fleet proves its load again"


def test_replicas_that_just_left_make_the_next_window_teach_nothing() -> None:
    config = one_version(capacity_rps_per_replica=10.0)
    # 5 -> 4 running: the removed replica still drains requests counted in the rate.
    before = version(replicas=5, rate=48.0, p95_ms=100.0)
    after = version(replicas=4, rate=48.0, p95_ms=100.0)
    history = ticks(config, before, after)
    assert "capacity_rps" not in history[-1][1]
    assert "not learned: running replicas 5 -> 4" in history[-1][0].reason


def test_a_measured_capacity_relaxes_back_to_the_prior() -> None:
    measured = Capacity(4.0, "measured")
    assert relaxed(measured, 8.0, 600.0, 600.0) == Capacity(6.0, "measured")
    assert relaxed(Capacity(12.0, "measured"), 8.0, 1200.0, 600.0) == Capacity(9.0, "measured")
    assert relaxed(measured, 8.0, 6000.0, 600.0) == Capacity(8.0, "configured")
    assert relaxed(Capacity(4.0, "proven"), None, 6000.0, 600.0) == Capacity(4.0, "proven")


def test_a_remembered_cut_is_planned_relaxed_towards_the_prior() -> None:
    config = one_version(capacity_rps_per_replica=10.0, capacity_half_life_s=600)
    cut = {"capacity_rps": 5.0, "capacity_kind": "measured", "capacity_at": T0.isoformat()}
    states = {"scaling": {"versions": {"embed/v1": cut}}}
    snap = snapshot(
        version(replicas=4, rate=20.0, p95_ms=50.0),
        weights={"v1": 100},
        now=T0 + timedelta(seconds=600),
    )
    decision = decide(snap, states, config)
    (proposal,) = [p for p in decision.proposals if isinstance(p, ReplicaProposal)]
    assert "measured capacity 7.5 req/s per replica (configured 10.0)" in proposal.reason
    assert decision.states["scaling"]["versions"]["embed/v1"]["capacity_rps"] == 7.5


def test_a_measured_capacity_stays_within_half_and_one_and_a_half_of_the_prior() -> None:
    assert anchored(Capacity(1.0, "measured"), 8.0) == Capacity(4.0, "measured")
    assert anchored(Capacity(30.0, "measured"), 8.0) == Capacity(12.0, "measured")
    assert anchored(Capacity(8.05, "measured"), 8.0) == Capacity(8.0, "configured")
    assert anchored(Capacity(30.0, "measured"), None) == Capacity(30.0, "measured")
    config = one_version(capacity_rps_per_replica=10.0)
    # A breach far beyond the SLO at 6 req/s per replica would cut to 3.
    history = ticks(config, version(replicas=2, rate=12.0, p95_ms=2000.0))
    assert history[0][1]["capacity_rps"] == 5.0


def test_a_disproved_prior_is_probed_again_at_most_once_per_half_life() -> None:
    rng = random.Random(7)
    noise = {int(t): 100 * (1 + rng.uniform(-0.15, 0.15)) for t in range(0, 4000, 5)}
    # Configured 50 req/s per replica; the world's p95 reaches the SLO at 40.
    config = one_version(capacity_half_life_s=1800)
    loop = Loop(config, LoadWorld(lambda t: noise[int(t)]))
    loop.run(60)
    counts = [loop.tick().plan.replicas_for("embed", "v1") for _ in range(600)]
    downs = sum(
        1 for a, b in itertools.pairwise(counts) if a is not None and b is not None and b < a
    )
    assert downs <= 3000 // 1800 + 1, counts
    assert counts[-1] == 4, "the probe re-learns the knee and the fleet returns"


def generation_app(**scaling: Any) -> GovernorConfig:
    """One generation app: end-to-end p95 60 s, TTFT p95 1 s, TPOT p95 50 ms."""
    knobs = {"capacity_rps_per_replica": 8.0, "downscale_delay_s": 0} | scaling
    slo = {"latency_p95_ms": 60000, "ttft_p95_ms": 1000, "tpot_p95_ms": 50}
    return make_config(app_doc(versions=("v1",), max_replicas=20, scaling=knobs) | {"slo": slo})


def test_generation_steers_by_time_per_output_token_not_answer_length() -> None:
    config = generation_app()
    rising = [
        version(replicas=4, rate=r, p95_ms=9000.0, ttft_ms=300.0, tpot_ms=t)
        for r, t in ((24.0, 30.0), (25.0, 62.0))
    ]
    proposal, state = ticks(config, *rising)[-1]
    assert proposal.replicas > 4
    assert "TPOT p95 62.0 ms > SLO 50.0 ms and demand rising: scale up now" in proposal.reason
    assert state["capacity_rps"] < 8.0, "the TPOT breach teaches the knee"


def test_long_answers_are_no_breach_while_tokens_come_on_time() -> None:
    config = generation_app()
    long_answers = version(replicas=6, rate=12.0, p95_ms=70000.0, ttft_ms=200.0, tpot_ms=20.0)
    proposal, state = ticks(config, *[long_answers] * 3)[-1]
    assert proposal.replicas < 6, "light per-token load scales down"
    assert "> SLO" not in proposal.reason
    assert "capacity_rps" not in state


def test_the_end_to_end_p95_steers_when_per_token_latency_is_not_observed() -> None:
    slo = generation_app().applications[0].slo
    assert str(steering_signal(slo, version(p95_ms=70000.0))) == "p95 70000 ms"
    both = version(p95_ms=9000.0, ttft_ms=800.0, tpot_ms=20.0)
    assert str(steering_signal(slo, both)) == "TTFT p95 800 ms", "the one nearest its SLO"
    assert steering_signal(slo, version(p95_ms=None)) is None
