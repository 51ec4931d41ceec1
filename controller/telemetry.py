"""The daemon's own Prometheus metrics (prometheus-client, a registry of its own)."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from controller.config import GovernorConfig
from controller.decisions import Plan
from controller.snapshot import Snapshot

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

    def record(
        self, config: GovernorConfig, snapshot: Snapshot, plan: Plan, rollout: dict[str, Any]
    ) -> None:
        """Update every gauge from one tick's snapshot and plan."""
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
                    app_rate += vs.request_rate or 0.0
            cost = sum(
                (plan.replicas_for(app.name, v.name) or 0) * config.replica_price(app)
                for v in app.versions
            )
            self.cost_per_hour.labels(app.name, app.team).set(cost)
            self.cost_per_1k_requests.labels(app.name).set(
                cost / (app_rate * 3.6) if app_rate > 0 else float("nan")
            )
            view = rollout.get(app.name, {})
            phase = str(view.get("phase", "idle"))
            for p in ROLLOUT_PHASES:
                self.rollout_phase.labels(app.name, p).set(1 if p == phase else 0)
            step = view.get("step")
            self.rollout_step.labels(app.name).set(step if isinstance(step, int) else -1)
        self.fleet_cost_per_hour.set(plan.cost_per_hour)
        if config.budgets.total_per_hour is not None:
            self.budget_per_hour.labels("total").set(config.budgets.total_per_hour)
        for team, budget in config.budgets.teams.items():
            self.budget_per_hour.labels(team).set(budget.per_hour)
        self.missing_signals.set(len(snapshot.problems))


def _set_or_nan(gauge: Any, value: float | None) -> None:
    gauge.set(float("nan") if value is None else value)


def serve_metrics(telemetry: Telemetry, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve /metrics on host:port in a background thread; returns (server, thread)."""
    server, thread = start_http_server(port, addr=host, registry=telemetry.registry)
    return server, thread
