"""The scaling agent: one pipeline of named steps per version that takes traffic.

Versions at weight 0 are the rollout agent's (floors while draining or under canary,
retirement afterwards). Missing data holds the current count and never scales down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.agents.base import AgentState
from controller.agents.guardrails import apply_delay, clamp, limit_step, replicas_for
from controller.agents.scaling.capacity import KNEE_BAND, LOADED_FRACTION, Capacity
from controller.agents.scaling.demand import (
    backlog_growth,
    excess_backlog,
    remember_demand,
    update_forecast,
)
from controller.agents.scaling.signal import steering_signal
from controller.agents.scaling.steps import (
    Feedback,
    Need,
    Tick,
    breach_feedback,
    burst_headroom,
    demand_need,
    learning_held,
    outlook,
    track_capacity,
    track_in_flight,
)
from controller.agents.scaling.work import (
    observed_demand,
    with_backlog_growth,
    with_shed,
    work_model,
)
from controller.agents.state import VersionScalingState, seconds_since, to_iso
from controller.config import AppConfig, GovernorConfig, VersionConfig
from controller.decisions import Alert, Proposal, ReplicaProposal
from controller.snapshot import Snapshot, VersionSnapshot

AGENT = "scaling"


@dataclass(frozen=True)
class _Scaled:
    proposals: list[Proposal]
    state: VersionScalingState


class ScalingAgent:
    """Proposes replicas per serving version from demand in work units, capacity and the SLO."""

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
                scaled = scale_version(
                    app, vc, vs, weight, before.get(key, {}), snapshot.now, snapshot.window_s
                )
                after[key] = scaled.state
                out += scaled.proposals
        return out, {"versions": after}


def _observe(
    app: AppConfig, vs: VersionSnapshot, prev: VersionScalingState, now: datetime, window_s: float
) -> tuple[Tick, VersionScalingState]:
    st = VersionScalingState(**prev)
    model, seeded = work_model(app.scaling)
    in_flight = st.get("in_flight", app.scaling.in_flight_per_replica)
    backlog = excess_backlog(vs.queue_length, vs.running_replicas, in_flight)
    growth = backlog_growth(st, backlog, now, window_s)
    demand = observed_demand(vs, model)
    shed_work = 0.0
    if demand is not None:
        offered = with_shed(demand, vs.shed_rate, model)
        shed_work = offered.work - demand.work
        demand = with_backlog_growth(offered, growth, model)
    level = prev.get("level")
    steady = (
        demand is not None and level is not None and abs(demand.work - level) <= KNEE_BAND * level
    )
    tick = Tick(
        vs=vs,
        sc=app.scaling,
        now=now,
        window_s=window_s,
        signal=steering_signal(app.slo, vs),
        demand=demand,
        seeded=seeded,
        backlog_growth=growth,
        steady=steady,
        shed_work=shed_work,
    )
    return tick, st


def scale_version(
    app: AppConfig,
    vc: VersionConfig,
    vs: VersionSnapshot,
    weight: int | None,
    prev: VersionScalingState,
    now: datetime,
    window_s: float,
) -> _Scaled:
    """One version's decision: observe, learn, need, feedback, guardrails."""
    tick, st = _observe(app, vs, prev, now, window_s)
    traffic = _has_traffic(vs)
    if weight == 0 or (weight is None and not traffic):
        st.pop("pending", None)
        return _Scaled([], st)
    current = vs.heading_to
    if current is None:
        return _Scaled([], st)
    sc = app.scaling
    forecast = None
    rising = False
    if tick.demand is not None:
        prev_level = prev.get("level")
        forecast = update_forecast(prev, tick.demand.work, tick.now, sc.forecast_window_s)
        st["level"], st["trend_per_s"] = forecast.level, forecast.trend
        st["observed_at"] = to_iso(tick.now)
        rising = forecast.trend > 0 or (prev_level is not None and tick.demand.work > prev_level)
    held = learning_held(tick, st, prev)
    in_flight = track_in_flight(tick, st, held)
    capacity, learned = track_capacity(tick, st, held, in_flight)
    if vs.running_replicas is not None:
        st["running_seen"] = vs.running_replicas
    buckets: list[float] = []
    if tick.demand is not None:
        buckets = remember_demand(st, tick.demand.work, tick.now, window_s, sc.burst_memory_s)
    alerts = [*_alerts(app, vc, tick, capacity, current), *_shed_alert(app, vc, vs, current)]
    if current == 0:
        return _from_zero(app, vc, tick, st, capacity, traffic, alerts)
    if tick.demand is None or forecast is None:
        return _hold(app, vc, st, current, "request rate missing or stale", alerts)
    if capacity is None:
        return _hold(
            app,
            vc,
            st,
            current,
            "per-replica capacity unknown (run governor "
            "calibrate, or set scaling.capacity_rps_per_replica)",
            alerts,
        )
    startup = vs.startup_s if vs.startup_s is not None else sc.default_startup_s
    seen = outlook(tick.demand, forecast, buckets, startup, window_s, app.slo.target_attainment)
    need = demand_need(tick.demand, seen, startup, capacity, sc)
    need.reasons[-1] += learned
    need = burst_headroom(
        need, seen, startup, app.slo.target_attainment, capacity, len(buckets) * window_s / 60
    )
    feedback = breach_feedback(tick, need, current, capacity, startup, rising)
    return _guarded(app, vc, tick, st, current, need, feedback, alerts)


def _has_traffic(vs: VersionSnapshot) -> bool:
    """Whether requests reached the version, wait for it, or were shed at its queue."""
    return any((x or 0) > 0 for x in (vs.request_rate, vs.queue_length, vs.shed_rate))


def _hold(
    app: AppConfig,
    vc: VersionConfig,
    st: VersionScalingState,
    n: int,
    why: str,
    alerts: list[Proposal],
) -> _Scaled:
    st.pop("pending", None)
    return _Scaled([*alerts, ReplicaProposal(app.name, vc.name, n, AGENT, f"hold {n}: {why}")], st)


def _alerts(
    app: AppConfig, vc: VersionConfig, tick: Tick, capacity: Capacity | None, current: int
) -> list[Proposal]:
    signal, demand, running = tick.signal, tick.demand, tick.vs.running_replicas
    if signal is None or not signal.breached:
        return []
    breach = f"{signal} > SLO {signal.target_ms:.0f} ms"
    out: list[Proposal] = []
    if demand is not None and demand.work and running and capacity is not None:
        load = demand.work / running
        if load < LOADED_FRACTION * capacity.per_replica:
            out.append(
                Alert(
                    app.name,
                    AGENT,
                    (
                        f"{breach} at low load ({load:.2f} units/s per replica, capacity "
                        f"~{capacity.per_replica:.2f}): more replicas may not help"
                    ),
                    vc.name,
                )
            )
    if current >= vc.max_replicas:
        out.append(
            Alert(
                app.name, AGENT, f"SLO at risk: {breach} at max_replicas {vc.max_replicas}", vc.name
            )
        )
    return out


def _shed_alert(
    app: AppConfig, vc: VersionConfig, vs: VersionSnapshot, current: int
) -> list[Proposal]:
    """An alert while requests are refused for overload and no replica can be added."""
    if not vs.shed_rate or current < vc.max_replicas:
        return []
    return [
        Alert(
            app.name,
            AGENT,
            f"{vs.shed_rate:.2f} req/s shed for overload at max_replicas {vc.max_replicas}",
            vc.name,
        )
    ]


def _from_zero(
    app: AppConfig,
    vc: VersionConfig,
    tick: Tick,
    st: VersionScalingState,
    capacity: Capacity | None,
    traffic: bool,
    alerts: list[Proposal],
) -> _Scaled:
    if not traffic:
        return _Scaled(alerts, st)
    sc = app.scaling
    need = 1
    demand = tick.demand
    if capacity is not None and capacity.kind != "proven" and demand is not None and demand.work:
        need = replicas_for(demand.work / capacity.planned(sc.target_utilization))
    n = clamp(min(need, sc.max_upscale_step), max(vc.min_replicas, 1), vc.max_replicas)
    st.pop("pending", None)
    st.pop("idle_since", None)
    rate = demand.requests if demand is not None else 0.0
    why = (
        f"requests arrived at zero replicas (rate {rate:.1f}/s, queue "
        f"{tick.vs.queue_length or 0:.0f}): start {n} now"
    )
    return _Scaled([*alerts, ReplicaProposal(app.name, vc.name, n, AGENT, why)], st)


def _guarded(
    app: AppConfig,
    vc: VersionConfig,
    tick: Tick,
    st: VersionScalingState,
    current: int,
    need: Need,
    feedback: Feedback,
    alerts: list[Proposal],
) -> _Scaled:
    """Missing-data holds, bounds, scale to zero, step limits and delays."""
    sc, vs = app.scaling, tick.vs
    reasons = [*need.reasons, *feedback.reasons]
    desired = feedback.desired
    # With no requests in the window and none waiting there is no latency to miss.
    waiting = _has_traffic(vs)
    if desired < current and tick.signal is None and waiting:
        desired = current
        reasons.append("p95 missing: never scale down on missing data")
    elif desired < current and tick.backlog_growth > 0:
        desired = current
        reasons.append("backlog growing: no scale-down")
    desired = clamp(desired, max(vc.min_replicas, 1), vc.max_replicas)
    idle = vs.request_rate == 0 and vs.queue_length == 0 and not vs.shed_rate
    if idle:
        st.setdefault("idle_since", to_iso(tick.now))
    else:
        st.pop("idle_since", None)
    idle_s = seconds_since(st.get("idle_since"), tick.now)
    if vc.min_replicas == 0 and sc.scale_to_zero and idle_s is not None:
        if idle_s >= sc.idle_before_zero_s:
            st.pop("pending", None)
            reason = f"idle (no requests, empty queue) for {idle_s:.0f}s: scale to zero"
            return _Scaled([*alerts, ReplicaProposal(app.name, vc.name, 0, AGENT, reason)], st)
        reasons.append(f"idle for {idle_s:.0f}s of {sc.idle_before_zero_s:.0f}s before zero")
    stepped = limit_step(current, desired, sc.max_upscale_step, sc.max_downscale_step)
    if stepped != desired:
        reasons.append(f"step limited to {stepped}")
    if feedback.urgent:
        st.pop("pending", None)
        final = stepped
    else:
        delayed = apply_delay(
            current, stepped, tick.now, st.get("pending"), sc.upscale_delay_s, sc.downscale_delay_s
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
