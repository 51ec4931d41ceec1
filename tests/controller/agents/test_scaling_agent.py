"""The scaling agent's decision for one version: holds, bounds, zero, alerts and start-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.agents.scaling import ScalingAgent
from controller.agents.state import to_iso
from controller.config import GovernorConfig
from controller.decide import decide
from controller.decisions import Alert, Proposal, ReplicaProposal
from controller.snapshot import Snapshot
from tests.controller.fleet import T0, app_doc, make_config, snapshot, version


def one_version(min_replicas: int = 1, max_replicas: int = 20, **scaling: Any) -> GovernorConfig:
    """One app with one version seeded at 50 req/s per replica; scaling knobs overridden."""
    knobs = {"capacity_rps_per_replica": 50.0, "downscale_delay_s": 60} | scaling
    return make_config(app_doc(versions=("v1",), min_replicas=min_replicas,
                               max_replicas=max_replicas, scaling=knobs))


def proposals(snap: Snapshot, config: GovernorConfig, state: dict[str, Any] | None = None
              ) -> list[Proposal]:
    """What the scaling agent proposes for `snap` alone."""
    out, _ = ScalingAgent().propose(snap, state or {}, config)
    return list(out)


def replica_proposal(out: list[Proposal]) -> ReplicaProposal:
    """The one replica proposal among `out`."""
    (p,) = [x for x in out if isinstance(x, ReplicaProposal)]
    return p


def alerts(out: list[Proposal]) -> list[str]:
    """The alert messages among `out`."""
    return [x.message for x in out if isinstance(x, Alert)]


def test_hold_when_the_request_rate_is_missing() -> None:
    snap = snapshot(version(replicas=4, rate=None, p95_ms=None), weights={"v1": 100})
    decision = decide(snap, {}, one_version())
    assert decision.plan.replicas_for("embed", "v1") == 4
    p = replica_proposal(list(decision.proposals))
    assert p.reason == "hold 4: request rate missing or stale"


def test_never_scale_down_when_p95_is_missing() -> None:
    config = one_version(downscale_delay_s=0)
    states: dict[str, Any] = {}
    for i in range(20):
        snap = snapshot(version(replicas=6, rate=10.0, p95_ms=None), weights={"v1": 100},
                        now=T0 + timedelta(seconds=5 * i))
        decision = decide(snap, states, config)
        states = decision.states
        assert decision.plan.replicas_for("embed", "v1") == 6
    assert "p95 missing: never scale down on missing data" in replica_proposal(
        list(decision.proposals)).reason


def test_scale_down_when_traffic_stops_even_though_no_latency_was_recorded() -> None:
    config = one_version(downscale_delay_s=0, capacity_rps_per_replica=10.0)
    states: dict[str, Any] = {}
    counts = []
    for i in range(20):
        snap = snapshot(version(replicas=3, rate=0.0, p95_ms=None), weights={"v1": 100},
                        now=T0 + timedelta(seconds=5 * i))
        decision = decide(snap, states, config)
        states = decision.states
        counts.append(decision.plan.replicas_for("embed", "v1"))
    assert counts[-1] == 2, counts  # one step down from the observed 3 (max_downscale_step)


def test_never_scale_down_while_requests_are_in_flight_and_none_was_answered() -> None:
    config = one_version(downscale_delay_s=0, capacity_rps_per_replica=10.0)
    stalled = snapshot(version(replicas=4, rate=0.0, p95_ms=None, queue_length=500.0),
                       weights={"v1": 100})
    assert replica_proposal(proposals(stalled, config)).replicas >= 4


def test_no_proposal_when_the_replica_count_is_unobserved() -> None:
    snap = snapshot(version(replicas=None, rate=50.0), weights={"v1": 100})
    assert proposals(snap, one_version()) == []


def test_no_proposal_for_a_version_the_snapshot_lacks() -> None:
    snap = snapshot(version(name="v9", replicas=2), weights={"v9": 100})
    assert proposals(snap, one_version()) == []


def test_a_version_without_traffic_share_is_left_to_the_rollout_agent() -> None:
    config = make_config(app_doc(scaling={"capacity_rps_per_replica": 50}))
    snap = snapshot(
        version(name="v1", replicas=2, rate=60.0),
        version(name="v2", replicas=3, rate=0.0),
        weights={"v1": 100, "v2": 0},
    )
    out, state = ScalingAgent().propose(snap, {}, config)
    assert {p.version for p in out if isinstance(p, ReplicaProposal)} == {"v1"}
    assert "pending" not in state["versions"]["embed/v2"]


def test_unknown_weights_leave_an_idle_version_alone_and_scale_a_busy_one() -> None:
    config = make_config(app_doc(scaling={"capacity_rps_per_replica": 50}))
    snap = snapshot(version(name="v1", replicas=2, rate=60.0),
                    version(name="v2", replicas=3, rate=0.0), weights=None)
    out = proposals(snap, config)
    assert {p.version for p in out if isinstance(p, ReplicaProposal)} == {"v1"}


def test_hold_while_capacity_is_unknown() -> None:
    config = make_config(app_doc(versions=("v1",), max_replicas=20))
    snap = snapshot(version(replicas=2, rate=60.0, p95_ms=100.0), weights={"v1": 100})
    p = replica_proposal(proposals(snap, config))
    assert p.replicas == 2
    assert p.reason == ("hold 2: per-replica capacity unknown (run governor calibrate, or set "
                        "scaling.capacity_rps_per_replica)")


def test_a_capacity_known_only_as_a_lower_bound_waits_for_a_breach_to_scale_up() -> None:
    config = make_config(app_doc(versions=("v1",), max_replicas=20))
    states: dict[str, Any] = {}
    # 10 req/s served well within the SLO proves 10 per replica; 30 and 60 req/s near the
    # SLO prove nothing more, and a lower bound does not scale up.
    observed = [(10.0, 80.0)] * 7 + [(30.0, 180.0), (60.0, 180.0)]
    for i, (rate, p95_ms) in enumerate(observed):
        snap = snapshot(version(replicas=1, rate=rate, p95_ms=p95_ms, request_count=rate * 30),
                        weights={"v1": 100}, now=T0 + timedelta(seconds=5 * i))
        decision = decide(snap, states, config)
        states = decision.states
        assert decision.plan.replicas_for("embed", "v1") == 1
    assert states["scaling"]["versions"]["embed/v1"]["capacity_kind"] == "proven"
    assert "capacity known only as a lower bound: scale up on a breach only" in (
        replica_proposal(list(decision.proposals)).reason)
    # A breach at 60 req/s: 60 / 10 proven = 6 replicas, the first 4 of them at once.
    snap = snapshot(version(replicas=1, rate=60.0, p95_ms=400.0, request_count=1800),
                    weights={"v1": 100}, now=T0 + timedelta(seconds=5 * len(observed)))
    decision = decide(snap, states, config)
    assert decision.plan.replicas_for("embed", "v1") == 5
    assert "step limited to 5" in replica_proposal(list(decision.proposals)).reason


def test_scale_to_zero_only_after_the_idle_period() -> None:
    config = one_version(min_replicas=0, scale_to_zero=True, idle_before_zero_s=60)
    state: dict[str, Any] = {}
    for i in range(13):
        snap = snapshot(version(replicas=2, rate=0.0, p95_ms=None), weights={"v1": 100},
                        now=T0 + timedelta(seconds=5 * i))
        out, state = ScalingAgent().propose(snap, state, config)
        p = replica_proposal(list(out))
        if i < 12:
            assert p.replicas >= 1 and f"idle for {5 * i}s of 60s before zero" in p.reason
    assert p.replicas == 0
    assert p.reason == "idle (no requests, empty queue) for 60s: scale to zero"


def test_no_scale_to_zero_unless_the_config_allows_it() -> None:
    config = one_version(min_replicas=0, downscale_delay_s=0)
    state: dict[str, Any] = {}
    for i in range(130):
        snap = snapshot(version(replicas=1, rate=0.0, p95_ms=None), weights={"v1": 100},
                        now=T0 + timedelta(seconds=5 * i))
        out, state = ScalingAgent().propose(snap, state, config)
        assert replica_proposal(list(out)).replicas == 1


def test_immediate_scale_up_from_zero_when_requests_arrive() -> None:
    config = one_version(min_replicas=0, capacity_rps_per_replica=10, scale_to_zero=True,
                         upscale_delay_s=300)
    queued = snapshot(version(replicas=0, rate=0.0, queue_length=3.0), weights={"v1": 100})
    p = replica_proposal(proposals(queued, config))
    assert p.replicas == 1
    assert p.reason == ("requests arrived at zero replicas (rate 0.0/s, queue 3): start 1 now")
    # 25 req/s at 10 per replica planned at 70%: ceil(3.57) = 4, within the step of 4.
    busy = snapshot(version(replicas=0, rate=25.0), weights={"v1": 100})
    assert decide(busy, {}, config).plan.replicas_for("embed", "v1") == 4
    flood = snapshot(version(replicas=0, rate=250.0), weights={"v1": 100})
    assert decide(flood, {}, config).plan.replicas_for("embed", "v1") == 4, "max_upscale_step"


def test_from_zero_without_a_capacity_one_replica_starts() -> None:
    config = make_config(app_doc(versions=("v1",), min_replicas=0))
    busy = snapshot(version(replicas=0, rate=25.0), weights={"v1": 100})
    assert replica_proposal(proposals(busy, config)).replicas == 1


def test_a_breach_at_max_replicas_raises_an_alert() -> None:
    config = one_version(max_replicas=4)
    # 200 req/s on 4 replicas at 50 each: 1.0 unit/s per replica, p95 twice the SLO.
    snap = snapshot(version(replicas=4, rate=200.0, p95_ms=400.0), weights={"v1": 100})
    out = proposals(snap, config)
    assert alerts(out) == ["SLO at risk: p95 400 ms > SLO 200 ms at max_replicas 4"]
    assert replica_proposal(out).replicas == 4


def test_a_breach_at_low_load_raises_an_alert_that_replicas_may_not_help() -> None:
    snap = snapshot(version(replicas=4, rate=40.0, p95_ms=400.0), weights={"v1": 100})
    out = proposals(snap, one_version())
    assert alerts(out) == [
        "p95 400 ms > SLO 200 ms at low load (0.20 units/s per replica, capacity ~1.00): "
        "more replicas may not help"
    ]
    (alert,) = [x for x in out if isinstance(x, Alert)]
    assert (alert.app, alert.agent, alert.version) == ("embed", "scaling", "v1")


def test_no_alert_without_a_breach() -> None:
    snap = snapshot(version(replicas=4, rate=40.0, p95_ms=150.0), weights={"v1": 100})
    assert alerts(proposals(snap, one_version(max_replicas=4))) == []


def rising_state(trend_per_s: float) -> dict[str, Any]:
    """A version whose demand was 2.0 units/s at T0, rising by `trend_per_s`."""
    kept = {"level": 2.0, "trend_per_s": trend_per_s, "observed_at": to_iso(T0)}
    return {"versions": {"embed/v1": kept}}


@pytest.mark.parametrize(("startup_s", "replicas"), [(5.0, 3), (300.0, 8)])
def test_rising_demand_is_planned_one_startup_time_ahead(startup_s: float, replicas: int) -> None:
    # 102.5 req/s is 2.05 units/s: on the trend (0.01/s) the forecast stays on it, and
    # reads 2.05 + 0.01 x start-up: 2.10 -> need 3.0, or 5.05 -> need 7.2.
    config = one_version(max_upscale_step=20)
    snap = snapshot(version(replicas=3, rate=102.5, p95_ms=100.0, startup_s=startup_s),
                    weights={"v1": 100}, now=T0 + timedelta(seconds=5))
    p = replica_proposal(proposals(snap, config, rising_state(0.01)))
    assert p.replicas == replicas, p.reason
    assert f"by trend at +{startup_s:.0f}s start-up" in p.reason


def test_the_default_startup_time_is_used_when_none_is_measured() -> None:
    snap = snapshot(version(replicas=3, rate=102.5, p95_ms=100.0), weights={"v1": 100},
                    now=T0 + timedelta(seconds=5))
    fast = replica_proposal(
        proposals(snap, one_version(default_startup_s=5, max_upscale_step=20), rising_state(0.01)))
    slow = replica_proposal(
        proposals(snap, one_version(default_startup_s=300, max_upscale_step=20),
                  rising_state(0.01)))
    assert (fast.replicas, slow.replicas) == (3, 8)


def test_a_breach_with_a_backlog_scales_up_at_once_despite_the_upscale_delay() -> None:
    config = one_version(upscale_delay_s=120, max_upscale_step=20)
    # 100 req/s (2 units/s) on 2 replicas with 3000 requests (60 units) waiting: the
    # demand needs 2.86 replicas and the backlog 60 / 30 s = 2 more.
    snap = snapshot(version(replicas=2, rate=100.0, p95_ms=2000.0, queue_length=3000.0),
                    weights={"v1": 100})
    p = replica_proposal(proposals(snap, config))
    assert p.replicas == 5
    assert "p95 2000 ms > SLO 200 ms: 60.0 units of work in flight, cleared within 30s -> 5" in (
        p.reason)


def test_an_upscale_without_a_breach_waits_for_its_delay() -> None:
    config = one_version(upscale_delay_s=20)
    state: dict[str, Any] = {}
    counts = []
    for i in range(5):
        snap = snapshot(version(replicas=2, rate=100.0, p95_ms=150.0), weights={"v1": 100},
                        now=T0 + timedelta(seconds=5 * i))
        out, state = ScalingAgent().propose(snap, state, config)
        p = replica_proposal(list(out))
        counts.append(p.replicas)
        if i == 1:
            assert "upscale to 3 held: recommended for 5s of the 20s delay" in p.reason
    assert counts == [2, 2, 2, 2, 3]
    assert "upscale recommended for 20s (delay 20s)" in p.reason
