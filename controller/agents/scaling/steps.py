"""The named steps of one version's scaling decision; each is pure and says why.

Observation steps (`track_capacity`, `track_in_flight`) update what is known from this
tick and keep it in the version's state. Need steps turn demand into an unrounded
replica count (`demand_need`, `burst_headroom`), then into a whole one that answers a
breach (`breach_feedback`) and that does not move for noise or on missing data
(`damped`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.agents.guardrails import replicas_for, within_band
from controller.agents.scaling.capacity import (
    KNEE_BAND,
    LEARN_RATE,
    Capacity,
    learn_capacity,
    relaxed,
)
from controller.agents.scaling.demand import Forecast, startup_peak_quantile
from controller.agents.scaling.signal import LatencySignal
from controller.agents.scaling.work import Demand
from controller.agents.state import VersionScalingState, seconds_since, to_iso
from controller.config import ScalingConfig
from controller.snapshot import VersionSnapshot

P95_SAMPLE = 20
"""A p95 rests on at least one request beyond it only from 1 / (1 - 0.95) requests on."""


@dataclass
class Need:
    """The replicas a version needs so far, unrounded, and the reasons that shaped it."""

    raw: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tick:
    """One version's observation at one tick, as every step reads it."""

    vs: VersionSnapshot
    sc: ScalingConfig
    now: datetime
    window_s: float
    signal: LatencySignal | None
    demand: Demand | None
    seeded: bool
    """Whether a calibration or a capacity seed says what a replica does (1.0 unit/s)."""
    backlog_growth: float = 0.0
    """Requests per second the backlog grew by over the window."""
    steady: bool = True
    """Whether demand stayed near its smoothed level (a breach then measures capacity)."""
    shed_work: float = 0.0
    """Work units per second of the requests shed for overload: in `demand`, never served."""

    @property
    def seed(self) -> float | None:
        """The capacity a calibration or seed gives, in work units per second."""
        return 1.0 if self.seeded else None


def unsettled(vs: VersionSnapshot, prev: VersionScalingState) -> int:
    """How the serving fleet changed at this tick: +1 replicas joined, -1 left, 0 neither.

    Replicas that are still starting serve nothing, so the load per running replica is
    still well defined; a window in which the running count changed is not.
    """
    running, seen = vs.running_replicas, prev.get("running_seen")
    if running is None or seen is None or running == seen:
        return 0
    return 1 if running > seen else -1


def remembered_capacity(st: VersionScalingState, t: Tick) -> Capacity | None:
    """The capacity kept in state, relaxed towards the seed; else the seed."""
    seed = t.seed
    if "capacity" not in st or st.get("capacity_kind") == "calibrated":
        return Capacity(seed, "calibrated") if seed is not None else None
    kept = Capacity(st["capacity"], st.get("capacity_kind", "measured"))
    elapsed = seconds_since(st.get("capacity_at"), t.now) or 0.0
    return relaxed(kept, seed, elapsed, t.sc.capacity_half_life_s)


def learning_held(t: Tick, st: VersionScalingState, prev: VersionScalingState) -> str | None:
    """Why this tick may not teach capacity (a fleet in transition), or None.

    A window in which replicas left saw fewer requests per replica than the count now
    says, so a breach in it still teaches (conservatively): it is how a fleet learns
    that it released too much. Any other change holds learning for a window.
    """
    change = unsettled(t.vs, prev)
    if change:
        st["changed_at"], st["changed_up"] = to_iso(t.now), change > 0
    watched = seconds_since(st.setdefault("watched_since", to_iso(t.now)), t.now) or 0.0
    if watched < t.window_s:
        return f"observed for {watched:.0f}s of a {t.window_s:.0f}s window"
    quiet = seconds_since(st.get("changed_at"), t.now)
    if quiet is None or quiet >= t.window_s:
        return None
    if t.signal is not None and t.signal.breached and not st.get("changed_up", True):
        return None
    return f"{quiet:.0f}s since the running replicas last changed (window {t.window_s:.0f}s)"


def backlog_moving(t: Tick, in_flight: float | None) -> bool:
    """Whether the backlog changed by more than one replica holds over the window."""
    return abs(t.backlog_growth) * t.window_s > (in_flight or 1.0)


def queued_beyond(vs: VersionSnapshot, in_flight: float | None) -> bool:
    """Whether more requests wait than the running replicas hold within the SLO."""
    if in_flight is None or not vs.running_replicas or vs.queue_length is None:
        return False
    return vs.queue_length > vs.running_replicas * in_flight


def not_learned(
    t: Tick, st: VersionScalingState, held: str | None, in_flight: float | None
) -> str | None:
    """Why this observation may not move the capacity estimate, or None."""
    signal = t.signal
    if held is not None or signal is None:
        return held
    if queued_beyond(t.vs, in_flight):
        st["queued_at"] = to_iso(t.now)
    if not signal.breached:
        since_breach = seconds_since(st.get("breached_at"), t.now)
        if since_breach is not None and since_breach < t.window_s:
            # A backlog drains at full speed after a breach: it looks like spare capacity.
            return f"{since_breach:.0f}s since a breach drained"
        return None
    if (t.vs.request_count or 0) < P95_SAMPLE:
        return f"{t.vs.request_count or 0:.0f} requests, too few for a p95"
    if not t.steady:
        return "demand far from its smoothed level, a burst"
    if backlog_moving(t, in_flight):
        # The window averaged a load that was not steady: its breach is queueing behind
        # a rise (or its drain), not a measure of capacity.
        return f"backlog moving {t.backlog_growth:+.2f} req/s"
    since_queued = seconds_since(st.get("queued_at"), t.now)
    # Requests answered in this window arrived up to their latency before it: a breach is
    # about this window's load only once the last backlog is that far behind.
    reach = t.window_s + max(t.vs.latency_p95_ms or 0.0, signal.observed_ms) / 1000.0
    if since_queued is not None and since_queued < reach:
        return f"requests queued beyond what the replicas hold {since_queued:.0f}s ago"
    return None


def track_capacity(
    t: Tick, st: VersionScalingState, held: str | None, in_flight: float | None
) -> tuple[Capacity | None, str]:
    """The capacity to plan with after this tick's observation (kept in `st`), and a note.

    The load is what the replicas served: requests shed for overload never reached them,
    so the latency observed is that of the served load.
    """
    capacity = remembered_capacity(st, t)
    note = ""
    running, signal, demand = t.vs.running_replicas, t.signal, t.demand
    served = demand.work - t.shed_work if demand is not None else 0.0
    if served > 0 and running and signal is not None:
        load = served / running
        note = f"; {signal} at {load:.2f} units/s per replica"
        why = not_learned(t, st, held, in_flight)
        if why is None:
            capacity = learn_capacity(capacity, load, signal.pressure, t.seed)
        else:
            note += f" (not learned: {why})"
    if signal is not None and signal.breached:
        st["breached_at"] = to_iso(t.now)
    if capacity is None or capacity.kind == "calibrated":
        for key in ("capacity", "capacity_kind", "capacity_at"):
            st.pop(key, None)  # type: ignore[misc]
    else:
        st["capacity"], st["capacity_kind"] = capacity.per_replica, capacity.kind
        st["capacity_at"] = to_iso(t.now)
    return capacity, note


def track_in_flight(t: Tick, st: VersionScalingState, held: str | None) -> float | None:
    """Requests one replica holds within the SLO: seeded by calibration, learned near the knee.

    Near the SLO without a breach, the in-flight count per running replica is what a
    replica holds at its limit.
    """
    known = st.get("in_flight", t.sc.in_flight_per_replica)
    vs, signal = t.vs, t.signal
    if held is not None or signal is None or not vs.running_replicas or vs.queue_length is None:
        return known
    per_replica = vs.queue_length / vs.running_replicas
    if not signal.breached and signal.pressure >= 1 - KNEE_BAND and per_replica > 0:
        known = per_replica if known is None else known + LEARN_RATE * (per_replica - known)
        st["in_flight"] = known
    return known


@dataclass(frozen=True)
class Outlook:
    """What demand may do within one start-up time, in work units per second."""

    now: float
    trend: float
    """The Holt forecast at +start-up."""
    peak: float | None
    """The history's quantile of the highest demand within a start-up time after moments
    with demand no higher than now (None with too little history)."""

    @property
    def expected(self) -> float:
        """Demand to plan at the target utilization: now, or the trend where history allows.

        A trend read off a step (demand jumping within a window) extrapolates far past any
        level demand ever reached; history bounds it where there is history.
        """
        trend = self.trend if self.peak is None else min(self.trend, max(self.now, self.peak))
        return max(self.now, trend)


def outlook(
    demand: Demand,
    forecast: Forecast,
    buckets: list[float],
    startup_s: float,
    bucket_s: float,
    attainment: float,
) -> Outlook:
    """Demand now, its trend at +start-up, and what history says a start-up time brings.

    The fleet meets a rise one window after it began (rates are read over a window) and
    a start-up time after that: history is read over both.
    """
    reaction_s = startup_s + bucket_s
    peak = startup_peak_quantile(buckets, reaction_s, bucket_s, attainment, demand.work)
    return Outlook(demand.work, forecast.at(startup_s), peak)


def demand_need(
    demand: Demand, seen: Outlook, startup_s: float, capacity: Capacity, sc: ScalingConfig
) -> Need:
    """Replicas for the expected demand at the planned load per replica."""
    per_replica = capacity.planned(sc.target_utilization)
    raw = seen.expected / per_replica
    return Need(
        raw,
        [
            f"demand {demand.work:.2f} units/s ({demand.requests:.2f} req/s, priced by "
            f"{demand.priced_by}) now, {seen.trend:.2f} by trend at +{startup_s:.0f}s start-up, "
            f"{seen.expected:.2f} expected; {capacity.kind} capacity {capacity.per_replica:.3g} "
            f"units/s per replica, planned at {per_replica:.3g} -> need {raw:.2f}"
        ],
    )


def burst_headroom(
    need: Need,
    seen: Outlook,
    startup_s: float,
    attainment: float,
    capacity: Capacity,
    memory_min: float,
) -> Need:
    """Room for what demand reached within a start-up time after moments like now.

    Over the remembered history, take every moment whose demand was no higher than now,
    and the highest demand in the start-up time after it; the `attainment` quantile of
    those peaks is planned at the full capacity (it is already a high quantile). A
    replica released below it would be needed back, with a start-up's worth of misses,
    more often than the SLO's error budget allows: this is also what keeps a replica
    warm through a lull that history says ends sooner than it pays to restart.
    """
    if seen.peak is None or seen.peak <= seen.expected:
        return need
    raw = seen.peak / capacity.per_replica
    if raw <= need.raw:
        return need
    return Need(
        raw,
        [
            *need.reasons,
            (
                f"head-room: {attainment:.0%} of the moments with demand <= {seen.now:.2f} "
                f"units/s in the last {memory_min:.0f} min saw at most {seen.peak:.2f} within "
                f"{startup_s:.0f}s start-up -> need {raw:.2f}"
            ),
        ],
    )


@dataclass(frozen=True)
class Feedback:
    """The whole count after breach feedback, and whether it must act before any delay."""

    desired: int
    urgent: bool
    reasons: tuple[str, ...]


def breach_feedback(
    t: Tick, need: Need, current: int, capacity: Capacity, startup_s: float, rising: bool
) -> Feedback:
    """On a breach: replicas for the demand plus for clearing the work in flight, now.

    The requests in flight or queued are work the fleet must finish on top of the new
    demand; replicas started now serve only after a start-up time, so enough are started
    at once that the whole fleet clears that work within one start-up time: the count
    grows in proportion to the backlog, not one replica per tick. A settled fleet still
    in breach under rising demand, or while requests are shed, grows by at least one.
    Requests shed for overload are overload whatever latency says (`shed_feedback`).
    Without either, a change inside the hysteresis band, or up on a capacity known only
    as a lower bound, is no change.
    """
    desired = replicas_for(need.raw)
    signal, vs, sc = t.signal, t.vs, t.sc
    shed = vs.shed_rate or 0.0
    reasons: list[str] = []
    if signal is not None and signal.breached:
        breach = f"{signal} > SLO {signal.target_ms:.0f} ms"
        work = in_flight_work(t)
        # Replicas that start at once serve within a window: the backlog is cleared by then.
        horizon = startup_s if startup_s > 0 else t.window_s
        if work > 0:
            cleared = replicas_for(need.raw + work / (capacity.per_replica * horizon))
            if cleared > desired:
                desired = cleared
                reasons.append(
                    f"{breach}: {work:.1f} units of work in flight, cleared within "
                    f"{horizon:.0f}s -> {cleared}"
                )
        if _settled(vs, current) and (rising or shed > 0) and desired <= current:
            desired = current + 1
            why = "demand rising" if rising else f"{shed:.2f} req/s shed"
            reasons.append(f"{breach} and {why}: one more now")
        if desired < current:
            desired = current
            reasons.append(f"{breach}: no scale-down")
        return Feedback(desired, desired > current, tuple(reasons))
    if shed > 0:
        return shed_feedback(vs, desired, current, shed)
    if desired > current and capacity.kind == "proven":
        return Feedback(
            current, False, ("capacity known only as a lower bound: scale up on a breach only",)
        )
    if desired != current and within_band(current, need.raw, sc.hysteresis):
        return Feedback(current, False, (f"within the +/-{sc.hysteresis:.0%} hysteresis band",))
    return Feedback(desired, False, ())


def _settled(vs: VersionSnapshot, current: int) -> bool:
    """Whether every replica the version is heading to runs (none still starting)."""
    return not vs.starting_replicas and (vs.running_replicas or 0) >= current


def shed_feedback(vs: VersionSnapshot, desired: int, current: int, shed: float) -> Feedback:
    """Requests shed for overload: the replicas are full, whatever latency says.

    The bounded queue keeps the latency of answered requests near normal, so a breach
    may never come; the shed requests are the overload. The demand already counts them,
    and the count they call for is taken at once (each second waited refuses more), even
    on a capacity known only as a lower bound. A settled fleet grows by at least one;
    while replicas start, the count holds: they are what the shed demand asked for.
    """
    floor = current + 1 if _settled(vs, current) else current
    if desired >= floor:
        reasons = (f"{shed:.2f} req/s shed for overload: scale up now",)
        return Feedback(desired, desired > current, reasons if desired > current else ())
    why = "one more now" if floor > current else "no scale-down while replicas start"
    return Feedback(floor, floor > current, (f"{shed:.2f} req/s shed for overload: {why}",))


def in_flight_work(t: Tick) -> float:
    """Work units of the requests in flight or queued, at this window's cost per request."""
    queue, demand = t.vs.queue_length or 0.0, t.demand
    if queue <= 0 or demand is None or demand.requests <= 0:
        return 0.0
    return queue * demand.work / demand.requests
