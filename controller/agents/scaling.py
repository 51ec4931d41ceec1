"""The scaling agent: replicas per version from the latency SLO, capacity and demand.

Need = forecast demand / (capacity per replica x utilization), where
- demand is the larger of the current rate and a Holt (level + trend) forecast at
  now + start-up time, so a slower model load buys more head-room on a rising load;
- capacity per replica is what is known of the load one replica serves within the SLO:
  `configured` (`scaling.capacity_rps_per_replica`) or `measured` (from loads whose
  latency came near or above the SLO, see `learn_capacity`) is planned at
  `target_utilization`. Without either, the agent only knows a `proven` lower bound (the
  highest load per replica it saw served well within the SLO): enough to scale down to
  what is proven, not to scale up, which then waits for a breach. Load per replica is not
  capacity: a lightly loaded replica would "measure" its own idleness and the fleet would
  grow without end.

The latency steered by is the end-to-end p95, or for generation the time-to-first-token
and time-per-output-token p95s where the SLO sets them and they are observed: an
answer's end-to-end time mostly measures its length, not how loaded the replica is.

A capacity is learned only from a settled fleet: not while replicas start, not within a
window of a replica-count change (removed replicas still drain) or of a breach (its
backlog drains at the replicas' full speed, which looks like capacity to spare). With a
configured prior, a measured capacity stays within `PRIOR_BOUNDS` of it and relaxes back
to it with `capacity_half_life_s`, so one misread window does not stay for good.

The agent scales only versions that take traffic; versions at weight 0 are the rollout
agent's (floors while draining or under canary, retirement afterwards). Missing data
holds the current count and never scales down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.agents.base import AgentState
from controller.agents.guardrails import (
    apply_delay,
    clamp,
    limit_step,
    replicas_for,
    within_band,
)
from controller.agents.state import VersionScalingState, seconds_since, to_iso
from controller.config import SLO, AppConfig, GovernorConfig, ScalingConfig, VersionConfig
from controller.decisions import Alert, Proposal, ReplicaProposal
from controller.snapshot import Snapshot, VersionSnapshot

AGENT = "scaling"

LEARN_RATE = 0.5
"""How far one near-the-SLO observation moves the capacity estimate towards it."""
KNEE_BAND = 0.3
"""p95 within this fraction of the SLO counts as near the knee of the latency curve."""
MAX_CUT = 0.5
"""A breach far beyond the SLO puts the knee no lower than this share of the load."""
LOADED_FRACTION = 0.5
"""A breach teaches capacity only when a replica carries at least this share of it."""
STALE_AFTER_WINDOWS = 10
"""A forecast older than this many forecast windows starts over."""
PRIOR_BOUNDS = (0.5, 1.5)
"""A measured capacity stays within these multiples of the configured prior."""
AT_PRIOR = 0.01
"""A measured capacity this close (relative) to the prior is the prior again."""


@dataclass(frozen=True)
class Forecast:
    """Holt level and trend of demand, and the demand expected at a horizon."""

    level: float
    trend: float

    def at(self, horizon_s: float) -> float:
        """Demand expected `horizon_s` from now (never negative)."""
        return max(0.0, self.level + self.trend * horizon_s)


def update_forecast(
    prev: VersionScalingState, rate: float, now: datetime, window_s: float
) -> Forecast:
    """Holt's linear smoothing with time constants from the forecast window."""
    dt = seconds_since(prev.get("observed_at"), now)
    if "level_rps" not in prev or dt is None or dt > STALE_AFTER_WINDOWS * window_s:
        return Forecast(rate, 0.0)
    level, trend = prev["level_rps"], prev.get("trend_rps_per_s", 0.0)
    if dt <= 0:
        return Forecast(level, trend)
    alpha = 1 - math.exp(-dt / (window_s / 2))
    beta = 1 - math.exp(-dt / window_s)
    new_level = alpha * rate + (1 - alpha) * (level + trend * dt)
    new_trend = beta * (new_level - level) / dt + (1 - beta) * trend
    return Forecast(new_level, new_trend)


@dataclass(frozen=True)
class LatencySignal:
    """One observed latency p95 and its SLO target, in ms."""

    name: str
    observed_ms: float
    target_ms: float

    @property
    def pressure(self) -> float:
        """Observed over target: above 1 is a breach."""
        return self.observed_ms / self.target_ms

    @property
    def breached(self) -> bool:
        """Whether the observed p95 is above its target."""
        return self.observed_ms > self.target_ms

    def __str__(self) -> str:
        return f"{self.name} {_ms(self.observed_ms)} ms"


def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def steering_signal(slo: SLO, vs: VersionSnapshot) -> LatencySignal | None:
    """The latency to steer by: the per-token p95 nearest its SLO, else end-to-end p95."""
    per_token = [
        LatencySignal(name, observed, target)
        for name, observed, target in (
            ("TTFT p95", vs.ttft_ms, slo.ttft_p95_ms),
            ("TPOT p95", vs.tpot_ms, slo.tpot_p95_ms),
        )
        if observed is not None and target is not None
    ]
    if per_token:
        return max(per_token, key=lambda s: s.pressure)
    if vs.latency_p95_ms is None:
        return None
    return LatencySignal("p95", vs.latency_p95_ms, slo.latency_p95_ms)


@dataclass(frozen=True)
class Capacity:
    """Requests per second one replica serves within the SLO, and how that is known."""

    rps: float
    kind: str
    """configured | measured | proven (a lower bound)."""

    def planned(self, target_utilization: float) -> float:
        """The load per replica to plan for."""
        return self.rps if self.kind == "proven" else self.rps * target_utilization


def learn_capacity(
    known: Capacity | None, load_per_replica: float, p95_ms: float, slo_ms: float
) -> Capacity | None:
    """The capacity estimate after one observation of load per replica and its p95.

    Near the SLO (p95 within `KNEE_BAND` of it) latency is close to linear in load, so
    load x SLO / p95 estimates the knee and is smoothed in. Well within the SLO the load
    only proves a lower bound; far beyond it, queueing makes that ratio far too
    pessimistic, so a breach under load cuts the estimate by at most half.
    """
    ratio = slo_ms / p95_ms
    if p95_ms <= slo_ms * (1 - KNEE_BAND):
        if known is None:
            return Capacity(load_per_replica, "proven")
        if load_per_replica <= known.rps:
            return known
        return Capacity(load_per_replica, "proven" if known.kind == "proven" else "measured")
    if known is not None and load_per_replica < LOADED_FRACTION * known.rps:
        return known
    if p95_ms <= slo_ms * (1 + KNEE_BAND):
        knee = load_per_replica * ratio
        if known is None or known.kind == "proven":
            return Capacity(max(knee, known.rps if known else 0.0), "measured")
        return Capacity(known.rps + LEARN_RATE * (knee - known.rps), "measured")
    ceiling = load_per_replica * max(ratio, MAX_CUT)
    if known is None or known.kind == "proven":
        return Capacity(ceiling, "measured")
    return known if known.rps <= ceiling else Capacity(ceiling, "measured")


def anchored(capacity: Capacity, prior: float | None) -> Capacity:
    """A measured capacity bounded by `PRIOR_BOUNDS` of the prior; the prior when close to it."""
    if prior is None or capacity.kind == "configured":
        return capacity
    lo, hi = PRIOR_BOUNDS
    rps = min(max(capacity.rps, lo * prior), hi * prior)
    if abs(rps - prior) <= AT_PRIOR * prior:
        return Capacity(prior, "configured")
    return Capacity(rps, "measured")


def relaxed(
    capacity: Capacity, prior: float | None, elapsed_s: float, half_life_s: float
) -> Capacity:
    """A learned capacity moved back towards the prior for `elapsed_s` seconds."""
    if prior is None or capacity.kind == "configured" or elapsed_s <= 0:
        return capacity
    keep = 0.5 ** (elapsed_s / half_life_s)
    return anchored(Capacity(prior + (capacity.rps - prior) * keep, capacity.kind), prior)


def remembered_capacity(
    st: VersionScalingState, prior: float | None, now: datetime, half_life_s: float
) -> Capacity | None:
    """The capacity learned and kept in state, relaxed towards the prior; else the prior."""
    configured = Capacity(prior, "configured") if prior is not None else None
    if "capacity_rps" not in st or st.get("capacity_kind") == "configured":
        return configured
    kept = Capacity(st["capacity_rps"], st.get("capacity_kind", "measured"))
    elapsed = seconds_since(st.get("capacity_at"), now) or 0.0
    return relaxed(anchored(kept, prior), prior, elapsed, half_life_s)


def unsettled(vs: VersionSnapshot, prev: VersionScalingState) -> str | None:
    """Why the fleet is in transition at this tick (replicas starting or changing), or None."""
    if vs.starting_replicas:
        return f"{vs.starting_replicas} replica(s) starting"
    running = vs.running_replicas
    if running is not None and vs.target_replicas is not None and running != vs.target_replicas:
        return f"{running} running, target {vs.target_replicas}"
    seen = prev.get("running_seen")
    if running is not None and seen is not None and running != seen:
        return f"running replicas {seen} -> {running}"
    return None


def observed_count(vs: VersionSnapshot) -> int | None:
    """The replica count the version is heading to: its target, else running + starting."""
    if vs.target_replicas is not None:
        return vs.target_replicas
    if vs.running_replicas is None:
        return None
    return vs.running_replicas + (vs.starting_replicas or 0)


@dataclass(frozen=True)
class _Scaled:
    proposals: list[Proposal]
    state: VersionScalingState


class ScalingAgent:
    """Proposes replicas per serving version from the SLO, capacity and forecast demand."""

    name = AGENT

    def propose(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig
    ) -> tuple[Sequence[Proposal], AgentState]:
        """One proposal per version with traffic and enough data; holds otherwise."""
        before: dict[str, VersionScalingState] = state.get("versions", {})
        after: dict[str, VersionScalingState] = dict(before)
        out: list[Proposal] = []
        for app in config.applications:
            observed = snapshot.app(app.name)
            if observed is None:
                continue
            for vc in app.versions:
                key = f"{app.name}/{vc.name}"
                vs = observed.version(vc.name)
                if vs is None:
                    continue
                weight = None if observed.weights is None else observed.weights.get(vc.name, 0)
                scaled = _scale(
                    app, vc, vs, weight, before.get(key, {}), snapshot.now, snapshot.window_s
                )
                after[key] = scaled.state
                out += scaled.proposals
        return out, {"versions": after}


def _scale(
    app: AppConfig,
    vc: VersionConfig,
    vs: VersionSnapshot,
    weight: int | None,
    prev: VersionScalingState,
    now: datetime,
    window_s: float,
) -> _Scaled:
    st = VersionScalingState(**prev)
    rate, queue = vs.request_rate, vs.queue_length
    traffic = (rate or 0) > 0 or (queue or 0) > 0
    if weight == 0 or (weight is None and not traffic):
        st.pop("pending", None)
        return _Scaled([], st)
    sc = app.scaling

    def hold(n: int, why: str) -> _Scaled:
        st.pop("pending", None)
        return _Scaled([ReplicaProposal(app.name, vc.name, n, AGENT, f"hold {n}: {why}")], st)

    current = observed_count(vs)
    if current is None:
        return _Scaled([], st)
    prev_level = prev.get("level_rps")
    forecast = None
    if rate is not None:
        forecast = update_forecast(prev, rate, now, sc.forecast_window_s)
        st["level_rps"], st["trend_rps_per_s"] = forecast.level, forecast.trend
        st["observed_at"] = to_iso(now)
    signal = steering_signal(app.slo, vs)
    breach = f"{signal} > SLO {_ms(signal.target_ms)} ms" if signal and signal.breached else ""
    running = vs.running_replicas
    alerts: list[Proposal] = []
    capacity, learned = _track_capacity(sc, vs, signal, st, prev, now, window_s)
    if breach and rate and running and capacity is not None:
        load = rate / running
        if load < LOADED_FRACTION * capacity.rps:
            alerts.append(
                Alert(
                    app.name,
                    AGENT,
                    f"{breach} at low load ({load:.1f} req/s per replica, capacity "
                    f"~{capacity.rps:.1f}): more replicas may not help",
                    vc.name,
                )
            )
    lower = max(vc.min_replicas, 1)
    if current == 0:
        if not traffic:
            return _Scaled([], st)
        need = 1
        if capacity is not None and capacity.kind != "proven" and rate:
            need = replicas_for(rate / capacity.planned(sc.target_utilization))
        n = clamp(min(need, sc.max_upscale_step), lower, vc.max_replicas)
        st.pop("pending", None)
        st.pop("idle_since", None)
        why = f"requests arrived at zero replicas (rate {rate or 0:.1f}/s, queue {queue or 0:.0f})"
        return _Scaled([ReplicaProposal(app.name, vc.name, n, AGENT, f"{why}: start {n} now")], st)
    if rate is None or forecast is None:
        return hold(current, "request rate missing or stale")
    if capacity is None:
        return hold(current, "per-replica capacity unknown (set scaling.capacity_rps_per_replica)")

    startup = vs.startup_s if vs.startup_s is not None else sc.default_startup_s
    demand = max(rate, forecast.at(startup))
    per_replica = capacity.planned(sc.target_utilization)
    raw = demand / per_replica
    desired = replicas_for(raw)
    prior = sc.capacity_rps_per_replica
    anchor = f" (configured {prior:.1f})" if capacity.kind == "measured" and prior else ""
    reasons = [
        f"demand {rate:.1f} req/s now, {forecast.at(startup):.1f} forecast at +{startup:.0f}s "
        f"start-up; {capacity.kind} capacity {capacity.rps:.1f} req/s per replica{anchor}, "
        f"planned at {per_replica:.1f} -> need {raw:.2f}{learned}"
    ]
    rising = forecast.trend > 0 or (prev_level is not None and rate > prev_level)
    settled = (vs.starting_replicas or 0) == 0 and (running is None or running >= current)
    urgent = bool(breach) and rising and settled
    if urgent:
        desired = max(desired, current + 1)
        reasons.append(f"{breach} and demand rising: scale up now")
    elif desired > current and capacity.kind == "proven":
        desired = current
        reasons.append("capacity known only as a lower bound: scale up on a breach only")
    elif within_band(current, raw, sc.hysteresis) and desired != current:
        desired = current
        reasons.append(f"within the +/-{sc.hysteresis:.0%} hysteresis band")
    # With no requests in the window there is no latency to miss: the rate says it all.
    if desired < current and signal is None and rate > 0:
        desired = current
        reasons.append("p95 missing: never scale down on missing data")
    elif desired < current and breach:
        desired = current
        reasons.append(f"{breach}: no scale-down")
    if breach and current >= vc.max_replicas:
        alerts.append(
            Alert(
                app.name,
                AGENT,
                f"SLO at risk: {breach} at max_replicas {vc.max_replicas}",
                vc.name,
            )
        )
    desired = clamp(desired, lower, vc.max_replicas)

    idle = rate == 0 and queue == 0
    if idle:
        st.setdefault("idle_since", to_iso(now))
    else:
        st.pop("idle_since", None)
    idle_s = seconds_since(st.get("idle_since"), now)
    if vc.min_replicas == 0 and sc.scale_to_zero and idle_s is not None:
        if idle_s >= sc.idle_before_zero_s:
            st.pop("pending", None)
            reason = f"idle (no requests, empty queue) for {idle_s:.0f}s: scale to zero"
            return _Scaled([*alerts, ReplicaProposal(app.name, vc.name, 0, AGENT, reason)], st)
        reasons.append(f"idle for {idle_s:.0f}s of {sc.idle_before_zero_s:.0f}s before zero")

    stepped = limit_step(current, desired, sc.max_upscale_step, sc.max_downscale_step)
    if stepped != desired:
        reasons.append(f"step limited to {stepped}")
    if urgent:
        st.pop("pending", None)
        final = stepped
    else:
        delayed = apply_delay(
            current, stepped, now, st.get("pending"), sc.upscale_delay_s, sc.downscale_delay_s
        )
        if delayed.pending is None:
            st.pop("pending", None)
        else:
            st["pending"] = delayed.pending
        if delayed.note:
            reasons.append(delayed.note)
        final = delayed.replicas
    verb = "keep" if final == current else f"{current} ->"
    reason = f"{verb} {final}: " + "; ".join(reasons)
    return _Scaled([*alerts, ReplicaProposal(app.name, vc.name, final, AGENT, reason)], st)


def _track_capacity(
    sc: ScalingConfig,
    vs: VersionSnapshot,
    signal: LatencySignal | None,
    st: VersionScalingState,
    prev: VersionScalingState,
    now: datetime,
    window_s: float,
) -> tuple[Capacity | None, str]:
    """The capacity to plan with after this tick's observation (kept in `st`), and a note."""
    prior = sc.capacity_rps_per_replica
    capacity = remembered_capacity(st, prior, now, sc.capacity_half_life_s)
    transition = unsettled(vs, prev)
    quiet_s = seconds_since(st.get("unsettled_at"), now)
    held = transition
    if held is None and quiet_s is not None and quiet_s < window_s:
        held = f"{quiet_s:.0f}s since the fleet last changed or breached (window {window_s:.0f}s)"
    note = ""
    rate, running = vs.request_rate, vs.running_replicas
    if rate and running and signal is not None:
        load = rate / running
        note = f"; {signal} at {load:.1f} req/s per replica"
        if held is not None:
            note += f" (not learned: {held})"
        else:
            learned = learn_capacity(capacity, load, signal.observed_ms, signal.target_ms)
            capacity = anchored(learned, prior) if learned is not None else None
    if transition or (signal is not None and signal.breached):
        st["unsettled_at"] = to_iso(now)
    if running is not None:
        st["running_seen"] = running
    if capacity is None or capacity.kind == "configured":
        st.pop("capacity_rps", None)
        st.pop("capacity_kind", None)
        st.pop("capacity_at", None)
    else:
        st["capacity_rps"], st["capacity_kind"] = capacity.rps, capacity.kind
        st["capacity_at"] = to_iso(now)
    return capacity, note
