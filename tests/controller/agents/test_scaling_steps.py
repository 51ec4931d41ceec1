"""Each named step of the scaling decision alone, with answers computed by hand.

The seed throughout is 10 req/s per replica, so a request costs 0.1 work units and a
replica does 1.0 unit/s within the SLO (200 ms p95).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.agents.scaling.capacity import Capacity
from controller.agents.scaling.demand import Forecast
from controller.agents.scaling.signal import steering_signal
from controller.agents.scaling.steps import (
    Need,
    Outlook,
    Tick,
    backlog_moving,
    breach_feedback,
    burst_headroom,
    demand_need,
    in_flight_work,
    learning_held,
    not_learned,
    outlook,
    queued_beyond,
    track_capacity,
    track_in_flight,
)
from controller.agents.scaling.work import Demand, observed_demand, work_model
from controller.agents.state import VersionScalingState, to_iso
from controller.config import SLO, ScalingConfig
from controller.snapshot import VersionSnapshot
from tests.controller.fleet import T0, version

SLO_200 = SLO(latency_p95_ms=200)
SEED = Capacity(1.0, "calibrated")
LONG_AGO = to_iso(T0 - timedelta(hours=1))


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def tick(
    vs: VersionSnapshot | None = None,
    *,
    now: datetime = T0,
    growth: float = 0.0,
    steady: bool = True,
    **scaling: Any,
) -> Tick:
    """One observation under a 10 req/s-per-replica seed (scaling knobs overridden)."""
    vs = vs if vs is not None else version(replicas=4, rate=40.0, p95_ms=100.0)
    sc = ScalingConfig(**({"capacity_rps_per_replica": 10.0} | scaling))
    model, seeded = work_model(sc)
    return Tick(vs=vs, sc=sc, now=now, window_s=30.0, signal=steering_signal(SLO_200, vs),
                demand=observed_demand(vs, model), seeded=seeded, backlog_growth=growth,
                steady=steady)


def settled() -> VersionScalingState:
    """A version watched for an hour with four running replicas."""
    return {"watched_since": LONG_AGO, "running_seen": 4}


# learning_held


def test_nothing_is_learned_in_the_first_window() -> None:
    st: VersionScalingState = {}
    assert learning_held(tick(), st, {}) == "observed for 0s of a 30s window"
    assert st["watched_since"] == to_iso(T0)
    assert learning_held(tick(now=at(30)), st, {}) is None


def test_learning_is_held_for_a_window_after_running_replicas_join() -> None:
    prev: VersionScalingState = {"watched_since": LONG_AGO, "running_seen": 3}
    st = prev.copy()
    joined = tick(version(replicas=4, rate=40.0, p95_ms=400.0), now=at(60))
    assert learning_held(joined, st, prev) == (
        "0s since the running replicas last changed (window 30s)"
    )
    assert st["changed_at"] == to_iso(at(60)) and st["changed_up"] is True
    steady: VersionScalingState = {**st, "running_seen": 4}
    later = tick(version(replicas=4, rate=40.0, p95_ms=400.0), now=at(80))
    assert learning_held(later, steady.copy(), steady) == (
        "20s since the running replicas last changed (window 30s)"
    ), "a breach right after replicas joined teaches nothing"
    assert learning_held(tick(now=at(90)), steady.copy(), steady) is None


def test_a_breach_after_replicas_left_still_teaches() -> None:
    prev: VersionScalingState = {"watched_since": LONG_AGO, "running_seen": 5}
    breach = tick(version(replicas=4, rate=40.0, p95_ms=400.0), now=at(60))
    st = prev.copy()
    assert learning_held(breach, st, prev) is None
    assert st["changed_up"] is False
    calm = tick(version(replicas=4, rate=40.0, p95_ms=100.0), now=at(60))
    assert learning_held(calm, prev.copy(), prev) == (
        "0s since the running replicas last changed (window 30s)"
    ), "a window with fewer requests per replica than it shows proves nothing"


# not_learned


def breach(**fields: Any) -> VersionSnapshot:
    """Four replicas at 40 req/s (1.0 unit/s each) with p95 400 ms over 30 s."""
    base: dict[str, Any] = {"replicas": 4, "rate": 40.0, "p95_ms": 400.0, "request_count": 1200}
    return version(**(base | fields))


def test_a_held_tick_passes_its_reason_on() -> None:
    assert not_learned(tick(breach()), settled(), "held", None) == "held"


def test_no_learning_from_a_breach_with_fewer_than_20_requests() -> None:
    few = tick(breach(request_count=19))
    assert not_learned(few, settled(), None, None) == "19 requests, too few for a p95"
    assert not_learned(tick(breach(request_count=20)), settled(), None, None) is None


def test_no_learning_from_a_breach_during_a_burst() -> None:
    burst = tick(breach(), steady=False)
    assert not_learned(burst, settled(), None, None) == "demand far from its smoothed level, a burst"


def test_no_learning_from_a_breach_while_the_backlog_moves() -> None:
    # 0.5 req/s over a 30 s window is 15 requests, more than one replica's 10.
    moving = tick(breach(), growth=0.5)
    assert backlog_moving(moving, 10.0)
    assert not_learned(moving, settled(), None, 10.0) == "backlog moving +0.50 req/s"
    # 0.3 req/s is 9 requests: jitter.
    assert not backlog_moving(tick(breach(), growth=0.3), 10.0)
    assert not_learned(tick(breach(), growth=0.3), settled(), None, 10.0) is None
    assert backlog_moving(tick(breach(), growth=-0.05), None), "1.5 requests, more than 1"


def test_no_learning_within_the_latency_reach_of_the_last_overload() -> None:
    # Reach: the 30 s window plus the longest latency answered in it (the 6 s p95).
    slow = breach(p95_ms=6000.0)
    recent: VersionScalingState = {**settled(), "queued_at": to_iso(at(-35))}
    assert not_learned(tick(slow), recent, None, 10.0) == (
        "requests queued beyond what the replicas hold 35s ago"
    )
    behind: VersionScalingState = {**settled(), "queued_at": to_iso(at(-37))}
    assert not_learned(tick(slow), behind, None, 10.0) is None


def test_a_backlog_beyond_what_replicas_hold_marks_an_overload_now() -> None:
    st = settled()
    queued = tick(breach(queue_length=50.0))
    assert queued_beyond(queued.vs, 10.0), "50 waiting, 4 replicas hold 40"
    assert not_learned(queued, st, None, 10.0) == (
        "requests queued beyond what the replicas hold 0s ago"
    )
    assert st["queued_at"] == to_iso(T0)


def test_queued_beyond_needs_an_in_flight_count_and_running_replicas() -> None:
    assert not queued_beyond(breach(queue_length=40.0), 10.0)
    assert not queued_beyond(breach(queue_length=50.0), None)
    assert not queued_beyond(breach(queue_length=50.0, running_replicas=0), 10.0)


def test_no_learning_from_a_calm_window_while_a_breach_drains() -> None:
    calm = tick(version(replicas=4, rate=56.0, p95_ms=80.0), now=at(10))
    drained: VersionScalingState = {**settled(), "breached_at": to_iso(T0)}
    assert not_learned(calm, drained, None, None) == "10s since a breach drained"
    later = tick(version(replicas=4, rate=56.0, p95_ms=80.0), now=at(30))
    assert not_learned(later, drained, None, None) is None


# track_capacity


def test_a_breach_on_a_settled_fleet_cuts_the_capacity() -> None:
    st = settled()
    # 32 req/s on 4 replicas: 0.8 units/s each at p95 1.25 x SLO -> half way to 0.64.
    observed = tick(breach(rate=32.0, p95_ms=250.0))
    capacity, note = track_capacity(observed, st, None, None)
    assert capacity is not None
    assert (capacity.per_replica, capacity.kind) == (pytest.approx(0.82), "measured")
    assert note == "; p95 250 ms at 0.80 units/s per replica"
    assert st["capacity"] == pytest.approx(0.82) and st["capacity_kind"] == "measured"
    assert st["capacity_at"] == to_iso(T0) and st["breached_at"] == to_iso(T0)


def test_an_observation_not_learned_says_why_and_keeps_the_seed() -> None:
    st = settled()
    capacity, note = track_capacity(tick(breach(request_count=5)), st, None, None)
    assert capacity == SEED
    assert note == (
        "; p95 400 ms at 1.00 units/s per replica (not learned: 5 requests, too few for a p95)"
    )
    assert "capacity" not in st and st["breached_at"] == to_iso(T0)


def test_a_remembered_capacity_is_planned_relaxed_towards_the_seed() -> None:
    st: VersionScalingState = {**settled(), "capacity": 0.5, "capacity_kind": "measured",
                               "capacity_at": to_iso(T0)}
    later = tick(version(replicas=4, rate=20.0, p95_ms=150.0), now=at(600),
                 capacity_half_life_s=600)
    capacity, _ = track_capacity(later, st, None, None)
    assert capacity is not None
    assert (capacity.per_replica, capacity.kind) == (pytest.approx(0.75), "measured")
    assert st["capacity"] == pytest.approx(0.75) and st["capacity_at"] == to_iso(at(600))


def test_without_a_seed_capacity_is_unknown_until_a_load_is_served() -> None:
    unseeded = tick(version(replicas=2, rate=6.0, p95_ms=150.0), capacity_rps_per_replica=None)
    assert track_capacity(unseeded, settled(), None, None)[0] is None
    light = tick(version(replicas=2, rate=6.0, p95_ms=50.0), capacity_rps_per_replica=None)
    st = settled()
    assert track_capacity(light, st, None, None)[0] == Capacity(3.0, "proven")
    assert st["capacity_kind"] == "proven"


# track_in_flight


def test_in_flight_per_replica_is_learned_near_the_knee() -> None:
    # p95 160 ms is 0.8 of the SLO: 12 in flight over 4 replicas is 3 each.
    near = tick(version(replicas=4, rate=40.0, p95_ms=160.0, queue_length=12.0))
    st: VersionScalingState = {}
    assert track_in_flight(near, st, None) == 3.0
    assert st["in_flight"] == 3.0
    seeded = tick(near.vs, in_flight_per_replica=5.0)
    assert track_in_flight(seeded, {}, None) == 4.0, "half way from the calibrated 5"


@pytest.mark.parametrize(
    ("p95_ms", "held", "queue"),
    [(400.0, None, 12.0), (100.0, None, 12.0), (160.0, "held", 12.0), (160.0, None, 0.0)],
    ids=["breach", "far from the knee", "held", "empty"],
)
def test_in_flight_is_not_learned_off_the_knee(p95_ms: float, held: str | None,
                                               queue: float) -> None:
    observed = tick(version(replicas=4, rate=40.0, p95_ms=p95_ms, queue_length=queue),
                    in_flight_per_replica=5.0)
    st: VersionScalingState = {}
    assert track_in_flight(observed, st, held) == 5.0
    assert "in_flight" not in st


# outlook, demand_need, burst_headroom


def test_the_outlook_caps_a_steps_trend_by_history() -> None:
    assert Outlook(now=2.0, trend=10.0, peak=3.0).expected == 3.0
    assert Outlook(now=2.0, trend=10.0, peak=None).expected == 10.0, "no history, the trend"
    assert Outlook(now=2.0, trend=2.5, peak=3.0).expected == 2.5
    assert Outlook(now=5.0, trend=3.0, peak=8.0).expected == 5.0, "never below now"
    assert Outlook(now=5.0, trend=9.0, peak=1.0).expected == 5.0


def test_the_outlook_reads_the_trend_at_startup_and_the_history_of_moments_like_now() -> None:
    history = [2.0, 3.0] * 4 + [2.0]
    seen = outlook(Demand(2.0, 20.0, "requests"), Forecast(2.0, 0.1), history, 30, 30, 0.99)
    assert (seen.now, seen.trend, seen.peak) == (2.0, pytest.approx(5.0), 3.0)
    assert seen.expected == 3.0


def test_demand_needs_replicas_at_the_planned_load() -> None:
    demand = Demand(3.0, 30.0, "requests")
    need = demand_need(demand, Outlook(3.0, 3.0, None), 30, SEED, ScalingConfig())
    assert need.raw == pytest.approx(3.0 / 0.7)
    assert need.reasons == [
        "demand 3.00 units/s (30.00 req/s, priced by requests) now, 3.00 by trend at +30s "
        "start-up, 3.00 expected; calibrated capacity 1 units/s per replica, planned at 0.7 "
        "-> need 4.29"
    ]
    rising = demand_need(demand, Outlook(3.0, 4.2, None), 30, SEED, ScalingConfig())
    assert rising.raw == pytest.approx(6.0)
    proven = demand_need(demand, Outlook(3.0, 3.0, None), 30, Capacity(1.5, "proven"),
                         ScalingConfig())
    assert proven.raw == pytest.approx(2.0), "a lower bound is planned in full"


def test_head_room_plans_the_historys_peak_at_full_capacity() -> None:
    need = Need(1.0 / 0.7, ["demand"])
    seen = Outlook(now=1.0, trend=1.0, peak=3.0)
    roomy = burst_headroom(need, seen, 30, 0.99, Capacity(1.5, "measured"), 60)
    assert roomy.raw == pytest.approx(2.0), "3.0 at 1.5 per replica, not at 70% of it"
    assert roomy.reasons == ["demand", (
        "head-room: 99% of the moments with demand <= 1.00 units/s in the last 60 min saw at "
        "most 3.00 within 30s start-up -> need 2.00")]


@pytest.mark.parametrize(
    "seen",
    [Outlook(1.0, 1.0, None), Outlook(1.0, 4.0, 3.0), Outlook(1.0, 1.0, 1.2)],
    ids=["no history", "peak below the expected demand", "peak within the planned need"],
)
def test_head_room_adds_nothing_the_need_already_covers(seen: Outlook) -> None:
    need = Need(2.0, ["demand"])
    assert burst_headroom(need, seen, 30, 0.99, SEED, 60) is need


# breach_feedback


def feedback_tick(queue: float = 0.0, p95_ms: float = 400.0, **fields: Any) -> Tick:
    """Four replicas at 40 req/s (0.1 unit a request) with `queue` requests in flight."""
    return tick(version(replicas=4, rate=40.0, p95_ms=p95_ms, queue_length=queue, **fields))


def test_breach_feedback_starts_replicas_for_the_work_in_flight_at_once() -> None:
    # 600 requests of 0.1 unit: 60 units; cleared within a 30 s start-up at 1 unit/s per
    # replica takes 2 more replicas on top of the 40 req/s need of 5.71.
    t = feedback_tick(queue=600.0)
    assert in_flight_work(t) == pytest.approx(60.0)
    fb = breach_feedback(t, Need(4.0 / 0.7), 4, SEED, 30, rising=False)
    assert (fb.desired, fb.urgent) == (8, True)
    assert fb.reasons == (
        "p95 400 ms > SLO 200 ms: 60.0 units of work in flight, cleared within 30s -> 8",
    )
    assert fb.desired * 1.0 * 30 >= 60.0


def test_a_longer_startup_needs_fewer_replicas_to_clear_the_same_work() -> None:
    t = feedback_tick(queue=600.0)
    assert breach_feedback(t, Need(4.0 / 0.7), 4, SEED, 120, rising=False).desired == 7


def test_a_settled_fleet_in_breach_under_rising_demand_grows_by_one() -> None:
    fb = breach_feedback(feedback_tick(), Need(3.0), 4, SEED, 30, rising=True)
    assert (fb.desired, fb.urgent) == (5, True)
    assert fb.reasons == ("p95 400 ms > SLO 200 ms and demand rising: one more now",)


def test_a_breach_while_replicas_start_waits_for_them_and_never_scales_down() -> None:
    starting = feedback_tick(running_replicas=3, starting_replicas=1)
    fb = breach_feedback(starting, Need(3.0), 4, SEED, 30, rising=True)
    assert (fb.desired, fb.urgent) == (4, False)
    assert fb.reasons == ("p95 400 ms > SLO 200 ms: no scale-down",)
    calm_demand = breach_feedback(feedback_tick(), Need(2.0), 4, SEED, 30, rising=False)
    assert calm_demand.desired == 4


@pytest.mark.parametrize(
    ("current", "raw", "desired"),
    [(4, 4.3, 4), (4, 4.5, 5), (10, 10.5, 10), (20, 18.5, 20), (6, 4.3, 5), (4, 2.0, 2)],
)
def test_without_a_breach_the_hysteresis_band_holds_small_changes(
    current: int, raw: float, desired: int
) -> None:
    fb = breach_feedback(feedback_tick(p95_ms=100.0), Need(raw), current, SEED, 30, rising=True)
    assert (fb.desired, fb.urgent) == (desired, False)
    held = desired == current
    assert fb.reasons == (("within the +/-10% hysteresis band",) if held else ())


def test_a_capacity_known_only_as_a_lower_bound_does_not_scale_up() -> None:
    proven = Capacity(1.0, "proven")
    calm = feedback_tick(p95_ms=100.0)
    fb = breach_feedback(calm, Need(6.0), 4, proven, 30, rising=True)
    assert (fb.desired, fb.urgent) == (4, False)
    assert fb.reasons == ("capacity known only as a lower bound: scale up on a breach only",)
    assert breach_feedback(calm, Need(2.0), 4, proven, 30, rising=False).desired == 2


def test_work_in_flight_needs_a_queue_and_an_answered_rate() -> None:
    assert in_flight_work(feedback_tick(queue=0.0)) == 0.0
    assert in_flight_work(tick(version(rate=0.0, queue_length=10.0))) == 0.0
    assert in_flight_work(tick(version(rate=None, queue_length=10.0))) == 0.0
