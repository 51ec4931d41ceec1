"""The daemon's own Prometheus metrics (prometheus-client, a registry of its own).

Fleet and team aggregates are exported always, and two series per application (its
error-budget burn and its planned cost). Per-version series, and the rest of an
application's, exist only while a version carries a decision, and `hold_s` after: a
rollout in progress, an SLO breached or at risk, or replicas or weights the plan is
changing. They are removed once the decision is over, so the series count follows what
needs an operator's eye, not the size of the fleet (budget: docs/prometheus.md).
"""

from __future__ import annotations

import math
import threading
from collections import Counter as Tally
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from controller.config import AppConfig, GovernorConfig
from controller.decisions import Plan
from controller.signals.prometheus import query_failures
from controller.slo import TOKEN_MEASURES, attainment, burn_rate, token_attainment
from controller.snapshot import AppSnapshot, Snapshot

ROLLOUT_PHASES = ("idle", "canary", "promoted", "rolling-back", "rolled-back", "aborted")
ACTIVE_ROLLOUT_PHASES = ("canary", "rolling-back")
"""Phases in which a rollout still moves weights or replicas."""

HOLD_S = 300.0
"""How long a version keeps its series after its last decision: a condition that flaps
from tick to tick does not create and drop series every tick, and a change stays on the
dashboard while it converges."""
MAX_DETAILED_VERSIONS = 1000
"""Versions exported in detail at most; past it, rollouts first, then SLO risk, then changes."""

ROLLOUT, AT_RISK, CHANGING = 0, 1, 2
"""Why a version carries a decision, most urgent first."""

Labels = tuple[str, ...]


@dataclass(frozen=True)
class _AppFacts:
    """What one tick knows of one application, computed once."""

    cfg: AppConfig
    observed: AppSnapshot | None
    desired: int
    running: int
    cost: float
    observed_cost: float
    rate: float
    attained: float | None
    token_attained: dict[str, float | None]
    """By token measure the SLO sets: the share within its target (None: none reported)."""
    at_risk: bool
    phase: str
    step: object


class Telemetry:
    """Gauges and counters that describe what the daemon sees and decides."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        hold_s: float = HOLD_S,
        max_detailed_versions: int = MAX_DETAILED_VERSIONS,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.hold_s = hold_s
        self.max_detailed_versions = max_detailed_versions
        r = self.registry
        self.desired_replicas = Gauge(
            "governor_desired_replicas", "Replicas the plan wants", ["app", "version"], registry=r
        )
        self.running_replicas = Gauge(
            "governor_running_replicas", "Replicas observed running", ["app", "version"], registry=r
        )
        self.weight = Gauge(
            "governor_traffic_weight_percent", "Traffic weight", ["app", "version"], registry=r
        )
        self.latency_p95 = Gauge(
            "governor_latency_p95_ms", "Observed p95 latency", ["app", "version"], registry=r
        )
        self.slo_p95 = Gauge("governor_slo_latency_p95_ms", "p95 latency SLO", ["app"], registry=r)
        self.request_rate = Gauge(
            "governor_request_rate", "Requests per second", ["app", "version"], registry=r
        )
        self.cost_per_hour = Gauge(
            "governor_cost_per_hour", "Planned cost per hour", ["app", "team"], registry=r
        )
        self.fleet_cost_per_hour = Gauge(
            "governor_fleet_cost_per_hour", "Planned cost per hour of the fleet", registry=r
        )
        self.cost_per_1k_requests = Gauge(
            "governor_cost_per_1k_requests",
            "Cost of 1,000 requests at the current rate",
            ["app"],
            registry=r,
        )
        self.budget_per_hour = Gauge(
            "governor_budget_per_hour",
            "Budget per hour ('total' or a team)",
            ["scope"],
            registry=r,
        )
        self.rollout_phase = Gauge(
            "governor_rollout_phase",
            "1 for the rollout phase an app is in",
            ["app", "phase"],
            registry=r,
        )
        self.rollout_step = Gauge(
            "governor_rollout_step", "Canary step index (-1 when none)", ["app"], registry=r
        )
        self.ticks = Counter("governor_ticks", "Control ticks run", ["outcome"], registry=r)
        self.tick_seconds = Histogram(
            "governor_tick_duration_seconds",
            "Duration of a control tick",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.errors = Counter("governor_errors", "Errors by kind", ["kind", "stage"], registry=r)
        self.state_resets = Counter(
            "governor_state_reset",
            "Parts of the saved agent state dropped as invalid and rebuilt from the fleet",
            ["agent"],
            registry=r,
        )
        self.missing_signals = Gauge(
            "governor_signal_problems", "Signal problems seen at the last tick", registry=r
        )
        self.last_tick = Gauge(
            "governor_last_tick_timestamp_seconds", "When the last tick finished", registry=r
        )
        self.interval = Gauge(
            "governor_control_interval_seconds", "Configured time between ticks", registry=r
        )
        self.signal_query_failures = Counter(
            "governor_signal_query_failures",
            "Signal queries that gave no usable answer, by query and reason",
            ["query", "reason"],
            registry=r,
        )
        self.starting_replicas = Gauge(
            "governor_starting_replicas",
            "Replicas observed starting",
            ["app", "version"],
            registry=r,
        )
        self.observed_weight = Gauge(
            "governor_observed_traffic_weight_percent",
            "Traffic weight the router reports",
            ["app", "version"],
            registry=r,
        )
        self.error_ratio = Gauge(
            "governor_error_ratio",
            "Fraction of requests that failed",
            ["app", "version"],
            registry=r,
        )
        self.slo_attainment = Gauge(
            "governor_slo_attainment_ratio",
            "Fraction of the window's requests that succeeded within the latency SLO",
            ["app"],
            registry=r,
        )
        self.slo_target = Gauge(
            "governor_slo_target_attainment_ratio",
            "Fraction of requests the SLO promises",
            ["app"],
            registry=r,
        )
        self.slo_max_error = Gauge(
            "governor_slo_max_error_ratio",
            "Highest error fraction the SLO allows",
            ["app"],
            registry=r,
        )
        self.burn_rate = Gauge(
            "governor_slo_error_budget_burn_rate",
            "Error-budget burn over the window (1 spends the budget exactly)",
            ["app"],
            registry=r,
        )
        self.slo_token_p95 = Gauge(
            "governor_slo_token_p95_ms",
            "p95 token latency SLO of a generation app (measure: ttft, tpot)",
            ["app", "measure"],
            registry=r,
        )
        self.token_burn_rate = Gauge(
            "governor_slo_token_burn_rate",
            "Error-budget burn of a token latency SLO over the window (ttft or tpot)",
            ["app", "measure"],
            registry=r,
        )
        self.team_cost_per_hour = Gauge(
            "governor_team_cost_per_hour", "Planned cost per hour of a team", ["team"], registry=r
        )
        self.observed_cost_per_hour = Gauge(
            "governor_observed_cost_per_hour",
            "Cost per hour of the replicas running or starting",
            ["app", "team"],
            registry=r,
        )
        self.team_cost_per_1k_requests = Gauge(
            "governor_team_cost_per_1k_requests",
            "Cost of 1,000 requests of a team at the current rate",
            ["team"],
            registry=r,
        )
        self.budget_headroom = Gauge(
            "governor_budget_headroom_per_hour",
            "Budget per hour left after the plan's cost ('total' or a team)",
            ["scope"],
            registry=r,
        )
        self.rollout_verdicts = Counter(
            "governor_rollout_verdicts",
            "Canary analysis verdicts",
            ["app", "result"],
            registry=r,
        )
        self.releases = Counter(
            "governor_releases",
            "Release events: admitted, refused, promoted, rolled-back, aborted, retired",
            ["app", "outcome"],
            registry=r,
        )
        self.plan_alerts = Gauge(
            "governor_plan_alerts", "Alerts raised by the last plan", ["app"], registry=r
        )
        self.team_observed_cost_per_hour = Gauge(
            "governor_team_observed_cost_per_hour",
            "Cost per hour of a team's replicas running or starting",
            ["team"],
            registry=r,
        )
        self.team_request_rate = Gauge(
            "governor_team_request_rate", "Requests per second of a team", ["team"], registry=r
        )
        self.team_desired_replicas = Gauge(
            "governor_team_desired_replicas",
            "Replicas the plan wants for a team",
            ["team"],
            registry=r,
        )
        self.team_running_replicas = Gauge(
            "governor_team_running_replicas",
            "Replicas of a team observed running",
            ["team"],
            registry=r,
        )
        self.team_apps_at_risk = Gauge(
            "governor_team_apps_at_risk",
            "Applications of a team whose SLO is breached or at risk",
            ["team"],
            registry=r,
        )
        self.rollouts = Gauge(
            "governor_rollouts", "Applications in each rollout phase", ["phase"], registry=r
        )
        self.detailed_versions = Gauge(
            "governor_detailed_versions",
            "Versions exported with per-version series (they carry a decision)",
            registry=r,
        )
        self.detail_overflow = Gauge(
            "governor_detail_overflow_versions",
            "Versions carrying a decision left out of the per-version series by the cap",
            registry=r,
        )
        self._verdicts_seen: dict[str, tuple[str, ...] | None] = {}
        self._verdict_series: dict[str, set[str]] = {}
        self._decided: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._swept = (
            self.desired_replicas,
            self.running_replicas,
            self.starting_replicas,
            self.weight,
            self.observed_weight,
            self.latency_p95,
            self.request_rate,
            self.error_ratio,
            self.slo_p95,
            self.slo_attainment,
            self.slo_target,
            self.slo_max_error,
            self.burn_rate,
            self.token_burn_rate,
            self.slo_token_p95,
            self.cost_per_hour,
            self.observed_cost_per_hour,
            self.cost_per_1k_requests,
            self.plan_alerts,
            self.rollout_phase,
            self.rollout_step,
            self.team_cost_per_hour,
            self.team_observed_cost_per_hour,
            self.team_cost_per_1k_requests,
            self.team_request_rate,
            self.team_desired_replicas,
            self.team_running_replicas,
            self.team_apps_at_risk,
            self.budget_per_hour,
            self.budget_headroom,
        )
        self._exported: dict[Gauge, set[Labels]] = {g: set() for g in self._swept}
        self._tick: dict[Gauge, set[Labels]] = {g: set() for g in self._swept}

    def record(
        self, config: GovernorConfig, snapshot: Snapshot, plan: Plan, rollout: dict[str, Any]
    ) -> None:
        """Update the metrics from one tick's snapshot and plan, in one pass over the fleet."""
        self.interval.set(config.interval_s)
        for query, reason in query_failures(snapshot.problems):
            self.signal_query_failures.labels(query, reason).inc()
        alerts = Tally(a.app for a in plan.alerts)
        facts = [
            self._app_facts(config, app, snapshot, plan, rollout, alerts)
            for app in config.applications
        ]
        self._record_teams(config, plan, facts)
        for f in facts:
            self._put(self.burn_rate, (f.cfg.name,), _burn(f))
            for measure, attained in f.token_attained.items():
                burn = None if attained is None else burn_rate(attained, f.cfg.slo)
                self._put(self.token_burn_rate, (f.cfg.name, measure), burn)
            self._put(self.cost_per_hour, (f.cfg.name, f.cfg.team), f.cost)
            self._note_decisions(f, plan, snapshot.now)
        detailed = self._select_detailed(config, snapshot.now)
        by_app: dict[str, list[str]] = {}
        for app, version in detailed:
            by_app.setdefault(app, []).append(version)
        for f in facts:
            versions = by_app.get(f.cfg.name)
            if versions is not None:
                self._record_app_detail(f, alerts[f.cfg.name])
                for v in versions:
                    self._record_version_detail(f, v, plan)
        for f in facts:
            self._record_verdict(f.cfg.name, rollout.get(f.cfg.name, {}))
        phases = Tally(f.phase for f in facts)
        for p in ROLLOUT_PHASES:
            self.rollouts.labels(p).set(phases.get(p, 0))
        self.fleet_cost_per_hour.set(plan.cost_per_hour)
        self.missing_signals.set(len(snapshot.problems))
        self._sweep(set(by_app))

    def _app_facts(
        self,
        config: GovernorConfig,
        app: AppConfig,
        snapshot: Snapshot,
        plan: Plan,
        rollout: dict[str, Any],
        alerts: Tally[str],
    ) -> _AppFacts:
        """Everything the tick's series need of one application, computed once."""
        observed = snapshot.app(app.name)
        price = config.replica_price(app)
        planned = sum(plan.replicas_for(app.name, v.name) or 0 for v in app.versions)
        seen = observed.versions if observed is not None else ()
        attained = attainment(observed, app.slo) if observed is not None else None
        view = rollout.get(app.name, {})
        return _AppFacts(
            cfg=app,
            observed=observed,
            desired=planned,
            running=sum(vs.running_replicas or 0 for vs in seen),
            cost=planned * price,
            observed_cost=sum(
                (vs.running_replicas or 0) + (vs.starting_replicas or 0) for vs in seen
            )
            * price,
            rate=sum(vs.request_rate or 0.0 for vs in seen),
            attained=attained,
            token_attained=_token_attained(app, observed),
            at_risk=_at_risk(app, observed, attained, alerts[app.name]),
            phase=str(view.get("phase", "idle")),
            step=view.get("step"),
        )

    def _record_teams(self, config: GovernorConfig, plan: Plan, facts: list[_AppFacts]) -> None:
        """Team aggregates and budgets, summed from the applications' facts."""
        cost: dict[str, float] = {}
        observed_cost: dict[str, float] = {}
        rate: dict[str, float] = {}
        desired: dict[str, int] = {}
        running: dict[str, int] = {}
        at_risk: dict[str, int] = {}
        for f in facts:
            team = f.cfg.team
            cost[team] = cost.get(team, 0.0) + f.cost
            observed_cost[team] = observed_cost.get(team, 0.0) + f.observed_cost
            rate[team] = rate.get(team, 0.0) + f.rate
            desired[team] = desired.get(team, 0) + f.desired
            running[team] = running.get(team, 0) + f.running
            at_risk[team] = at_risk.get(team, 0) + int(f.at_risk)
        for team, c in cost.items():
            self._put(self.team_cost_per_hour, (team,), c)
            self._put(self.team_observed_cost_per_hour, (team,), observed_cost[team])
            self._put(self.team_cost_per_1k_requests, (team,), _per_1k(c, rate[team]))
            self._put(self.team_request_rate, (team,), rate[team])
            self._put(self.team_desired_replicas, (team,), desired[team])
            self._put(self.team_running_replicas, (team,), running[team])
            self._put(self.team_apps_at_risk, (team,), at_risk[team])
        if config.budgets.total_per_hour is not None:
            self._put(self.budget_per_hour, ("total",), config.budgets.total_per_hour)
            self._put(
                self.budget_headroom, ("total",), config.budgets.total_per_hour - plan.cost_per_hour
            )
        for team, budget in config.budgets.teams.items():
            self._put(self.budget_per_hour, (team,), budget.per_hour)
            self._put(self.budget_headroom, (team,), budget.per_hour - cost.get(team, 0.0))

    def _note_decisions(self, f: _AppFacts, plan: Plan, now: datetime) -> None:
        """Remember when each version of the app last carried a decision, and which kind."""
        app = f.cfg.name
        if f.phase in ACTIVE_ROLLOUT_PHASES or f.at_risk:
            why = ROLLOUT if f.phase in ACTIVE_ROLLOUT_PHASES else AT_RISK
            for v in f.cfg.versions:
                self._decided[(app, v.name)] = (now, why)
            return
        planned_weights = plan.weights_for(app)
        seen_weights = f.observed.weights if f.observed is not None else None
        for v in f.cfg.versions:
            vs = f.observed.version(v.name) if f.observed is not None else None
            want = plan.replicas_for(app, v.name)
            moving = (
                vs is not None
                and want is not None
                and any(
                    n is not None and n != want for n in (vs.target_replicas, vs.running_replicas)
                )
            )
            if not moving and planned_weights is not None and seen_weights is not None:
                moving = planned_weights.get(v.name, 0) != seen_weights.get(v.name, 0)
            if moving:
                self._decided[(app, v.name)] = (now, CHANGING)

    def _select_detailed(self, config: GovernorConfig, now: datetime) -> list[tuple[str, str]]:
        """Versions to export in detail: decided within `hold_s`, most urgent first, capped."""
        for key, (at, _) in list(self._decided.items()):
            if (now - at).total_seconds() > self.hold_s or not _configured(config, *key):
                del self._decided[key]
        keys = list(self._decided)
        overflow = max(0, len(keys) - self.max_detailed_versions)
        if overflow:
            keys.sort(key=lambda k: (self._decided[k][0] != now, self._decided[k][1], k))
            keys = keys[: self.max_detailed_versions]
        self.detailed_versions.set(len(keys))
        self.detail_overflow.set(overflow)
        return keys

    def _record_app_detail(self, f: _AppFacts, alerts: int) -> None:
        app, slo = (f.cfg.name,), f.cfg.slo
        self._put(self.slo_p95, app, slo.latency_p95_ms)
        for measure, target in (("ttft", slo.ttft_p95_ms), ("tpot", slo.tpot_p95_ms)):
            if target is not None:
                self._put(self.slo_token_p95, (f.cfg.name, measure), target)
        self._put(self.slo_target, app, slo.target_attainment)
        self._put(self.slo_max_error, app, slo.max_error_rate)
        self._put(self.slo_attainment, app, f.attained)
        self._put(self.observed_cost_per_hour, (f.cfg.name, f.cfg.team), f.observed_cost)
        self._put(self.cost_per_1k_requests, app, _per_1k(f.cost, f.rate))
        self._put(self.plan_alerts, app, alerts)
        self._put(self.rollout_phase, (f.cfg.name, f.phase), 1)
        self._put(self.rollout_step, app, f.step if isinstance(f.step, int) else -1)

    def _record_version_detail(self, f: _AppFacts, version: str, plan: Plan) -> None:
        labels = (f.cfg.name, version)
        want = plan.replicas_for(f.cfg.name, version)
        if want is not None:
            self._put(self.desired_replicas, labels, want)
        weights = plan.weights_for(f.cfg.name) or {}
        self._put(self.weight, labels, weights.get(version, 0))
        if f.observed is None:
            return
        vs = f.observed.version(version)
        if vs is not None:
            self._put(self.running_replicas, labels, vs.running_replicas)
            self._put(self.starting_replicas, labels, vs.starting_replicas)
            self._put(self.latency_p95, labels, vs.latency_p95_ms)
            self._put(self.request_rate, labels, vs.request_rate)
            self._put(self.error_ratio, labels, vs.error_rate)
        if f.observed.weights is not None:
            self._put(self.observed_weight, labels, f.observed.weights.get(version, 0))

    def _record_verdict(self, app: str, view: dict[str, Any]) -> None:
        """Count each new verdict once; the first tick of the process only remembers it."""
        verdict = view.get("verdict")
        seen = (str(verdict), str(view.get("step")), str(view.get("phase"))) if verdict else None
        if app in self._verdicts_seen and seen is not None and seen != self._verdicts_seen[app]:
            self.rollout_verdicts.labels(app, seen[0]).inc()
            self._verdict_series.setdefault(app, set()).add(seen[0])
        self._verdicts_seen[app] = seen

    def _put(self, gauge: Gauge, labels: Labels, value: float | None) -> None:
        """Set one series for this tick (NaN when unknown); series not put are removed."""
        gauge.labels(*labels).set(math.nan if value is None else value)
        self._tick[gauge].add(labels)

    def _sweep(self, detailed_apps: set[str]) -> None:
        """Remove the series this tick did not set, and the verdicts of undetailed apps."""
        for gauge in self._swept:
            now = self._tick[gauge]
            for labels in self._exported[gauge] - now:
                gauge.remove(*labels)
            self._exported[gauge], self._tick[gauge] = now, set()
        for app in [a for a in self._verdict_series if a not in detailed_apps]:
            for result in self._verdict_series.pop(app):
                self.rollout_verdicts.remove(app, result)


def _configured(config: GovernorConfig, app: str, version: str) -> bool:
    try:
        config.app(app).version(version)
    except KeyError:
        return False
    return True


def _at_risk(
    app: AppConfig, observed: AppSnapshot | None, attained: float | None, alerts: int
) -> bool:
    """The SLO is breached or at risk: budget burning too fast, a version over it, an alert."""
    if alerts or (attained is not None and burn_rate(attained, app.slo) > 1):
        return True
    for vs in observed.versions if observed else ():
        if vs.latency_p95_ms is not None and vs.latency_p95_ms > app.slo.latency_p95_ms:
            return True
        if vs.error_rate is not None and vs.error_rate > app.slo.max_error_rate:
            return True
    return False


def _token_attained(app: AppConfig, observed: AppSnapshot | None) -> dict[str, float | None]:
    targets = {"ttft": app.slo.ttft_p95_ms, "tpot": app.slo.tpot_p95_ms}
    return {
        m: token_attainment(observed, app.slo, m) if observed is not None else None
        for m in TOKEN_MEASURES
        if targets[m] is not None
    }


def _burn(f: _AppFacts) -> float | None:
    return None if f.attained is None else burn_rate(f.attained, f.cfg.slo)


def _per_1k(cost: float, rate: float) -> float:
    return cost / (rate * 3.6) if rate > 0 else math.nan


def serve_metrics(telemetry: Telemetry, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve /metrics on host:port in a background thread; returns (server, thread)."""
    server, thread = start_http_server(port, addr=host, registry=telemetry.registry)
    return server, thread
