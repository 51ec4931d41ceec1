"""The daemon's own Prometheus metrics (prometheus-client, a registry of its own)."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from controller.config import AppConfig, GovernorConfig
from controller.decisions import Plan
from controller.signals.prometheus import query_failures
from controller.slo import attainment, burn_rate
from controller.snapshot import AppSnapshot, Snapshot

ROLLOUT_PHASES = ("idle", "canary", "promoted", "rolling-back", "rolled-back", "aborted")


class Telemetry:
    """Gauges and counters that describe what the daemon sees and decides."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
        self.plan_alerts = Gauge(
            "governor_plan_alerts", "Alerts raised by the last plan", ["app"], registry=r
        )
        self._verdicts_seen: dict[str, tuple[str, ...] | None] = {}

    def record(
        self, config: GovernorConfig, snapshot: Snapshot, plan: Plan, rollout: dict[str, Any]
    ) -> None:
        """Update every gauge from one tick's snapshot and plan."""
        self.interval.set(config.interval_s)
        for query, reason in query_failures(snapshot.problems):
            self.signal_query_failures.labels(query, reason).inc()
        team_cost: dict[str, float] = {}
        team_rate: dict[str, float] = {}
        for app in config.applications:
            self.slo_p95.labels(app.name).set(app.slo.latency_p95_ms)
            observed = snapshot.app(app.name)
            weights = plan.weights_for(app.name) or {}
            app_rate = 0.0
            for v in app.versions:
                want = plan.replicas_for(app.name, v.name)
                if want is not None:
                    self.desired_replicas.labels(app.name, v.name).set(want)
                self.weight.labels(app.name, v.name).set(weights.get(v.name, 0))
                vs = observed.version(v.name) if observed else None
                if vs is not None:
                    _set_or_nan(self.running_replicas.labels(app.name, v.name), vs.running_replicas)
                    _set_or_nan(self.latency_p95.labels(app.name, v.name), vs.latency_p95_ms)
                    _set_or_nan(self.request_rate.labels(app.name, v.name), vs.request_rate)
                    _set_or_nan(
                        self.starting_replicas.labels(app.name, v.name), vs.starting_replicas
                    )
                    _set_or_nan(self.error_ratio.labels(app.name, v.name), vs.error_rate)
                    app_rate += vs.request_rate or 0.0
                if observed is not None and observed.weights is not None:
                    self.observed_weight.labels(app.name, v.name).set(
                        observed.weights.get(v.name, 0)
                    )
            cost = sum(
                (plan.replicas_for(app.name, v.name) or 0) * config.replica_price(app)
                for v in app.versions
            )
            self.cost_per_hour.labels(app.name, app.team).set(cost)
            team_cost[app.team] = team_cost.get(app.team, 0.0) + cost
            team_rate[app.team] = team_rate.get(app.team, 0.0) + app_rate
            self._record_slo(app, observed)
            self.observed_cost_per_hour.labels(app.name, app.team).set(
                _observed_cost(config, app, observed)
            )
            self.plan_alerts.labels(app.name).set(sum(1 for a in plan.alerts if a.app == app.name))
            self.cost_per_1k_requests.labels(app.name).set(
                cost / (app_rate * 3.6) if app_rate > 0 else float("nan")
            )
            view = rollout.get(app.name, {})
            phase = str(view.get("phase", "idle"))
            for p in ROLLOUT_PHASES:
                self.rollout_phase.labels(app.name, p).set(1 if p == phase else 0)
            step = view.get("step")
            self.rollout_step.labels(app.name).set(step if isinstance(step, int) else -1)
            self._record_verdict(app.name, view)
        self.fleet_cost_per_hour.set(plan.cost_per_hour)
        for team, cost in team_cost.items():
            self.team_cost_per_hour.labels(team).set(cost)
            rate = team_rate[team]
            self.team_cost_per_1k_requests.labels(team).set(
                cost / (rate * 3.6) if rate > 0 else float("nan")
            )
        if config.budgets.total_per_hour is not None:
            self.budget_per_hour.labels("total").set(config.budgets.total_per_hour)
            self.budget_headroom.labels("total").set(
                config.budgets.total_per_hour - plan.cost_per_hour
            )
        for team, budget in config.budgets.teams.items():
            self.budget_per_hour.labels(team).set(budget.per_hour)
            self.budget_headroom.labels(team).set(budget.per_hour - team_cost.get(team, 0.0))
        self.missing_signals.set(len(snapshot.problems))

    def _record_slo(self, app: AppConfig, observed: AppSnapshot | None) -> None:
        self.slo_target.labels(app.name).set(app.slo.target_attainment)
        self.slo_max_error.labels(app.name).set(app.slo.max_error_rate)
        attained = attainment(observed, app.slo) if observed is not None else None
        _set_or_nan(self.slo_attainment.labels(app.name), attained)
        _set_or_nan(
            self.burn_rate.labels(app.name),
            None if attained is None else burn_rate(attained, app.slo),
        )

    def _record_verdict(self, app: str, view: dict[str, Any]) -> None:
        """Count each new verdict once; the first tick of the process only remembers it."""
        verdict = view.get("verdict")
        seen = (str(verdict), str(view.get("step")), str(view.get("phase"))) if verdict else None
        if app in self._verdicts_seen and seen is not None and seen != self._verdicts_seen[app]:
            self.rollout_verdicts.labels(app, seen[0]).inc()
        self._verdicts_seen[app] = seen


def _observed_cost(config: GovernorConfig, app: AppConfig, observed: AppSnapshot | None) -> float:
    replicas = 0
    for v in observed.versions if observed else ():
        replicas += (v.running_replicas or 0) + (v.starting_replicas or 0)
    return replicas * config.replica_price(app)


def _set_or_nan(gauge: Any, value: float | None) -> None:
    gauge.set(float("nan") if value is None else value)


def serve_metrics(telemetry: Telemetry, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve /metrics on host:port in a background thread; returns (server, thread)."""
    server, thread = start_http_server(port, addr=host, registry=telemetry.registry)
    return server, thread
